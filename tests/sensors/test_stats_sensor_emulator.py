"""SendGridSingleSendStatsSensor against the emulator on its manual clock: settling, provisional
results at max_wait, paced and bounded reads, poke and deferrable modes."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import airflow.sdk.bases.sensor
import pytest
from airflow.sdk import Asset
from sgseg_emulator.pytest_plugin import EmulatorHandle
from sgseg_emulator.stats import final_counts

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridNotFoundError, SendGridServerError
from airflow_provider_sgseg.rules import summaries
from airflow_provider_sgseg.sensors.stats import SendGridSingleSendStatsSensor
from airflow_provider_sgseg.triggers.stats import SendGridSingleSendStatsTrigger
from airflow_provider_sgseg.version_compat import (
    AirflowException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    TaskDeferred,
)
from tests.helpers import last_info_line
from tests.sensors.emulated_time import EmulatedTime
from tests.sensors.test_segment_sensor_emulator import FirstRescheduleAt, StateStore, context_for
from tests.stats_helpers import HOUR, PERIOD, SINGLESENDS, api_client, sent_single_send

STATS_PATH = "/v3/marketing/stats/singlesends/"
UNKNOWN_ID = "6b2b2a0e-7e1f-4b8b-9a53-0c1c3d5e6f70"


@pytest.fixture
def clock(sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedTime]:
    time = EmulatedTime(sendgrid_emulator.admin)

    async def trigger_sleep(self: Any, seconds: float) -> None:
        time.sleep(seconds)

    monkeypatch.setattr(SendGridSingleSendStatsTrigger, "now", lambda self: time.now())
    monkeypatch.setattr(SendGridSingleSendStatsTrigger, "sleep", trigger_sleep)
    monkeypatch.setattr(SendGridSingleSendStatsSensor, "now", lambda self: time.now())
    fake_time = type(
        "T",
        (),
        {"sleep": staticmethod(time.sleep), "monotonic": staticmethod(lambda: time.now().timestamp())},
    )
    monkeypatch.setattr(airflow.sdk.bases.sensor, "time", fake_time)
    yield time


def stats_reads(emulator: EmulatorHandle, single_send_id: str) -> int:
    return len(emulator.admin.requests(method="GET", path_prefix=STATS_PATH + single_send_id))


def first_event(trigger: SendGridSingleSendStatsTrigger) -> Any:
    """The event ``trigger`` fires first, run as a triggerer runs it."""
    import asyncio

    async def run() -> Any:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return asyncio.run(run())


def run_deferrable(sensor: SendGridSingleSendStatsSensor, context: Any) -> Any:
    try:
        return sensor.execute(context)
    except TaskDeferred as deferred:
        trigger = deferred.trigger
        assert isinstance(trigger, SendGridSingleSendStatsTrigger)
        rebuilt = SendGridSingleSendStatsTrigger(**trigger.serialize()[1])  # as a triggerer would
        return sensor.execute_complete(context, first_event(rebuilt))


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_waits_until_counts_stop_changing_for_settle_for(
    clock: EmulatedTime, sendgrid_emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    with api_client(sendgrid_emulator) as api:
        single_send_id = sent_single_send(api, sendgrid_emulator, contacts=2000)
    started = clock.now()
    sensor = SendGridSingleSendStatsSensor(
        task_id="settled",
        single_send_id=single_send_id,
        settle_for=6 * HOUR,
        max_wait=10 * 24 * HOUR,
        timeout=20 * 24 * 3600,
        deferrable=mode == "deferrable",
    )
    capsys.readouterr()
    result = run_deferrable(sensor, context_for(StateStore()))
    waited = (clock.now() - started).total_seconds()
    assert result["provisional"] is False
    # Issue 23: the last INFO line says how the wait ended, also after a deferral.
    line = last_info_line(capsys.readouterr().out)
    assert line == summaries.stats_settled(result)
    assert line.startswith(
        f"Single Send {single_send_id} stats settled: sent at {result['send_at']}; counts "
    )
    assert result["counts"] == {name: final_counts(2000)[name] for name in result["counts"]}
    changed_at = datetime.datetime.fromisoformat(result["changed_at"])
    # The emulator's counts stop growing by PERIOD; settled means 6 h unchanged after the last change.
    assert PERIOD - 2 * HOUR <= (changed_at - started).total_seconds() <= PERIOD
    assert (clock.now() - changed_at).total_seconds() >= 6 * HOUR
    assert waited <= PERIOD + 7 * HOUR
    # Paced: one read per poll, at most one per hour (the ceiling) while counts change.
    assert stats_reads(sendgrid_emulator, single_send_id) <= (PERIOD + 7 * HOUR) / 3600 + 2


def test_still_changing_at_max_wait_proceeds_provisionally(
    clock: EmulatedTime, sendgrid_emulator: EmulatorHandle
) -> None:
    with api_client(sendgrid_emulator) as api:
        single_send_id = sent_single_send(api, sendgrid_emulator, contacts=500)
    started = clock.now()
    sensor = SendGridSingleSendStatsSensor(
        task_id="provisional", single_send_id=single_send_id, settle_for=4 * HOUR, max_wait=12 * HOUR
    )
    store = StateStore()
    result = sensor.execute(context_for(store))
    assert result["provisional"] is True
    assert 12 * HOUR <= (clock.now() - started).total_seconds() <= 13 * HOUR
    assert store.values == {}  # the wait's state is cleared once done


def test_a_scheduled_send_is_awaited_from_send_at(
    clock: EmulatedTime, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.seed_contacts([{"email": f"p{i}@example.com"} for i in range(10)])
    config = {
        "subject": "S",
        "html_content": "<p>x {{{unsubscribe}}}</p>",
        "sender_id": 1,
        "suppression_group_id": 2,
    }
    with api_client(sendgrid_emulator) as api:
        created = api.post(
            SINGLESENDS, json={"name": "later", "send_to": {"all": True}, "email_config": config}
        )
        single_send_id = created.json()["id"]
        send_at = clock.now() + datetime.timedelta(days=2)
        api.put(
            f"{SINGLESENDS}/{single_send_id}/schedule",
            json={"send_at": send_at.strftime("%Y-%m-%dT%H:%M:%SZ")},
        )
    sensor = SendGridSingleSendStatsSensor(
        task_id="scheduled",
        single_send_id=single_send_id,
        settle_for=HOUR,
        max_wait=4 * 24 * HOUR,
        timeout=10 * 24 * 3600,
        poll_ceiling=3 * 24 * HOUR,  # a ceiling above the two days to send_at: one look at it
    )
    result = sensor.execute(context_for(StateStore()))
    assert result["send_at"].startswith(send_at.strftime("%Y-%m-%dT%H:%M"))
    assert result["counts"]["requests"] == 10 and result["provisional"] is False
    single_send_reads = sendgrid_emulator.admin.requests(
        method="GET", path_prefix=f"{SINGLESENDS}/{single_send_id}"
    )
    assert len(single_send_reads) == 2  # before and at send_at: not polled every interval


def test_a_draft_times_out(clock: EmulatedTime, sendgrid_emulator: EmulatorHandle) -> None:
    with api_client(sendgrid_emulator) as api:
        single_send_id = api.post(SINGLESENDS, json={"name": "draft"}).json()["id"]
    sensor = SendGridSingleSendStatsSensor(task_id="draft", single_send_id=single_send_id, timeout=6 * 3600)
    with pytest.raises(AirflowSensorTimeout, match="not sent yet"):
        sensor.execute(context_for(StateStore()))


def test_unknown_id_fails_and_bad_arguments_fail_before_any_request(
    clock: EmulatedTime, sendgrid_emulator: EmulatorHandle
) -> None:
    with pytest.raises(SendGridNotFoundError):
        SendGridSingleSendStatsSensor(task_id="x", single_send_id=UNKNOWN_ID).execute(
            context_for(StateStore())
        )
    with pytest.raises(SendGridInputError, match="settle_for"):
        SendGridSingleSendStatsSensor(task_id="y", single_send_id=UNKNOWN_ID, settle_for=0)
    with pytest.raises(SendGridInputError, match="max_wait"):
        SendGridSingleSendStatsSensor(task_id="y", single_send_id=UNKNOWN_ID, max_wait="soon")
    before = len(sendgrid_emulator.admin.requests())
    with pytest.raises(SendGridInputError, match="single_send_id"):
        SendGridSingleSendStatsSensor(task_id="z", single_send_id="nope").execute(context_for(StateStore()))
    assert len(sendgrid_emulator.admin.requests()) == before


def test_outlets_carry_the_result_and_the_trigger_round_trips(
    clock: EmulatedTime, sendgrid_emulator: EmulatorHandle
) -> None:
    with api_client(sendgrid_emulator) as api:
        single_send_id = sent_single_send(api, sendgrid_emulator, contacts=5)
    clock.sleep(PERIOD)
    asset = Asset("x-sendgrid://stats/singlesends/test")
    sensor = SendGridSingleSendStatsSensor(
        task_id="o", single_send_id=single_send_id, settle_for=HOUR, outlets=[asset], deferrable=True
    )
    context = context_for(StateStore())
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    kwargs = deferred.value.trigger.serialize()[1]
    assert kwargs["wait"]["status"] == "triggered" and kwargs["settle_for"] == HOUR
    assert "api_key" not in str(kwargs) and sendgrid_emulator.api_key not in str(kwargs)
    result = run_deferrable(sensor, context)
    assert context["outlet_events"][asset].extra == result


def test_transient_503s_are_tolerated_then_too_many_fail(
    clock: EmulatedTime, sendgrid_emulator: EmulatorHandle
) -> None:
    with api_client(sendgrid_emulator) as api:
        single_send_id = sent_single_send(api, sendgrid_emulator, contacts=5)
    clock.sleep(PERIOD)
    sendgrid_emulator.admin.add_fault(
        kind="status", status=503, method="GET", path_prefix=STATS_PATH, times=2
    )
    sensor = SendGridSingleSendStatsSensor(task_id="t", single_send_id=single_send_id, settle_for=HOUR)
    assert sensor.execute(context_for(StateStore()))["provisional"] is False
    sendgrid_emulator.admin.add_fault(
        kind="status", status=503, method="GET", path_prefix=STATS_PATH, times=10
    )
    failing = SendGridSingleSendStatsSensor(
        task_id="f", single_send_id=single_send_id, settle_for=HOUR, max_consecutive_failures=2
    )
    with pytest.raises(SendGridServerError):
        failing.execute(context_for(StateStore()))


@pytest.mark.parametrize(
    "event",
    [None, {"status": "weird"}, {"status": "success", "single_send_id": 1, "provisional": False}],
)
def test_a_bad_trigger_event_fails_loudly(event: Any) -> None:
    sensor = SendGridSingleSendStatsSensor(task_id="e", single_send_id=UNKNOWN_ID)
    with pytest.raises(AirflowException):
        sensor.execute_complete(context_for(StateStore()), event)


def test_trigger_timeout_and_error_events_raise() -> None:
    sensor = SendGridSingleSendStatsSensor(task_id="e", single_send_id=UNKNOWN_ID)
    with pytest.raises(AirflowSensorTimeout, match="late"):
        sensor.execute_complete(context_for(StateStore()), {"status": "timeout", "message": "late"})
    with pytest.raises(AirflowException, match="broken"):
        sensor.execute_complete(context_for(StateStore()), {"status": "error", "message": "broken"})


def test_reschedule_mode_keeps_the_settle_clock_in_the_state_store(
    clock: EmulatedTime, sendgrid_emulator: EmulatorHandle
) -> None:
    with api_client(sendgrid_emulator) as api:
        single_send_id = sent_single_send(api, sendgrid_emulator, contacts=2000)
    clock.sleep(PERIOD)  # the counts have stopped changing
    store = StateStore()
    pokes = 0
    while True:  # a fresh sensor per poke, as after a reschedule: only the state store survives
        sensor = SendGridSingleSendStatsSensor(
            task_id="r", single_send_id=single_send_id, settle_for=3 * HOUR, mode="reschedule"
        )
        pokes += 1
        try:
            result = sensor.execute(context_for(store))
            break
        except AirflowRescheduleException:
            assert store.values, "the wait's state was not kept"
            clock.sleep(sensor.poke_interval)
        assert pokes < 10
    # Looks at 0, 1, 2 and 3 h (the 1 h poll_ceiling): without the kept state it would never settle.
    assert result["provisional"] is False and pokes == 4


def test_reschedule_mode_counts_timeout_from_the_first_poke(
    clock: EmulatedTime, sendgrid_emulator: EmulatorHandle
) -> None:
    # As the segment sensor: Airflow measures a reschedule-mode timeout from the first poke (its
    # first reschedule date), so the sensor's own deadline does too, not from each reschedule.
    with api_client(sendgrid_emulator) as api:
        single_send_id = api.post(SINGLESENDS, json={"name": "never sent"}).json()["id"]
    started = clock.now()
    first_poke = FirstRescheduleAt(None)
    store = StateStore()
    with pytest.raises(AirflowSensorTimeout, match="not finished by"):
        for _ in range(10):
            sensor = SendGridSingleSendStatsSensor(
                task_id="r", single_send_id=single_send_id, timeout=5000, mode="reschedule"
            )
            try:
                sensor.execute(context_for(store, ti=first_poke))
            except AirflowRescheduleException as rescheduled:
                assert rescheduled.reschedule_date <= started + datetime.timedelta(seconds=5000)
                first_poke.date = started
                clock.sleep(sensor.poke_interval)
    assert (clock.now() - started).total_seconds() == 5000


# ------------- issue 22 part 3 / issue 20 on this sensor too: hook_params, execution_timeout, resume


def test_hook_params_reach_the_stats_trigger(clock: EmulatedTime, sendgrid_emulator: EmulatorHandle) -> None:
    import json

    from airflow_provider_sgseg.hooks._retry import RetryPolicy

    with api_client(sendgrid_emulator) as api:
        single_send_id = sent_single_send(api, sendgrid_emulator, contacts=5)
    retry = RetryPolicy(max_attempts=3, initial_wait=0, jitter=0)
    sensor = SendGridSingleSendStatsSensor(
        task_id="h",
        single_send_id=single_send_id,
        settle_for=HOUR,
        deferrable=True,
        max_consecutive_failures=0,
        hook_params={"retry": retry},
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context_for(StateStore()))
    kwargs = deferred.value.trigger.serialize()[1]
    assert kwargs["hook_params"] == {
        "retry": {"max_attempts": 3, "initial_wait": 0, "max_wait": 60.0, "jitter": 0}
    }

    # As the triggerer rebuilds it: the hook retries within one poll, so two 503s in a row are not
    # the wait's failures (none tolerated).
    rebuilt = SendGridSingleSendStatsTrigger(**json.loads(json.dumps(kwargs)))
    clock.sleep(PERIOD)
    sendgrid_emulator.admin.add_fault(
        kind="status", status=503, method="GET", path_prefix=STATS_PATH, times=2
    )
    event = first_event(rebuilt)
    assert event["status"] == "success", event


def test_a_deferred_stats_sensor_carries_what_is_left_of_execution_timeout(
    clock: EmulatedTime, sendgrid_emulator: EmulatorHandle
) -> None:
    from types import SimpleNamespace

    from airflow_provider_sgseg.version_compat import AirflowTaskTimeout

    with api_client(sendgrid_emulator) as api:
        single_send_id = sent_single_send(api, sendgrid_emulator, contacts=5)
    started = clock.now()
    sensor = SendGridSingleSendStatsSensor(
        task_id="b",
        single_send_id=single_send_id,
        deferrable=True,
        timeout=6 * 24 * 3600,
        execution_timeout=datetime.timedelta(seconds=600),
    )
    ti = SimpleNamespace(start_date=started, get_first_reschedule_date=lambda context: None)
    context = context_for(StateStore(), ti=ti)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SendGridSingleSendStatsTrigger)
    assert datetime.datetime.fromisoformat(str(trigger.deadline)) == started + datetime.timedelta(seconds=600)
    assert deferred.value.timeout is not None
    assert deferred.value.timeout <= datetime.timedelta(seconds=600 + sensor.bounds.ceiling)
    clock.sleep(600)
    with pytest.raises(AirflowTaskTimeout, match="execution_timeout"):
        sensor.execute_complete(context, {"status": "timeout", "message": "not settled by then"})


def test_the_stats_sensor_checks_deferrable_and_resumes_through_the_one_event_check() -> None:
    with pytest.raises(SendGridInputError, match="deferrable"):
        SendGridSingleSendStatsSensor(task_id="d", single_send_id=UNKNOWN_ID, deferrable="yes")  # type: ignore[arg-type]
    sensor = SendGridSingleSendStatsSensor(task_id="e", single_send_id=UNKNOWN_ID)
    with pytest.raises(AirflowException, match="Unexpected event from SendGridSingleSendStatsTrigger"):
        sensor.execute_complete(context_for(StateStore()), {"status": "weird", "message": "x" * 10_000})
