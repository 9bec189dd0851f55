"""SendGridSegmentPopulatedSensor against the emulator on its manual clock, in every mode."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import airflow.sdk.bases.sensor
import pytest
from airflow.sdk import Asset
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridServerError, SendGridValidationError
from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.sensors.segments import STATE_KEY, SendGridSegmentPopulatedSensor
from airflow_provider_sgseg.triggers.segments import SendGridSegmentPopulatedTrigger
from airflow_provider_sgseg.version_compat import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from tests.helpers import last_info_line, task_log_lines
from tests.sensors.emulated_time import (
    SEGMENT_PATH,
    EmulatedTime,
    create_segment,
    read_segment,
    seed_contacts,
)


class StateStore:
    """The task_state_store interface (get/set/delete), kept in memory across sensor instances."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        assert value is not None
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


class RescheduledTaskInstance:
    """Just what BaseSensorOperator asks of ``ti`` in reschedule mode, and the XCom the sensor
    pushes for its link (recorded)."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def get_first_reschedule_date(self, context: Any) -> None:
        return None

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class FirstRescheduleAt(RescheduledTaskInstance):
    """A task instance whose first reschedule (if any) happened at ``date``."""

    def __init__(self, date: datetime.datetime | None) -> None:
        super().__init__()
        self.date = date

    def get_first_reschedule_date(self, context: Any) -> datetime.datetime | None:
        return self.date


def make_sensor(segment_id: str, **overrides: Any) -> SendGridSegmentPopulatedSensor:
    kwargs: dict[str, Any] = {"task_id": "wait", "segment_id": segment_id, "timeout": 6 * 3600}
    kwargs.update(overrides)
    return SendGridSegmentPopulatedSensor(**kwargs)


def context_for(store: StateStore | None = None, **extra: Any) -> Any:
    context: dict[str, Any] = {"ti": RescheduledTaskInstance(), "outlet_events": OutletEventAccessors()}
    if store is not None:
        context["task_state_store"] = store
    context.update(extra)
    return context


def run_deferrable(sensor: SendGridSegmentPopulatedSensor, context: Any) -> Any:
    """What Airflow does: execute, run the trigger it defers to, resume with the event."""
    try:
        return sensor.execute(context)
    except TaskDeferred as deferred:
        assert deferred.method_name == "execute_complete"
        trigger = deferred.trigger
        assert isinstance(trigger, SendGridSegmentPopulatedTrigger)

        async def first_event() -> Any:
            async for event in trigger.run():
                return event.payload
            raise AssertionError("the trigger ended without an event")

        event = asyncio.run(first_event())
        return sensor.execute_complete(context, event)


def run_rescheduled(segment_id: str, clock: EmulatedTime, store: StateStore, **overrides: Any) -> Any:
    """Reschedule mode: a fresh sensor (fresh process) per poke; only the state store survives."""
    for _ in range(10):
        sensor = make_sensor(segment_id, mode="reschedule", **overrides)
        try:
            return sensor.execute(context_for(store))
        except AirflowRescheduleException:
            clock.sleep(sensor.poke_interval)
    raise AssertionError("still rescheduling after 10 pokes")


def populated_segment(clock: EmulatedTime, contacts: int) -> dict[str, Any]:
    seed_contacts(clock.admin, contacts)
    segment = create_segment("members")
    clock.sleep(900 + 1)  # past SendGrid's creation delay: the first real sample exists
    populated = read_segment(segment["id"])
    assert populated["contacts_count"] == contacts
    return populated


def iso(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_every_mode_waits_for_the_next_hourly_sample_with_at_most_three_gets(
    emulated_time: EmulatedTime, mode: str
) -> None:
    segment = populated_segment(emulated_time, 2)
    seed_contacts(emulated_time.admin, 5)  # three more contacts for the next hourly sample
    gets_before = emulated_time.segment_gets(segment["id"])
    started = emulated_time.now()
    store = StateStore()

    if mode == "poke":
        result = make_sensor(segment["id"]).execute(context_for(store))
    elif mode == "reschedule":
        result = run_rescheduled(segment["id"], emulated_time, store)
    else:
        result = run_deferrable(make_sensor(segment["id"], deferrable=True), context_for(store))

    after = read_segment(segment["id"])
    assert result == {
        "segment_id": segment["id"],
        "contacts_count": 5,
        "sample_updated_at": iso(after["sample_updated_at"]).isoformat(),
    }
    assert iso(after["sample_updated_at"]) > iso(segment["sample_updated_at"])
    waited = (emulated_time.now() - started).total_seconds()
    assert 3000 <= waited <= 3700
    assert emulated_time.segment_gets(segment["id"]) - gets_before <= 3
    assert STATE_KEY not in store.values  # cleaned up after success


def test_a_new_segment_is_awaited_through_the_creation_delay(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 4)
    segment = create_segment("fresh")

    result = make_sensor(segment["id"]).execute(context_for())

    assert result["contacts_count"] == 4
    assert emulated_time.segment_gets(segment["id"]) <= 3


def test_the_segment_link_opens_the_watched_segment(emulated_time: EmulatedTime) -> None:
    from airflow_provider_sgseg.links import SendGridSegmentLink, segment_url

    segment = populated_segment(emulated_time, 2)
    context = context_for()
    make_sensor(segment["id"]).execute(context)

    base_url = emulated_time.admin.base_url
    assert SendGridSegmentLink in [type(link) for link in SendGridSegmentPopulatedSensor.operator_extra_links]
    assert context["ti"].pushed == {"sendgrid_links": {"api_base_url": base_url, "segment_id": segment["id"]}}
    page = f"{base_url}/__emulator__/inspect?segment_id={segment['id']}"
    assert segment_url(segment["id"], base_url) == page


def test_refresh_xcom_as_watermark_succeeds_after_the_refresh_sample(emulated_time: EmulatedTime) -> None:
    segment = populated_segment(emulated_time, 2)
    seed_contacts(emulated_time.admin, 6)
    requested_at = emulated_time.now()
    job = SendGridMarketingHook().refresh_segment(segment["id"], "UTC")
    refresh_xcom = {
        "segment_id": segment["id"],
        "job_id": job["job_id"],
        "requested_at": requested_at.isoformat(),
        "watermark": segment["sample_updated_at"],
    }

    sensor = make_sensor(segment["id"], watermark=refresh_xcom, poll_floor=10, deferrable=True)
    result = run_deferrable(sensor, context_for())

    assert result["contacts_count"] == 6
    assert iso(result["sample_updated_at"]) >= requested_at
    # Minutes after the refresh, not the next hourly sample.
    assert (emulated_time.now() - requested_at).total_seconds() < 600


@pytest.mark.parametrize("deferrable", [False, True])
def test_an_invalid_query_fails_at_once_with_sendgrids_message(
    emulated_time: EmulatedTime, deferrable: bool
) -> None:
    segment = create_segment("broken", "SELECT contact_id, updated_at FROM no_such_table")

    with pytest.raises(AirflowFailException, match="no_such_table"):
        run_deferrable(make_sensor(segment["id"], deferrable=deferrable), context_for())
    assert emulated_time.segment_gets(segment["id"]) == 1


def test_an_invalid_query_with_soft_fail_skips(emulated_time: EmulatedTime) -> None:
    segment = create_segment("broken", "SELECT contact_id, updated_at FROM no_such_table")
    for deferrable in (False, True):
        with pytest.raises(AirflowSkipException):
            run_deferrable(make_sensor(segment["id"], deferrable=deferrable, soft_fail=True), context_for())


@pytest.mark.parametrize("deferrable", [False, True])
def test_min_contacts_not_met_times_out_with_the_last_count(
    emulated_time: EmulatedTime, deferrable: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    segment = populated_segment(emulated_time, 2)
    sensor = make_sensor(
        segment["id"], min_contacts=10, timeout=3 * 3600, deferrable=deferrable, watermark="2000-01-01"
    )
    started = emulated_time.now()
    capsys.readouterr()

    with pytest.raises(AirflowSensorTimeout) as timed_out:
        run_deferrable(sensor, context_for())

    # The last look is at the deadline, not up to poll_ceiling after it.
    assert (emulated_time.now() - started).total_seconds() == 3 * 3600
    assert "fewer than min_contacts=10" in str(timed_out.value)  # says why it was still waiting
    if not deferrable:  # and each poke's log line says so too (the triggerer logs elsewhere)
        waiting = [line for line in capsys.readouterr().out.splitlines() if "not populated yet" in line]
        assert waiting and all("fewer than min_contacts=10" in line for line in waiting)
    assert emulated_time.segment_gets(segment["id"]) <= 6


@pytest.mark.parametrize("failing", [False, True])
def test_poke_mode_takes_its_last_look_at_the_deadline(emulated_time: EmulatedTime, failing: bool) -> None:
    segment = populated_segment(emulated_time, 2)
    if failing:  # the last polls fail: the deadline still holds, with the last error as reason
        emulated_time.admin.add_fault(
            kind="status", status=503, method="GET", path_prefix=SEGMENT_PATH, times=100
        )
    sensor = make_sensor(segment["id"], timeout=5000, min_contacts=10, max_consecutive_failures=100)
    started = emulated_time.now()

    with pytest.raises(AirflowSensorTimeout, match="not populated by") as timed_out:
        sensor.execute(context_for())

    assert (emulated_time.now() - started).total_seconds() == 5000
    assert emulated_time.slept[-1] < 3600  # the last wait was cut short to end at the deadline
    last_get = emulated_time.admin.requests(method="GET", path_prefix=SEGMENT_PATH + segment["id"])[-1]
    assert iso(last_get["time"]) == started + datetime.timedelta(seconds=5000)
    if failing:
        assert "503" in str(timed_out.value)


def test_reschedule_mode_takes_its_last_look_at_the_deadline(
    emulated_time: EmulatedTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = populated_segment(emulated_time, 2)
    started = emulated_time.now()
    # Airflow measures a rescheduled sensor's timeout from its first reschedule, on its own clock.
    monkeypatch.setattr(airflow.sdk.bases.sensor.timezone, "utcnow", emulated_time.now)
    first_poke = FirstRescheduleAt(None)
    store = StateStore()

    with pytest.raises(AirflowSensorTimeout, match="not populated by"):
        for _ in range(10):
            sensor = make_sensor(segment["id"], mode="reschedule", timeout=5000, min_contacts=10)
            try:
                sensor.execute(context_for(store, ti=first_poke))
            except AirflowRescheduleException as rescheduled:
                assert rescheduled.reschedule_date <= started + datetime.timedelta(seconds=5000)
                first_poke.date = started
                emulated_time.sleep(sensor.poke_interval)

    assert (emulated_time.now() - started).total_seconds() == 5000


def test_poke_mode_tolerates_transient_503s(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("flaky")
    emulated_time.admin.add_fault(kind="status", status=503, method="GET", path_prefix=SEGMENT_PATH, times=2)

    result = make_sensor(segment["id"], max_consecutive_failures=2).execute(context_for())

    assert result["contacts_count"] == 3


def test_the_status_not_the_wording_decides_wait_or_fail(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("worded")
    worded = {"errors": [{"field": None, "message": "segment does not exist"}]}
    emulated_time.admin.add_fault(
        kind="status", status=503, method="GET", path_prefix=SEGMENT_PATH, body=worded
    )
    assert make_sensor(segment["id"]).execute(context_for())["contacts_count"] == 3  # a 503: waited out

    later = {"errors": [{"field": None, "message": "temporarily unavailable, try again later"}]}
    emulated_time.admin.add_fault(
        kind="status", status=400, method="GET", path_prefix=SEGMENT_PATH, body=later
    )
    gets = emulated_time.segment_gets(segment["id"])
    with pytest.raises(SendGridValidationError, match="try again later"):  # a 400: not tolerated
        make_sensor(segment["id"]).execute(context_for())
    assert emulated_time.segment_gets(segment["id"]) == gets + 1


def test_poke_mode_fails_after_too_many_503s_in_a_row(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("down")
    emulated_time.admin.add_fault(kind="status", status=503, method="GET", path_prefix=SEGMENT_PATH, times=10)
    store = StateStore()

    with pytest.raises(SendGridServerError):
        make_sensor(segment["id"], max_consecutive_failures=2).execute(context_for(store))

    assert emulated_time.segment_gets(segment["id"]) == 3
    assert emulated_time.slept == [60.0, 120.0]
    assert store.values[STATE_KEY]["failures"] == 0  # a retry of the task starts counting afresh


def test_reschedule_mode_counts_failures_across_reschedules(emulated_time: EmulatedTime) -> None:
    seed_contacts(emulated_time.admin, 3)
    segment = create_segment("down")
    emulated_time.admin.add_fault(kind="status", status=503, method="GET", path_prefix=SEGMENT_PATH, times=10)

    with pytest.raises(SendGridServerError):
        run_rescheduled(segment["id"], emulated_time, StateStore(), max_consecutive_failures=2)

    assert emulated_time.segment_gets(segment["id"]) == 3


def test_deferrable_sensor_hands_the_watermark_and_schedule_to_the_trigger(
    emulated_time: EmulatedTime,
) -> None:
    segment = populated_segment(emulated_time, 2)
    sensor = make_sensor(segment["id"], deferrable=True, min_contacts=2, poll_floor=30, timeout=7200)
    now = emulated_time.now()

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context_for())

    _, kwargs = deferred.value.trigger.serialize()
    assert iso(kwargs["watermark"]) == iso(segment["sample_updated_at"])
    assert kwargs["min_contacts"] == 2
    assert kwargs["poll_floor"] == 30
    assert iso(kwargs["deadline"]) == now + datetime.timedelta(seconds=7200)
    # next_sample_update + 30 s slack, but never later than the one-hour ceiling.
    expected_first_poll = min(
        iso(segment["next_sample_update"]) + datetime.timedelta(seconds=30), now + datetime.timedelta(hours=1)
    )
    assert iso(kwargs["first_poll_at"]) == expected_first_poll
    assert emulated_time.segment_gets(segment["id"]) == 2  # populated_segment's read + one look


def test_the_deferral_timeout_is_a_plain_timedelta_on_pendulum_time(emulated_time: EmulatedTime) -> None:
    # A task's clock is pendulum's; Airflow's task runner sends the deferral to its supervisor,
    # which refuses pendulum's Duration (the task then fails instead of deferring).
    import pendulum

    segment = populated_segment(emulated_time, 2)
    sensor = make_sensor(segment["id"], deferrable=True, min_contacts=2, timeout=7200)
    sensor.now = lambda: pendulum.instance(emulated_time.now())  # type: ignore[method-assign]

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context_for())

    assert type(deferred.value.timeout) is datetime.timedelta
    assert deferred.value.timeout == datetime.timedelta(seconds=7200 + sensor.bounds.ceiling)


def test_deferrable_sensor_whose_first_look_fails_waits_for_a_sample_after_that_look(
    emulated_time: EmulatedTime,
) -> None:
    segment = populated_segment(emulated_time, 2)
    emulated_time.admin.add_fault(kind="status", status=503, method="GET", path_prefix=SEGMENT_PATH, times=1)
    first_look = emulated_time.now()

    with pytest.raises(TaskDeferred) as deferred:
        make_sensor(segment["id"], deferrable=True).execute(context_for())

    # The watermark is fixed at the failed first look and travels in the trigger's arguments,
    # so a triggerer restart cannot move it past a sample that lands meanwhile.
    _, kwargs = deferred.value.trigger.serialize()
    assert iso(kwargs["watermark"]) == first_look
    assert iso(kwargs["watermark"]) > iso(segment["sample_updated_at"])


def test_the_watermark_survives_a_retry_through_the_state_store(emulated_time: EmulatedTime) -> None:
    segment = populated_segment(emulated_time, 2)
    store = StateStore()
    with pytest.raises(TaskDeferred):
        make_sensor(segment["id"], deferrable=True).execute(context_for(store))
    seed_contacts(emulated_time.admin, 3)
    emulated_time.sleep(3600 + 60)  # the next sample arrives while the first try is failing

    retried = make_sensor(segment["id"], deferrable=True).execute(context_for(store))

    # Had the retry taken a new watermark, this sample would not count and it would defer again.
    assert retried["contacts_count"] == 3


@pytest.mark.parametrize(
    ("with_store", "as_text"),
    [(True, False), (False, False), (False, True)],
    ids=["state-store", "no-store (Airflow 3.1, 3.2)", "no-store, date as ISO text (Airflow 3.0)"],
)
def test_a_sample_landing_between_reschedules_counts(
    emulated_time: EmulatedTime, with_store: bool, as_text: bool
) -> None:
    """Each reschedule is a fresh process. With a store the first poke's watermark is read back;
    without one (Airflow < 3.3) the first poke's time (Airflow's first reschedule date) stands in."""
    segment = populated_segment(emulated_time, 2)
    store = StateStore() if with_store else None
    first_poke: Any = emulated_time.now().isoformat() if as_text else emulated_time.now()
    sensor = make_sensor(segment["id"], mode="reschedule")
    with pytest.raises(AirflowRescheduleException):
        sensor.execute(context_for(store, ti=FirstRescheduleAt(None)))
    seed_contacts(emulated_time.admin, 3)
    emulated_time.sleep(3600 + 60)  # the next sample lands before the next poke

    result = make_sensor(segment["id"], mode="reschedule").execute(
        context_for(store, ti=FirstRescheduleAt(first_poke))
    )

    # Had the second poke taken the sample it sees as its watermark, it would reschedule again.
    assert result["contacts_count"] == 3
    assert iso(result["sample_updated_at"]) > iso(segment["sample_updated_at"])


def test_outlets_carry_the_result_in_the_asset_event_extra(emulated_time: EmulatedTime) -> None:
    segment = populated_segment(emulated_time, 2)
    asset = Asset("sendgrid-segment://members")
    context = context_for()

    result = make_sensor(segment["id"], outlets=[asset], watermark="2000-01-01").execute(context)

    assert result["contacts_count"] == 2
    assert context["outlet_events"][asset].extra == result


def test_each_poll_logs_count_sample_time_watermark_and_next_poll(
    emulated_time: EmulatedTime, capsys: pytest.CaptureFixture[str]
) -> None:
    segment = populated_segment(emulated_time, 2)
    seed_contacts(emulated_time.admin, 3)
    capsys.readouterr()
    polled_at = emulated_time.now()

    make_sensor(segment["id"]).execute(context_for())

    logged = capsys.readouterr().out.splitlines()  # Airflow's structlog writes task logs to stdout
    waiting = [line for line in logged if "not populated yet" in line]
    assert len(waiting) == 1
    line = waiting[0]
    assert "contacts_count=2" in line
    assert f"sample_updated_at={iso(segment['sample_updated_at']).isoformat()}" in line
    assert f"watermark={iso(segment['sample_updated_at']).isoformat()}" in line
    expected_next = min(
        iso(segment["next_sample_update"]) + datetime.timedelta(seconds=30),
        polled_at + datetime.timedelta(hours=1),
    )
    assert f"next poll at {expected_next.isoformat()}" in line


def test_a_bad_watermark_fails_before_any_request(emulated_time: EmulatedTime) -> None:
    segment = populated_segment(emulated_time, 2)
    gets_before = emulated_time.segment_gets(segment["id"])

    with pytest.raises(SendGridInputError, match="watermark"):
        make_sensor(segment["id"], watermark="after lunch").execute(context_for())
    with pytest.raises(SendGridInputError, match="segment_id"):
        make_sensor("not-a-uuid").execute(context_for())

    assert emulated_time.segment_gets(segment["id"]) == gets_before


# --- issue 23: the last log line, and a next poll the deadline cuts off -----------------------


@pytest.mark.parametrize("deferrable", [False, True])
def test_a_wait_ends_its_log_with_segment_name_id_contacts_and_sample_time(
    emulated_time: EmulatedTime, capsys: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    """Also when it resumes from a deferral: Airflow's poke loop logs its own line after poke()."""
    segment = populated_segment(emulated_time, 2)
    seed_contacts(emulated_time.admin, 3)
    capsys.readouterr()
    sensor = make_sensor(segment["id"], deferrable=deferrable, min_contacts=3)
    result = run_deferrable(sensor, context_for(StateStore()))
    assert result["contacts_count"] == 3
    assert last_info_line(capsys.readouterr().out) == (
        f"Segment populated: segment 'members' ({segment['id']}) counts 3 contacts (min_contacts=3) "
        f"in the sample of {result['sample_updated_at']}."
    )


