"""SendGridSegmentEventTrigger against the emulator on its manual clock.

A watcher runs forever; each test collects events until a span of emulated time has passed
(the patched ``sleep`` advances the emulator's clock and ends the run at the budget).
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_sgseg.hooks import _retry
from airflow_provider_sgseg.hooks._async_pool import aclose_shared_clients
from airflow_provider_sgseg.triggers.segment_events import SendGridSegmentEventTrigger, _AccountWatchers
from airflow_provider_sgseg.version_compat import HAS_SHARED_STREAMS, TriggerEvent
from tests.sensors.emulated_time import create_segment, seed_contacts

SEGMENTS_PATH = "/v3/marketing/segments/2.0"
HOUR = 3600.0


class BudgetSpent(BaseException):
    """The test's span of emulated time is over (a BaseException: the trigger must not catch it)."""


@dataclass
class Clock:
    admin: Any
    until: datetime.datetime | None = None
    slept: list[float] = field(default_factory=list)
    park: bool = False
    parked: bool = False

    def now(self) -> datetime.datetime:
        return self.admin.now()

    async def sleep(self, seconds: float) -> None:
        if self.until is not None and self.now() >= self.until:
            if self.park:  # a shared poll: wait to be cancelled (the manager swallows BaseExceptions)
                self.parked = True
                await asyncio.Future()
            raise BudgetSpent
        self.slept.append(seconds)
        # Never past the budget: the last look happens at its end, not a sample later.
        left = (self.until - self.now()).total_seconds() if self.until is not None else seconds
        self.admin.advance_clock(min(seconds, left))
        await asyncio.sleep(0)

    def budget(self, seconds: float) -> None:
        self.until = self.now() + datetime.timedelta(seconds=seconds)


