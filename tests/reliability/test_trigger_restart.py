"""A triggerer restart in the middle of a wait: the trigger is serialised (through Airflow's own
trigger row, encrypted kwargs and all), rebuilt the way the triggerer rebuilds it, and finishes
the wait with the same watermark and the same result, without any refresh being sent again.

Time is the emulator's manual clock: the trigger's ``now`` reads it and its ``sleep`` advances it.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from airflow.models.trigger import Trigger
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.hooks import marketing
from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.triggers.segments import SendGridSegmentPopulatedTrigger

from .conftest import ALL_CONTACTS, SEGMENTS


@dataclass
class TriggerTime:
    """The trigger's clock. ``frozen``: a sleep blocks forever (the triggerer is going down)."""

    emulator: EmulatorHandle
    frozen: bool = False
    slept: list[float] = field(default_factory=list)
    waiting: asyncio.Event | None = None

    def now(self) -> datetime.datetime:
        return self.emulator.admin.now()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.frozen:
            assert self.waiting is not None
            self.waiting.set()
            await asyncio.Event().wait()  # until cancelled
        self.emulator.admin.advance_clock(seconds)


@pytest.fixture
def trigger_time(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[TriggerTime]:
    clock = TriggerTime(emulator)

    async def sleep(self: SendGridSegmentPopulatedTrigger, seconds: float) -> None:
        await clock.sleep(seconds)

    monkeypatch.setattr(SendGridSegmentPopulatedTrigger, "now", lambda self: clock.now())
    monkeypatch.setattr(SendGridSegmentPopulatedTrigger, "sleep", sleep)
    yield clock


async def run_to_event(trigger: SendGridSegmentPopulatedTrigger) -> dict[str, Any]:
    try:
        events = [event.payload async for event in trigger.run()]
    finally:
        await marketing.aclose_shared_clients()
    assert len(events) == 1, events
    return dict(events[0])


def refreshed_segment(emulator: EmulatorHandle, hook: SendGridMarketingHook) -> tuple[str, str]:
    """A segment with a first sample of 3 contacts, 2 more contacts since, and one manual refresh
    sent: (segment id, the watermark the refresh operator would hand over)."""
    admin = emulator.admin
    admin.seed_contacts([{"email": f"early{i}@example.com"} for i in range(3)])
    segment_id = hook.create_segment("restart audience", ALL_CONTACTS)["id"]
    admin.advance_clock(901)  # SendGrid's first sample of a new segment
    first = hook.get_segment(segment_id, contacts_sample=False)
    assert first["contacts_count"] == 3
    admin.seed_contacts([{"email": f"late{i}@example.com"} for i in range(2)])
    hook.refresh_segment(segment_id, "UTC")
    return segment_id, str(first["sample_updated_at"])


def refresh_posts(emulator: EmulatorHandle, segment_id: str) -> int:
    return len(emulator.admin.requests(method="POST", path_prefix=f"{SEGMENTS}/refresh/{segment_id}"))


def segment_reads(emulator: EmulatorHandle, segment_id: str) -> int:
    return len(emulator.admin.requests(method="GET", path_prefix=f"{SEGMENTS}/{segment_id}"))


def make_trigger(
    emulator: EmulatorHandle, segment_id: str, watermark: str
) -> SendGridSegmentPopulatedTrigger:
    return SendGridSegmentPopulatedTrigger(
        sendgrid_conn_id="sendgrid_default",
        segment_id=segment_id,
        watermark=watermark,
        min_contacts=5,
        deadline=(emulator.admin.now() + datetime.timedelta(hours=6)).isoformat(),
    )


def through_the_trigger_table(trigger: SendGridSegmentPopulatedTrigger) -> SendGridSegmentPopulatedTrigger:
    """What a restarted triggerer does: read the row (encrypted kwargs), import, construct."""
    row = Trigger.from_object(trigger)
    rebuilt = _import_class(row.classpath)(**row.kwargs)
    assert isinstance(rebuilt, SendGridSegmentPopulatedTrigger)
    return rebuilt


async def run_until_it_waits_then_go_down(
    trigger: SendGridSegmentPopulatedTrigger, trigger_time: TriggerTime
) -> None:
    """A triggerer runs ``trigger`` until it starts a (frozen) wait, then goes down."""
    trigger_time.frozen, trigger_time.waiting = True, asyncio.Event()
    running = asyncio.create_task(run_to_event(trigger))
    await asyncio.wait_for(trigger_time.waiting.wait(), timeout=30)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_restart_mid_wait_keeps_the_watermark_and_the_result(
    emulator: EmulatorHandle, clean_hook: SendGridMarketingHook, trigger_time: TriggerTime
) -> None:
    segment_id, watermark = refreshed_segment(emulator, clean_hook)
    original = make_trigger(emulator, segment_id, watermark)
    stored_at_defer = original.serialize()
    reads_before = segment_reads(emulator, segment_id)

    # Triggerer 1 polls once (old sample, 3 contacts), starts waiting, and goes down.
    await run_until_it_waits_then_go_down(original, trigger_time)
    assert segment_reads(emulator, segment_id) == reads_before + 1
    assert trigger_time.slept and trigger_time.slept[0] > 0

    # Serialised mid-wait: the same arguments as at defer time, the same watermark.
    assert original.serialize() == stored_at_defer
    rebuilt = through_the_trigger_table(original)
    assert rebuilt.serialize() == stored_at_defer
    assert rebuilt.watermark == watermark

    # Triggerer 2 finishes the wait.
    trigger_time.frozen = False
    event = await run_to_event(rebuilt)

    assert event["status"] == "success", event
    assert event["segment_id"] == segment_id
    assert event["contacts_count"] == 5
    assert _instant(event["sample_updated_at"]) > _instant(watermark)
    assert refresh_posts(emulator, segment_id) == 1  # nobody refreshed again

    # A trigger that never went down, started from the stored row now, reaches the same result.
    uninterrupted = await run_to_event(
        through_the_trigger_table(make_trigger(emulator, segment_id, watermark))
    )
    assert uninterrupted == event
    assert refresh_posts(emulator, segment_id) == 1


async def test_restart_before_the_first_poll_changes_nothing(
    emulator: EmulatorHandle, clean_hook: SendGridMarketingHook, trigger_time: TriggerTime
) -> None:
    segment_id, watermark = refreshed_segment(emulator, clean_hook)
    trigger = make_trigger(emulator, segment_id, watermark)
    trigger.first_poll_at = (emulator.admin.now() + datetime.timedelta(seconds=120)).isoformat()
    reads_before = segment_reads(emulator, segment_id)
    await run_until_it_waits_then_go_down(trigger, trigger_time)
    assert segment_reads(emulator, segment_id) == reads_before  # it was waiting for first_poll_at

    trigger_time.frozen = False
    rebuilt = through_the_trigger_table(trigger)
    assert rebuilt.first_poll_at == trigger.first_poll_at and rebuilt.watermark == watermark
    event = await run_to_event(rebuilt)
    assert event["status"] == "success" and event["contacts_count"] == 5, event
    assert refresh_posts(emulator, segment_id) == 1


async def test_restart_after_a_failed_first_look_keeps_waiting_for_the_same_sample(
    emulator: EmulatorHandle,
    clean_hook: SendGridMarketingHook,
    trigger_time: TriggerTime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sensor's own first look fails, so no sample fixed the watermark; a restart must not
    move it past the refreshed sample that lands while the triggerer is down."""
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor
    from airflow_provider_sgseg.version_compat import TaskDeferred

    segment_id, old_sample = refreshed_segment(emulator, clean_hook)  # refreshed sample due in 60 s
    monkeypatch.setattr(SendGridSegmentPopulatedSensor, "now", lambda self: trigger_time.now())
    emulator.admin.add_fault(kind="status", status=503, method="GET", path_prefix=SEGMENTS, times=1)
    sensor = SendGridSegmentPopulatedSensor(
        task_id="wait", segment_id=segment_id, min_contacts=5, deferrable=True, timeout=6 * 3600
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"outlet_events": OutletEventAccessors()})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, SendGridSegmentPopulatedTrigger)
    assert trigger.watermark is not None and _instant(trigger.watermark) > _instant(old_sample)

    # Triggerer 1 polls once (old sample), waits, and goes down for 10 minutes; meanwhile the
    # refreshed sample lands.
    trigger.first_poll_at = None
    await run_until_it_waits_then_go_down(trigger, trigger_time)
    emulator.admin.advance_clock(600)
    restarted_at = emulator.admin.now()

    trigger_time.frozen = False
    event = await run_to_event(through_the_trigger_table(trigger))

    assert event["status"] == "success", event
    assert event["contacts_count"] == 5
    # The refreshed sample counted: no waiting for the next hourly one.
    assert (emulator.admin.now() - restarted_at) < datetime.timedelta(minutes=5)
    assert refresh_posts(emulator, segment_id) == 1


def test_trigger_row_holds_only_plain_values_and_no_key(emulator: EmulatorHandle) -> None:
    trigger = make_trigger(emulator, "0d9c8b7a-6f5e-4d3c-2b1a-098765432100", "2026-01-01T00:00:00+00:00")
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_sgseg.triggers.segments.SendGridSegmentPopulatedTrigger"
    assert all(value is None or isinstance(value, (str, int, float, bool)) for value in kwargs.values())
    assert Trigger.from_object(trigger).kwargs == kwargs
    for text in (repr(trigger), str(kwargs)):
        assert emulator.api_key not in text


def _instant(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _import_class(classpath: str) -> Any:
    """What Airflow's triggerer does with a trigger row's classpath (its helper moved in 3.1)."""
    module, name = classpath.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)
