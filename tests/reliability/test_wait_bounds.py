"""Every wait ends within its deadline, and how it ends says whether retries apply (issue 20,
parts 2 and 3; issue 22 part 3's hook_params and event check).

The triggers run against the emulator on its manual clock (``emulated_time``), except where a
slow answer needs the wall clock.
"""

from __future__ import annotations

import datetime
import json
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.hooks._retry import RetryPolicy
from airflow_provider_sgseg.operators.segments import SendGridRefreshSegmentOperator
from airflow_provider_sgseg.task import MAX_SERVER_NAMED_WAIT, resume_event
from airflow_provider_sgseg.triggers.contacts import SendGridContactsJobsTrigger
from airflow_provider_sgseg.triggers.segments import SendGridSegmentPopulatedTrigger
from airflow_provider_sgseg.version_compat import (
    AirflowException,
    AirflowFailException,
    AirflowTaskTimeout,
    TaskDeferred,
)
from tests.operators.test_contacts_emulator import wire
from tests.sensors.emulated_time import (
    SEGMENT_PATH,
    EmulatedTime,
    create_segment,
    emulated_time,
    seed_contacts,
)
from tests.sensors.test_segment_sensor_emulator import StateStore, context_for, make_sensor
from tests.triggers.test_segment_trigger_emulator import make_trigger

__all__ = ["emulated_time", "wire"]

IMPORTS = "/v3/marketing/contacts/imports/"


async def only_event(trigger: Any) -> dict[str, Any]:
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1, events
    payload: dict[str, Any] = events[0]
    return payload


@pytest.fixture
def jobs_on_the_emulated_clock(emulated_time: EmulatedTime, monkeypatch: pytest.MonkeyPatch) -> EmulatedTime:
    async def asleep(self: Any, seconds: float) -> None:
        emulated_time.sleep(seconds)

    monkeypatch.setattr(SendGridContactsJobsTrigger, "now", lambda self: emulated_time.now())
    monkeypatch.setattr(SendGridContactsJobsTrigger, "sleep", asleep)
    return emulated_time


def upsert_job(email: str) -> str:
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

    return SendGridMarketingHook().upsert_contacts(json.dumps({"contacts": [{"email": email}]}).encode())


# ------------------------------------------------- part 2: a malformed 2xx is one transient failure


async def test_a_malformed_answer_in_the_segment_trigger_is_one_transient_failure(
    emulated_time: EmulatedTime,
) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("garbled")
    emulated_time.admin.add_fault("malformed", method="GET", path_prefix=SEGMENT_PATH, times=2)

    event = await only_event(make_trigger(segment, emulated_time, max_consecutive_failures=2))

    assert event["status"] == "success", event
    assert emulated_time.segment_gets(segment["id"]) >= 3


async def test_a_malformed_answer_in_the_contacts_trigger_is_one_transient_failure(
    jobs_on_the_emulated_clock: EmulatedTime,
) -> None:
    job = upsert_job("garbled@example.com")
    jobs_on_the_emulated_clock.admin.add_fault("malformed", method="GET", path_prefix=IMPORTS, times=2)
    bounds = {"poll_floor": 1, "poll_ceiling": 60, "poke_interval": 10, "max_consecutive_failures": 2}
    trigger = SendGridContactsJobsTrigger(
        sendgrid_conn_id="sendgrid_default", job_kind="import", job_ids=[job], bounds=bounds
    )

    event = await only_event(trigger)

    assert event["status"] == "success", event


# ------------------------------------------------------- part 3: no wait outlives its deadline


async def test_no_poll_starts_once_the_deadline_has_come(emulated_time: EmulatedTime) -> None:
    segment = create_segment("late")
    now = emulated_time.now()
    trigger = make_trigger(
        segment,
        emulated_time,
        deadline=(now + datetime.timedelta(seconds=60)).isoformat(),
        first_poll_at=(now + datetime.timedelta(seconds=600)).isoformat(),
    )

    event = await only_event(trigger)

    assert event["status"] == "timeout", event
    assert emulated_time.segment_gets(segment["id"]) == 0
    assert emulated_time.now() <= now + datetime.timedelta(seconds=60)  # slept only to the deadline