def test_a_deferred_wait_resumed_without_a_state_store_still_names_the_segment(
    emulated_time: EmulatedTime, capsys: pytest.CaptureFixture[str]
) -> None:
    """Airflow < 3.3: the resumed task is a new operator in a new process, with no state store."""
    segment = populated_segment(emulated_time, 2)
    seed_contacts(emulated_time.admin, 3)
    with pytest.raises(TaskDeferred) as deferred:
        make_sensor(segment["id"], deferrable=True, min_contacts=3).execute(context_for())

    async def first_event() -> Any:
        async for event in deferred.value.trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(first_event())
    capsys.readouterr()
    resumed = make_sensor(segment["id"], deferrable=True, min_contacts=3)
    result = resumed.execute_complete(context_for(), event)
    assert last_info_line(capsys.readouterr().out) == (
        f"Segment populated: segment 'members' ({segment['id']}) counts 3 contacts (min_contacts=3) "
        f"in the sample of {result['sample_updated_at']}."
    )


def waiting_lines(stdout: str) -> list[str]:
    return [line for line in task_log_lines(stdout) if "not populated yet" in line]


def test_the_poll_line_names_execution_timeout_when_it_ends_the_task_before_the_next_poll(
    emulated_time: EmulatedTime, capsys: pytest.CaptureFixture[str]
) -> None:
    segment = populated_segment(emulated_time, 2)
    capsys.readouterr()
    started = emulated_time.now()
    sensor = make_sensor(segment["id"], execution_timeout=datetime.timedelta(seconds=30))
    assert not sensor.poke(context_for())  # the poll floor (60 s) is past execution_timeout
    (line,) = waiting_lines(capsys.readouterr().out)
    assert "next poll at" not in line
    ends = (started + datetime.timedelta(seconds=30)).isoformat()
    assert (
        f"; no further poll: execution_timeout ends the wait at {ends} (in 30 s) (the next one would be at "
        in line
    )