@pytest.fixture
def clock(sendgrid_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    clock = Clock(sendgrid_emulator.admin)
    monkeypatch.setattr(SendGridSegmentEventTrigger, "now", staticmethod(clock.now))
    monkeypatch.setattr(SendGridSegmentEventTrigger, "sleep", staticmethod(clock.sleep))
    yield clock
    assert not any(entry.watched for entry in _AccountWatchers._by_conn.values()), (
        "a watcher stayed registered"
    )
    _AccountWatchers._by_conn.clear()  # its asyncio.Event belongs to this test's event loop


class RecordingLog:
    """Stands in for the trigger's logger (its output format differs between Airflow lines)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Any:
        def record(message: str, *args: Any, **_: Any) -> None:
            self.lines.append((level, message % args))

        return record

    def at(self, *levels: str) -> list[str]:
        return [text for level, text in self.lines if level in levels]


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> RecordingLog:
    recording = RecordingLog()
    monkeypatch.setattr(SendGridSegmentEventTrigger, "log", property(lambda self: recording))
    return recording


class MemoryStateStore:
    """The shape of Airflow 3.3's AssetStateStoreAccessors for one asset: aget/aset."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(json.dumps(self.values.get(key, default)))

    async def aset(self, key: str, value: Any) -> None:
        self.writes += 1
        self.values[key] = json.loads(json.dumps(value))


async def collect(events: AsyncIterator[TriggerEvent], clock: Clock, seconds: float) -> list[dict[str, Any]]:
    """The payloads ``events`` yields within ``seconds`` of emulated time."""
    clock.budget(seconds)
    payloads: list[dict[str, Any]] = []
    try:
        async for event in events:
            payloads.append(event.payload)
    except BudgetSpent:
        pass
    finally:
        await aclose_shared_clients()
    return payloads


def watcher(
    segment_id: str, store: MemoryStateStore | None = None, **kwargs: Any
) -> SendGridSegmentEventTrigger:
    trigger = SendGridSegmentEventTrigger(
        segment_id=segment_id, **{"poll_floor": 60, "poll_ceiling": HOUR, **kwargs}
    )
    trigger.asset_state_store = store
    return trigger


def populated_segment(clock: Clock, name: str = "buyers", contacts: int = 3) -> dict[str, Any]:
    seed_contacts(clock.admin, contacts)
    segment = create_segment(name)
    clock.admin.advance_clock(900 + 1)  # past the creation delay: the first sample exists
    return segment


def gets(clock: Clock, segment_id: str | None = None) -> int:
    path = f"{SEGMENTS_PATH}/{segment_id}" if segment_id else SEGMENTS_PATH
    return len([r for r in clock.admin.requests(method="GET", path_prefix=path) if r["path"] == path])


async def test_each_new_sample_fires_once_with_the_payload(clock: Clock) -> None:
    segment = populated_segment(clock)
    trigger = watcher(segment["id"], poll_ceiling=600)  # polls 6 times per hourly sample

    events = await collect(trigger.run(), clock, 3.5 * HOUR)

    # Unchanged membership: samples after 1 h, then 2 h (SendGrid backs off). The first sample
    # seen is the baseline.
    assert len(events) == 2, events
    first, second = events
    assert set(first) == {
        "segment_id",
        "name",
        "contacts_count",
        "sample_updated_at",
        "previous_sample_updated_at",
        "next_sample_update",
    }
    assert first["segment_id"] == segment["id"]
    assert first["name"] == "buyers"
    assert first["contacts_count"] == 3
    assert second["previous_sample_updated_at"] == first["sample_updated_at"]
    assert second["sample_updated_at"] > first["sample_updated_at"]
    assert json.loads(json.dumps(events)) == events
    assert gets(clock, segment["id"]) > 2 * len(events)  # many polls, each sample fired once


async def test_an_uppercase_segment_id_is_watched(clock: Clock, log: RecordingLog) -> None:
    # SendGrid answers lowercase ids: an uppercase one passed validation and then never matched
    # ("deleted?" forever).
    segment = populated_segment(clock)
    trigger = watcher(segment["id"].upper(), poll_ceiling=600)

    events = await collect(trigger.run(), clock, 1.5 * HOUR)

    assert [event["segment_id"] for event in events] == [segment["id"]]
    assert not [line for line in log.at("warning", "error") if "deleted?" in line]


async def test_polls_are_paced_by_next_sample_update(clock: Clock) -> None:
    segment = populated_segment(clock)
    trigger = watcher(segment["id"])  # ceiling 1 h: the pace is SendGrid's schedule

    events = await collect(trigger.run(), clock, 3.5 * HOUR)

    assert len(events) == 2
    assert gets(clock, segment["id"]) <= 5  # ~ one GET per sample, not one per minute


async def test_min_contacts_fires_when_the_count_crosses_it(clock: Clock) -> None:
    segment = populated_segment(clock, contacts=3)
    trigger = watcher(segment["id"], min_contacts=5, poll_ceiling=600)
    started = collect(trigger.run(), clock, 0.5 * HOUR)
    assert await started == []  # baseline at 3 contacts

    seed_contacts(clock.admin, 6)  # 3 more: the next sample counts 6
    events = await collect(watcher(segment["id"], min_contacts=5, poll_ceiling=600).run(), clock, 4 * HOUR)

    # A new watcher (no store) re-baselines at 3, then sees 6: one crossing, not one per sample.
    assert [e["contacts_count"] for e in events] == [6]


async def test_the_state_store_keeps_a_restart_from_repeating_or_missing_an_event(clock: Clock) -> None:
    segment = populated_segment(clock)
    store = MemoryStateStore()
    before = await collect(watcher(segment["id"], store).run(), clock, 1.5 * HOUR)
    assert len(before) == 1

    # Restarted (kill -9, failover) before the next sample: the same sample fires nothing.
    assert await collect(watcher(segment["id"], store).run(), clock, 60) == []

    # Down across a sample: the restarted watcher fires that sample once.
    clock.admin.advance_clock(2 * HOUR)
    after = await collect(watcher(segment["id"], store).run(), clock, 60)
    assert len(after) == 1
    assert after[0]["previous_sample_updated_at"] == before[0]["sample_updated_at"]
    key = f"sendgrid_segment_event/{segment['id']}/None-None-None"
    assert store.values[key]["sample_updated_at"] == after[0]["sample_updated_at"]


async def test_transient_failures_and_rate_limits_are_waited_out_not_raised(
    clock: Clock, log: RecordingLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = populated_segment(clock)
    path = f"{SEGMENTS_PATH}/{segment['id']}"
    clock.admin.add_fault("status", method="GET", path=path, status=503, times=3)
    clock.admin.add_fault("status", method="GET", path=path, status=429, headers={"Retry-After": "900"})
    # The hook dates the 429's reset from its own clock: make that the emulator's too.
    monkeypatch.setattr(
        _retry, "NO_RETRY", _retry.RetryPolicy(max_attempts=1, clock=lambda: clock.now().timestamp())
    )

    events = await collect(watcher(segment["id"]).run(), clock, 2.5 * HOUR)

    assert len(events) == 1  # the baseline came after the failures; then the next sample fired
    assert clock.slept[:3] == [60, 120, 240]  # backoff doubles from the floor
    assert clock.slept[3] >= 900  # the 429's reset time is honoured
    assert len([line for line in log.at("warning") if "in a row)" in line]) == 4


async def test_a_deleted_segment_is_logged_once_and_polled_slowly(clock: Clock, log: RecordingLog) -> None:
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

    segment = populated_segment(clock)
    SendGridMarketingHook().delete_segment(segment["id"])

    events = await collect(watcher(segment["id"], poll_ceiling=HOUR).run(), clock, 5 * HOUR)

    assert events == []
    assert len(clock.slept) >= 4
    assert set(clock.slept) == {HOUR}
    assert log.at("error", "exception") == [
        f"Segment {segment['id']} is not in SendGrid's answer (deleted?); it keeps being polled"
    ]


async def test_a_revoked_key_is_logged_once_and_polled_slowly(
    clock: Clock, log: RecordingLog, monkeypatch: pytest.MonkeyPatch, sendgrid_emulator: Any
) -> None:
    segment = populated_segment(clock)
    conn = json.loads(sendgrid_emulator.conn_env()["AIRFLOW_CONN_SENDGRID_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", json.dumps({**conn, "password": "SG.revoked"}))

    events = await collect(watcher(segment["id"]).run(), clock, 4 * HOUR)

    assert events == []
    assert len(clock.slept) >= 3
    assert set(clock.slept) == {HOUR}
    errors = log.at("error", "exception")
    assert len(errors) == 1
    assert "refused the API key" in errors[0]
    assert all("SG.revoked" not in text for _, text in log.lines)


def test_kwargs_round_trip_and_hold_no_secret(sendgrid_emulator: Any) -> None:
    segment_id = "0b9d7b8e-2f6a-4a4e-9c1e-0d9a3f2b1c00"
    trigger = SendGridSegmentEventTrigger(segment_id=segment_id, min_contacts=10, poll_floor=30)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_sgseg.triggers.segment_events.SendGridSegmentEventTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert SendGridSegmentEventTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert sendgrid_emulator.api_key not in json.dumps(kwargs) + repr(trigger)
    assert trigger.shared_stream_key() == ("sendgrid-segments", "sendgrid_default")


@pytest.mark.skipif(not HAS_SHARED_STREAMS, reason="shared streams are Airflow 3.3+")
async def test_watchers_of_one_account_share_one_list_request_per_cycle(clock: Clock) -> None:
    from airflow.triggers.shared_stream import SharedStreamManager

    seed_contacts(clock.admin, 3)
    ids = [create_segment(f"segment {n}")["id"] for n in range(3)]
    clock.admin.advance_clock(900 + 1)
    triggers = [watcher(segment_id, poll_ceiling=HOUR) for segment_id in ids]
    manager = SharedStreamManager()
    keys = {trigger.shared_stream_key() for trigger in triggers}
    assert len(keys) == 1
    key = keys.pop()
    clock.budget(3.5 * HOUR)
    clock.park = True

    payloads: list[list[dict[str, Any]]] = [[] for _ in triggers]

    async def events_of(trigger_id: int, trigger: SendGridSegmentEventTrigger) -> None:
        stream = manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=key)
        try:
            async for event in trigger.filter_shared_stream(stream):
                payloads[trigger_id].append(event.payload)
        finally:
            await manager.unsubscribe(trigger_id, key)

    tasks = [asyncio.ensure_future(events_of(n, t)) for n, t in enumerate(triggers)]
    for _ in range(600):  # the poll parks at the end of the budget
        if clock.parked:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # the subscribers drain their queues
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await manager.stop_all()
    await aclose_shared_clients()
    results = payloads

    assert [len(r) for r in results] == [2, 2, 2]
    assert [{e["segment_id"] for e in r} for r in results] == [{i} for i in ids]
    assert all(gets(clock, i) == 0 for i in ids)  # no per-segment reads
    assert gets(clock) <= 6  # one list per sample cycle (two cycles), plus a join-time look