async def test_a_slow_answer_cannot_hold_the_trigger_past_its_deadline(sendgrid_emulator: Any) -> None:
    # Wall clock: the answer is populated but arrives 3 s late, after the 0.5 s deadline.
    seed_contacts(sendgrid_emulator.admin, 3)
    segment = create_segment("dripping")
    sendgrid_emulator.admin.advance_clock(3600)
    sendgrid_emulator.admin.add_fault("delay", method="GET", path_prefix=SEGMENT_PATH, seconds=3)
    deadline = pendulum.now("UTC") + datetime.timedelta(seconds=0.5)
    trigger = SendGridSegmentPopulatedTrigger(
        sendgrid_conn_id="sendgrid_default",
        segment_id=segment["id"],
        watermark=None,
        deadline=deadline.isoformat(),
    )

    event = await only_event(trigger)

    assert event["status"] == "timeout", event
    assert (
        "no answer before the wait's deadline" in event["message"] or "not populated by" in event["message"]
    )


def test_a_deferred_sensor_carries_what_is_left_of_execution_timeout(emulated_time: EmulatedTime) -> None:
    segment = create_segment("bounded")
    started = emulated_time.now()
    sensor = make_sensor(
        segment["id"], deferrable=True, timeout=6 * 3600, execution_timeout=datetime.timedelta(seconds=600)
    )
    ti = SimpleNamespace(start_date=started, get_first_reschedule_date=lambda context: None)
    context = context_for(StateStore(), ti=ti)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)

    trigger = deferred.value.trigger
    assert isinstance(trigger, SendGridSegmentPopulatedTrigger)
    assert pendulum.parse(trigger.deadline) == started + datetime.timedelta(seconds=600)
    assert type(deferred.value.timeout) is datetime.timedelta  # what Airflow's supervisor can send
    assert deferred.value.timeout <= datetime.timedelta(seconds=600) + datetime.timedelta(
        seconds=sensor.bounds.ceiling
    )
    # The trigger ends at that deadline; the resumed task times out as execution_timeout does:
    # an AirflowTaskTimeout, which the task's retries apply to.
    emulated_time.sleep(600)
    with pytest.raises(AirflowTaskTimeout, match="execution_timeout"):
        sensor.execute_complete(context, {"status": "timeout", "message": "not populated by then"})


def quota_wait(emulator: Any, retry_after: str, **kwargs: Any) -> tuple[Any, DateTimeTrigger, Any]:
    """A refresh in ``wait`` mode refused with a 429 naming ``retry_after``: ``(operator, the
    trigger it deferred to, the task run)``."""
    from tests.operators.test_segments_emulator import REFRESH, TaskRun, new_segment, wired

    segment_id = new_segment(emulator)
    emulator.admin.add_fault(
        "status", method="POST", path_prefix=REFRESH, status=429, headers={"Retry-After": retry_after}
    )
    operator = wired(
        SendGridRefreshSegmentOperator(
            task_id="refresh",
            segment_id=segment_id,
            user_time_zone="UTC",
            on_quota_exhausted="wait",
            **kwargs,
        ),
        emulator,
    )
    run = TaskRun()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(run.context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, DateTimeTrigger)
    return operator, trigger, run