def test_the_poll_line_announces_the_last_poll_at_the_sensors_timeout_and_that_poll_happens(
    emulated_time: EmulatedTime, capsys: pytest.CaptureFixture[str]
) -> None:
    segment = populated_segment(emulated_time, 2)
    capsys.readouterr()
    started = emulated_time.now()
    gets = emulated_time.segment_gets(segment["id"])
    with pytest.raises(AirflowSensorTimeout):
        make_sensor(segment["id"], timeout=30).execute(context_for())
    (line,) = waiting_lines(capsys.readouterr().out)
    at = (started + datetime.timedelta(seconds=30)).isoformat()
    assert line.endswith(f"; last poll at {at} (in 30 s), when timeout runs out")
    assert emulated_time.segment_gets(segment["id"]) == gets + 2  # the first look and that last one


def test_a_deferrable_sensors_first_look_names_the_triggers_deadline(
    emulated_time: EmulatedTime, capsys: pytest.CaptureFixture[str]
) -> None:
    segment = populated_segment(emulated_time, 2)
    capsys.readouterr()
    started = emulated_time.now()
    with pytest.raises(TaskDeferred):
        make_sensor(segment["id"], timeout=30, deferrable=True).execute(context_for(StateStore()))
    (line,) = waiting_lines(capsys.readouterr().out)
    ends = (started + datetime.timedelta(seconds=30)).isoformat()
    assert f"; no further poll: timeout ends the wait at {ends} (in 30 s)" in line
