"""SendGridSegmentPopulatedTrigger against the emulator on its manual clock."""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import pytest

from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.triggers import segments as trigger_module
from airflow_provider_sgseg.triggers.segments import SendGridSegmentPopulatedTrigger
from tests.sensors.emulated_time import (
    SEGMENT_PATH,
    EmulatedTime,
    create_segment,
    read_segment,
    seed_contacts,
)


def make_trigger(
    segment: dict[str, Any], clock: EmulatedTime, **overrides: Any
) -> SendGridSegmentPopulatedTrigger:
    kwargs: dict[str, Any] = {
        "sendgrid_conn_id": "sendgrid_default",
        "segment_id": segment["id"],
        "watermark": segment["sample_updated_at"],
        "min_contacts": 1,
        "deadline": (clock.now() + datetime.timedelta(hours=6)).isoformat(),
    }
    kwargs.update(overrides)
    return SendGridSegmentPopulatedTrigger(**kwargs)


async def run_to_event(trigger: SendGridSegmentPopulatedTrigger) -> dict[str, Any]:
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1, events
    return events[0]


async def test_waits_through_the_creation_delay_then_succeeds(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("new customers")
    started = emulated_time.now()

    event = await run_to_event(make_trigger(segment, emulated_time))

    assert event["status"] == "success", event
    assert event["contacts_count"] == 3
    assert event["segment_id"] == segment["id"]
    after = read_segment(segment["id"])
    assert event["sample_updated_at"] is not None
    assert datetime.datetime.fromisoformat(event["sample_updated_at"]) == datetime.datetime.fromisoformat(
        after["sample_updated_at"].replace("Z", "+00:00")
    )
    # SendGrid's creation delay (15 min) really passed, and it took few looks.
    assert (emulated_time.now() - started).total_seconds() >= 900
    assert emulated_time.segment_gets(segment["id"]) <= 3


async def _populated_segment(clock: EmulatedTime, contacts: int) -> dict[str, Any]:
    seed_contacts(clock.admin, contacts)
    segment = create_segment("members")
    clock.sleep(900 + 1)  # past the creation delay: the first real sample exists
    populated = read_segment(segment["id"])
    assert populated["contacts_count"] == contacts
    return populated


async def test_a_sixty_minute_wait_takes_at_most_three_gets(emulated_time: EmulatedTime) -> None:
    segment = await _populated_segment(emulated_time, 2)
    seed_contacts(emulated_time.admin, 5)  # 3 more contacts: the next hourly sample changes
    gets_before = emulated_time.segment_gets(segment["id"])
    started = emulated_time.now()

    event = await run_to_event(make_trigger(segment, emulated_time, poll_floor=60))

    assert event["status"] == "success", event
    assert event["contacts_count"] == 5
    waited = (emulated_time.now() - started).total_seconds()
    assert 3000 <= waited <= 3700
    assert emulated_time.segment_gets(segment["id"]) - gets_before <= 3


async def test_refresh_then_next_sample_succeeds_within_minutes(emulated_time: EmulatedTime) -> None:
    segment = await _populated_segment(emulated_time, 2)
    seed_contacts(emulated_time.admin, 4)
    before_refresh = read_segment(segment["id"])
    SendGridMarketingHook().refresh_segment(segment["id"], "UTC")
    started = emulated_time.now()

    event = await run_to_event(
        make_trigger(segment, emulated_time, watermark=before_refresh["sample_updated_at"], poll_floor=10)
    )

    assert event["status"] == "success", event
    assert event["contacts_count"] == 4
    # The manual refresh samples after about a minute, not at the next hourly sample.
    assert (emulated_time.now() - started).total_seconds() < 600


async def test_min_contacts_not_met_keeps_waiting_until_the_deadline(emulated_time: EmulatedTime) -> None:
    segment = await _populated_segment(emulated_time, 2)
    deadline = emulated_time.now() + datetime.timedelta(hours=3)
    trigger = make_trigger(segment, emulated_time, min_contacts=50, deadline=deadline.isoformat())

    event = await run_to_event(trigger)

    assert event["status"] == "timeout", event
    assert "fewer than min_contacts=50" in event["message"]
    assert event["contacts_count"] == 2
    assert emulated_time.now() >= deadline
    # Three simulated hours at no more than one look per hour (plus the last look at the deadline).
    assert emulated_time.segment_gets(segment["id"]) <= 6


async def test_an_invalid_query_ends_with_sendgrids_message(emulated_time: EmulatedTime) -> None:
    segment = create_segment("broken", "SELECT contact_id, updated_at FROM no_such_table")

    event = await run_to_event(make_trigger(segment, emulated_time))

    assert event["status"] == "invalid", event
    assert "no_such_table" in event["message"]
    assert emulated_time.segment_gets(segment["id"]) == 1


async def test_transient_503s_are_tolerated(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("flaky")
    emulated_time.admin.add_fault(kind="status", status=503, method="GET", path_prefix=SEGMENT_PATH, times=2)

    event = await run_to_event(make_trigger(segment, emulated_time, max_consecutive_failures=2))

    assert event["status"] == "success", event
    assert event["contacts_count"] == 3


@pytest.mark.parametrize(
    ("status", "message", "outcome"),
    [
        (503, "segment does not exist", "success"),  # a 5xx is waited out, whatever it says
        (400, "temporarily unavailable, try again later", "error"),  # a 400 ends the wait
        (404, "try again later", "error"),
    ],
)
async def test_the_status_not_the_wording_decides_wait_or_fail(
    emulated_time: EmulatedTime, status: int, message: str, outcome: str
) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("worded")
    body = {"errors": [{"field": None, "message": message}]}
    emulated_time.admin.add_fault(
        kind="status", status=status, method="GET", path_prefix=SEGMENT_PATH, body=body
    )

    event = await run_to_event(make_trigger(segment, emulated_time, watermark=None))

    assert event["status"] == outcome, event
    assert emulated_time.segment_gets(segment["id"]) == (1 if outcome == "error" else 3)
    if outcome == "error":
        assert f"HTTP {status}" in event["message"]
        assert message in event["message"]


async def test_a_healthy_answer_resets_the_failure_count(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("blinking")
    admin = emulated_time.admin
    # fail, fail, answer (not yet populated), fail, fail, answer: never 3 in a row.
    admin.add_fault(kind="status", status=503, method="GET", path_prefix=SEGMENT_PATH, times=2)
    trigger = make_trigger(segment, emulated_time, max_consecutive_failures=2)
    original_sleep = SendGridSegmentPopulatedTrigger.sleep
    calls = 0

    async def sleep_and_break_again(self: SendGridSegmentPopulatedTrigger, seconds: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # after the first healthy "not yet" answer
            admin.add_fault(kind="status", status=503, method="GET", path_prefix=SEGMENT_PATH, times=2)
        await original_sleep(self, seconds)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SendGridSegmentPopulatedTrigger, "sleep", sleep_and_break_again)
        event = await run_to_event(trigger)

    assert event["status"] == "success", event
    assert calls >= 5


async def test_too_many_503s_in_a_row_end_with_an_error_event(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("down")
    emulated_time.admin.add_fault(kind="status", status=503, method="GET", path_prefix=SEGMENT_PATH, times=10)

    event = await run_to_event(make_trigger(segment, emulated_time, max_consecutive_failures=2))

    assert event["status"] == "error", event
    assert "3 transient failures in a row" in event["message"]
    assert "503" in event["message"]
    assert emulated_time.segment_gets(segment["id"]) == 3
    # It backed off (floor, then double) instead of hammering the API.
    assert emulated_time.slept[:2] == [60.0, 120.0]


async def test_an_unknown_connection_ends_with_an_error_event(
    emulated_time: EmulatedTime, sendgrid_emulator: Any
) -> None:
    segment = create_segment("orphan")

    event = await run_to_event(make_trigger(segment, emulated_time, sendgrid_conn_id="no_such_conn"))

    assert event["status"] == "error", event
    assert "no_such_conn" in event["message"]
    assert "AirflowNotFoundException" in event["message"]
    assert sendgrid_emulator.api_key not in str(event)
    assert emulated_time.segment_gets(segment["id"]) == 0


async def test_an_unexpected_error_mid_wait_ends_with_an_error_event_and_the_last_sample(
    emulated_time: EmulatedTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_contacts(emulated_time.admin, 1)
    segment = read_segment(create_segment("members")["id"])
    polls = 0
    real_verdict = trigger_module.verdict

    def verdict_then_bug(*args: Any) -> Any:
        nonlocal polls
        polls += 1
        if polls == 2:
            raise KeyError("contacts_count")
        return real_verdict(*args)

    monkeypatch.setattr(trigger_module, "verdict", verdict_then_bug)
    event = await run_to_event(make_trigger(segment, emulated_time, min_contacts=5))

    assert event["status"] == "error", event
    assert "KeyError" in event["message"]
    assert event["contacts_count"] is not None  # what the first poll saw


async def test_cancellation_still_propagates(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 1)
    segment = read_segment(create_segment("members")["id"])
    trigger = make_trigger(segment, emulated_time, min_contacts=5)

    async def cancelled(seconds: float) -> None:
        raise asyncio.CancelledError

    trigger.sleep = cancelled  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await run_to_event(trigger)


async def test_a_429_waits_until_sendgrids_announced_reset(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("rate limited")
    reset = int(emulated_time.now().timestamp()) + 900
    emulated_time.admin.add_fault(
        kind="status",
        status=429,
        method="GET",
        path_prefix=SEGMENT_PATH,
        headers={"X-RateLimit-Reset": str(reset)},
        body={"errors": [{"field": None, "message": "too many requests"}]},
    )

    event = await run_to_event(make_trigger(segment, emulated_time, first_poll_at=None))

    assert event["status"] == "success", event
    # One look refused with 429, then a wait until the reset (900 s), not the 60 s floor.
    assert 895 <= emulated_time.slept[0] <= 900


async def test_each_poll_logs_count_sample_time_watermark_and_next_poll(
    emulated_time: EmulatedTime, capsys: pytest.CaptureFixture[str]
) -> None:
    segment = await _populated_segment(emulated_time, 2)
    seed_contacts(emulated_time.admin, 3)
    capsys.readouterr()

    event = await run_to_event(make_trigger(segment, emulated_time))

    assert event["status"] == "success", event
    waiting = [line for line in capsys.readouterr().out.splitlines() if "not populated yet" in line]
    assert waiting, "no log line for the poll that found the segment not yet populated"
    assert "contacts_count=2" in waiting[0]
    assert "watermark=" + iso(segment["sample_updated_at"]).isoformat() in waiting[0]
    assert "sample_updated_at=" + iso(segment["sample_updated_at"]).isoformat() in waiting[0]
    assert "next poll at " in waiting[0]


def iso(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_the_last_poll_line_before_the_deadline_announces_no_poll_past_it(
    emulated_time: EmulatedTime, capsys: pytest.CaptureFixture[str]
) -> None:
    segment = await _populated_segment(emulated_time, 2)
    deadline = emulated_time.now() + datetime.timedelta(seconds=30)  # within the 60 s poll floor
    capsys.readouterr()

    event = await run_to_event(make_trigger(segment, emulated_time, deadline=deadline.isoformat()))

    assert event["status"] == "timeout", event
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "not populated yet" in line]
    assert "next poll at" not in line
    cut_off = "the deadline (timeout or execution_timeout)"
    assert f"no further poll: {cut_off} ends the wait at {deadline.isoformat()} (in 30 s)" in line


async def test_a_rebuilt_trigger_keeps_waiting_for_the_same_sample(emulated_time: EmulatedTime) -> None:
    """A triggerer restart mid-wait: the rebuilt trigger still wants a sample newer than before."""
    segment = await _populated_segment(emulated_time, 2)
    seed_contacts(emulated_time.admin, 4)
    first = make_trigger(segment, emulated_time)
    stop_at_first_sleep = asyncio.Event()

    async def sleep_forever(self: SendGridSegmentPopulatedTrigger, seconds: float) -> None:
        stop_at_first_sleep.set()
        await asyncio.Event().wait()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SendGridSegmentPopulatedTrigger, "sleep", sleep_forever)
        running = asyncio.ensure_future(run_to_event(first))
        await asyncio.wait_for(stop_at_first_sleep.wait(), timeout=30)
        running.cancel()  # the triggerer goes away mid-wait
        with pytest.raises(asyncio.CancelledError):
            await running
    assert emulated_time.segment_gets(segment["id"]) >= 1

    emulated_time.sleep(3600 + 60)  # the next hourly sample happened while nobody watched
    classpath, kwargs = first.serialize()
    rebuilt = SendGridSegmentPopulatedTrigger(**kwargs)
    gets_before = emulated_time.segment_gets(segment["id"])

    event = await run_to_event(rebuilt)

    assert event["status"] == "success", event
    assert event["contacts_count"] == 4
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["watermark"] == segment["sample_updated_at"]
    assert emulated_time.segment_gets(segment["id"]) - gets_before == 1


async def test_many_waits_share_one_http_client(
    emulated_time: EmulatedTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    built: list[httpx.AsyncClient] = []
    original_init = httpx.AsyncClient.__init__

    def counting_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting_init)
    seed_contacts(emulated_time.admin, 2)
    segments = [create_segment(f"shared {i}") for i in range(3)]

    events = await asyncio.gather(*(run_to_event(make_trigger(s, emulated_time)) for s in segments))

    assert [e["status"] for e in events] == ["success"] * 3
    assert sum(emulated_time.segment_gets(s["id"]) for s in segments) >= 6
    assert len(built) == 1


async def test_a_connection_without_a_key_ends_the_wait_as_invalid(
    emulated_time: EmulatedTime, sendgrid_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A definitive error (SendGridConfigError, an AirflowFailException) that a retry would meet
    # again: "invalid", so the task fails without retries; it used to be "error" (retried).
    segment = create_segment("keyless")
    keyless = json.dumps({"conn_type": "sendgrid_marketing", "host": sendgrid_emulator.base_url})
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_KEYLESS", keyless)

    event = await run_to_event(make_trigger(segment, emulated_time, sendgrid_conn_id="sendgrid_keyless"))

    assert event["status"] == "invalid", event
    assert "has no API key" in event["message"]
    assert emulated_time.segment_gets(segment["id"]) == 0