def test_a_server_named_quota_wait_is_capped_and_logged(
    sendgrid_emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    now = pendulum.instance(sendgrid_emulator.admin.now())
    capsys.readouterr()
    _, trigger, _ = quota_wait(sendgrid_emulator, "99999999999")
    assert trigger.moment <= now + MAX_SERVER_NAMED_WAIT
    assert "waiting only until" in capsys.readouterr().out  # Airflow writes task logs to stdout


def test_a_quota_wait_never_outlives_execution_timeout(sendgrid_emulator: Any) -> None:
    from tests.operators.test_segments_emulator import REFRESH

    now = pendulum.instance(sendgrid_emulator.admin.now())
    operator, trigger, run = quota_wait(
        sendgrid_emulator, "7200", execution_timeout=datetime.timedelta(minutes=10)
    )
    assert trigger.moment <= now + datetime.timedelta(minutes=10)
    sendgrid_emulator.admin.advance_clock(600)
    with pytest.raises(AirflowTaskTimeout):
        operator.execute_after_wait(run.context(), event=trigger.moment)
    assert len(sendgrid_emulator.admin.requests(method="POST", path_prefix=REFRESH)) == 1


# -------------------------------------------------------- issue 22: hook_params reach triggers


async def test_hook_params_reach_the_segment_trigger(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("retried")
    retry = RetryPolicy(max_attempts=3, initial_wait=0, jitter=0)
    sensor = make_sensor(
        segment["id"], deferrable=True, max_consecutive_failures=0, hook_params={"retry": retry}
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context_for(StateStore()))
    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["hook_params"] == {
        "retry": {"max_attempts": 3, "initial_wait": 0, "max_wait": 60.0, "jitter": 0}
    }

    # As the triggerer rebuilds it from the trigger table: the hook retries within one poll, so
    # two 503s in a row are not the wait's failures (none tolerated).
    rebuilt = SendGridSegmentPopulatedTrigger(**json.loads(json.dumps(kwargs)))
    emulated_time.admin.add_fault("status", status=503, method="GET", path_prefix=SEGMENT_PATH, times=2)
    event = await only_event(rebuilt)
    assert event["status"] == "success", event


def test_hook_params_that_may_hold_a_secret_or_are_not_json_stay_out_of_the_trigger(
    emulated_time: EmulatedTime,
) -> None:
    segment = create_segment("guarded")
    params = {
        "api_key": "x",
        "subuser": "SG.abc.def",
        "callback": print,
        "retry": RetryPolicy(max_attempts=2),
    }
    sensor = make_sensor(segment["id"], deferrable=True, hook_params=params)
    sensor.__dict__["hook"] = make_sensor(segment["id"]).hook  # the hook itself would refuse these
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context_for(StateStore()))
    _, kwargs = deferred.value.trigger.serialize()
    assert set(kwargs["hook_params"]) == {"retry"}
    assert "SG." not in json.dumps(kwargs)


# ----------------------------------------------- issue 22: one event check on every resume


@pytest.mark.parametrize(
    ("event", "error", "text"),
    [
        (None, AirflowException, "Unexpected event from T"),
        ("success", AirflowException, "Unexpected event from T"),
        ({"status": "done"}, AirflowException, "Unexpected event from T"),
        ({"status": "error", "message": "503 x3"}, AirflowException, "503 x3"),
        ({"status": "timeout", "message": "late"}, AirflowException, "late"),
        ({"status": "invalid", "message": "bad query"}, AirflowFailException, "bad query"),
    ],
)
def test_resume_event_fails_clearly_and_only_definitive_answers_skip_retries(
    event: object, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text) as caught:
        resume_event(event, "T")
    assert isinstance(caught.value, AirflowFailException) == (error is AirflowFailException)


def test_deferrable_is_checked_the_same_way_on_every_task() -> None:
    with pytest.raises(SendGridInputError, match="deferrable"):
        make_sensor("5b4b6d3e-0000-4000-8000-000000000001", deferrable="yes")


# ------------------------------------ trigger kwargs are a promise: old rows load and run


async def test_a_segment_trigger_row_written_by_0_2_0_loads_and_runs(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("old-row")
    row = {  # SendGridSegmentPopulatedTrigger.serialize() of 0.2.0, as stored in the trigger table
        "sendgrid_conn_id": "sendgrid_default",
        "segment_id": segment["id"],
        "watermark": None,
        "min_contacts": 1,
        "poll_floor": 60.0,
        "poll_ceiling": 3600.0,
        "poll_default": 300.0,
        "poll_slack": 30.0,
        "deadline": (emulated_time.now() + datetime.timedelta(hours=6)).isoformat(),
        "first_poll_at": None,
        "max_consecutive_failures": 5,
    }
    event = await only_event(SendGridSegmentPopulatedTrigger(**row))
    assert event["status"] == "success", event


async def test_a_contacts_trigger_row_written_before_this_release_loads_and_runs(
    jobs_on_the_emulated_clock: EmulatedTime,
) -> None:
    job = upsert_job("old-row@example.com")
    row = {  # SendGridContactsJobsTrigger.serialize() before bounds took the DAG-argument names
        "sendgrid_conn_id": "sendgrid_default",
        "job_kind": "import",
        "job_ids": [job],
        "bounds": {
            "floor": 5.0,
            "ceiling": 300.0,
            "interval": 15.0,
            "slack": 0.0,
            "max_consecutive_failures": 5,
        },
        "deadline": (jobs_on_the_emulated_clock.now() + datetime.timedelta(hours=6)).isoformat(),
        "resume": {"rows_read": 1},
    }
    trigger = SendGridContactsJobsTrigger(**row)
    assert trigger.bounds.interval == 15.0
    event = await only_event(trigger)
    assert event["status"] == "success" and event["resume"] == {"rows_read": 1}, event


# ------------------------------------------------------------------ contacts job waits


def upsert_task(**kwargs: Any) -> Any:
    from airflow_provider_sgseg.operators.contacts_upsert import SendGridUpsertContactsOperator

    rows = [{"email": f"wait{n}@example.com"} for n in range(2)]
    return SendGridUpsertContactsOperator(task_id="sync", contacts=rows, **kwargs)


def test_a_streak_of_transient_failures_while_waiting_for_jobs_stays_retriable(
    sendgrid_emulator: Any, wire: Any
) -> None:
    from tests.operators.test_segments_emulator import MemoryTaskStateStore

    sendgrid_emulator.admin.add_fault("status", method="GET", path_prefix=IMPORTS, status=503, times=50)
    operator = wire(upsert_task(hook_params={"retry": RetryPolicy(max_attempts=1)}))
    with pytest.raises(AirflowException, match="transient failures in a row") as caught:
        operator.execute({"task_state_store": MemoryTaskStateStore()})
    assert not isinstance(caught.value, AirflowFailException)  # the task's retries apply


def test_a_deferred_job_wait_carries_what_is_left_of_execution_timeout(
    sendgrid_emulator: Any, wire: Any
) -> None:
    from tests.operators.test_segments_emulator import MemoryTaskStateStore

    started = sendgrid_emulator.admin.now()
    operator = wire(
        upsert_task(
            deferrable=True,
            execution_timeout=datetime.timedelta(seconds=60),
            hook_params={"retry": RetryPolicy(max_attempts=2)},
        )
    )
    context = {"task_state_store": MemoryTaskStateStore(), "ti": SimpleNamespace(start_date=started)}
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SendGridContactsJobsTrigger)
    assert pendulum.parse(trigger.deadline) == started + datetime.timedelta(seconds=60)  # not 6 h
    assert type(deferred.value.timeout) is datetime.timedelta  # what Airflow's supervisor can send
    assert deferred.value.timeout <= datetime.timedelta(seconds=60 + operator.bounds.ceiling)
    _, kwargs = trigger.serialize()
    assert kwargs["hook_params"]["retry"]["max_attempts"] == 2

    timed_out = {"status": "timeout", "message": "not finished", "results": {}, "resume": trigger.resume}
    with pytest.raises(AirflowException, match="not finished") as caught:
        operator.execute_complete(context, timed_out)  # the wait's own timeout: retriable
    assert not isinstance(caught.value, AirflowFailException)
    sendgrid_emulator.admin.advance_clock(60)
    with pytest.raises(AirflowTaskTimeout, match="execution_timeout"):
        operator.execute_complete(context, timed_out)


@pytest.mark.parametrize("event", [None, {"status": "done"}, ["success"]])
def test_every_contacts_resume_refuses_an_unknown_event_clearly(event: object, tmp_path: Any) -> None:
    from airflow_provider_sgseg.operators.contacts_export import SendGridExportContactsOperator

    export = SendGridExportContactsOperator(task_id="e", segment_ids=["x"], destination=str(tmp_path))
    for task in (upsert_task(), export):
        with pytest.raises(
            AirflowException, match="Unexpected event from SendGridContactsJobsTrigger"
        ) as caught:
            task.execute_complete({}, event)
        assert not isinstance(caught.value, AirflowFailException)


def test_a_resumed_task_gets_only_what_is_left_of_execution_timeout(emulated_time: EmulatedTime) -> None:
    # Airflow arms the whole execution_timeout again (a SIGALRM timer) for the resumed callable;
    # the task brings that alarm forward to what is left (no timing: the armed timer is read
    # back). Armed here by hand: the module that arms it moved between Airflow lines.
    import signal

    sensor = make_sensor(
        "5b4b6d3e-0000-4000-8000-000000000001", execution_timeout=datetime.timedelta(hours=1)
    )
    ti = SimpleNamespace(start_date=emulated_time.now() - datetime.timedelta(minutes=50))
    previous = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 3600)
    try:
        sensor.check_execution_deadline({"ti": ti})  # type: ignore[typeddict-item]
        armed, _ = signal.getitimer(signal.ITIMER_REAL)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert 0 < armed <= 600


def test_the_sensor_does_not_depend_on_the_operators_package() -> None:
    from tests.helpers import modules_imported_by

    loaded = modules_imported_by("import airflow_provider_sgseg.sensors.segments")
    assert not {name for name in loaded if name.startswith("airflow_provider_sgseg.operators")}


def test_the_deferral_timeout_is_a_plain_timedelta_even_from_pendulum_times() -> None:
    # Airflow's supervisor cannot send pendulum's Duration: a real deferral failed with
    # "Objects of type <class 'pendulum.duration.Duration'> are not supported".
    from airflow_provider_sgseg.task import SendGridTaskMixin

    now = pendulum.now("UTC")
    timeout = SendGridTaskMixin.defer_timeout(now.add(seconds=60), now, 300)
    assert type(timeout) is datetime.timedelta and timeout == datetime.timedelta(seconds=360)
    assert SendGridTaskMixin.defer_timeout(now, now.add(seconds=5), 300) == datetime.timedelta(seconds=300)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_while_waiting_for_jobs_stays_retriable(
    sendgrid_emulator: Any, wire: Any, status: int
) -> None:
    # docs/reliability.md: only a job SendGrid does not know fails without retries; any other
    # error answer (a key revoked or rotated mid-wait) is the typed error, which retries apply to.
    from airflow_provider_sgseg.exceptions import SendGridAuthError
    from tests.operators.test_segments_emulator import MemoryTaskStateStore

    sendgrid_emulator.admin.add_fault("status", method="GET", path_prefix=IMPORTS, status=status, times=50)
    operator = wire(upsert_task(hook_params={"retry": RetryPolicy(max_attempts=1)}))
    with pytest.raises(SendGridAuthError) as caught:
        operator.execute({"task_state_store": MemoryTaskStateStore()})
    assert caught.value.status_code == status


async def test_a_refused_key_in_the_contacts_trigger_ends_the_wait_retriably(
    jobs_on_the_emulated_clock: EmulatedTime,
) -> None:
    job = upsert_job("revoked@example.com")
    jobs_on_the_emulated_clock.admin.add_fault(
        "status", method="GET", path_prefix=IMPORTS, status=401, times=50
    )
    bounds = {"poll_floor": 1, "poll_ceiling": 60, "poke_interval": 10, "max_consecutive_failures": 2}
    trigger = SendGridContactsJobsTrigger(
        sendgrid_conn_id="sendgrid_default", job_kind="import", job_ids=[job], bounds=bounds
    )

    event = await only_event(trigger)

    assert event["status"] == "error" and "401" in event["message"], event
    with pytest.raises(AirflowException) as caught:
        resume_event(event, "SendGridContactsJobsTrigger")
    assert not isinstance(caught.value, AirflowFailException)
