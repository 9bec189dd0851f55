"""SendGridSegmentPopulatedSensor without a server: arguments, trigger events, cheap imports."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor
from airflow_provider_sgseg.version_compat import AirflowException, AirflowFailException, AirflowSensorTimeout
from tests.helpers import modules_imported_by

SEGMENT_ID = "5b4b6d3e-0000-4000-8000-000000000001"


def make_sensor(**overrides: Any) -> SendGridSegmentPopulatedSensor:
    return SendGridSegmentPopulatedSensor(task_id="wait", segment_id=SEGMENT_ID, **overrides)


def test_importing_the_sensor_does_not_import_the_hook() -> None:
    # airflow.sdk already imports httpx itself, so what matters is that DAG parsing never
    # loads the hook (and whatever it pulls in) through the sensor.
    code = (
        "import airflow_provider_sgseg.sensors.segments as m\n"
        "m.SendGridSegmentPopulatedSensor(task_id='t', segment_id='x')\n"
    )
    # What constructing any sensor loads is Airflow's (on 3.0 that includes httpx and airflow.hooks).
    any_sensor = (
        "from airflow.sdk import BaseSensorOperator\n"
        "class S(BaseSensorOperator):\n"
        "    def poke(self, context): return True\n"
        "S(task_id='s')\n"
    )
    new = modules_imported_by(code, setup=any_sensor)
    assert sorted(n for n in new if "hooks" in n or "httpx" in n) == []


def test_template_fields_cover_ids_and_the_watermark() -> None:
    assert set(SendGridSegmentPopulatedSensor.template_fields) >= {"segment_id", "refreshed_after"}


def test_deferrable_defaults_to_the_operators_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert make_sensor().deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert make_sensor().deferrable is False
    assert make_sensor(deferrable=True).deferrable is True


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_contacts": -1}, "min_contacts"),
        ({"min_contacts": "5"}, "min_contacts"),
        ({"max_consecutive_failures": -2}, "max_consecutive_failures"),
        ({"poll_floor": 0}, "poll_floor"),
        ({"poll_floor": 120, "poll_ceiling": 60}, "poll_ceiling"),
        ({"poll_slack": -5}, "poll_slack"),
    ],
)
def test_bad_static_arguments_fail_at_parse_naming_the_argument(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(SendGridInputError) as caught:
        make_sensor(**kwargs)
    assert caught.value.name == name


def test_poke_interval_is_seeded_from_poll_default() -> None:
    assert make_sensor(poll_default=240).poke_interval == 240


SUCCESS = {
    "status": "success",
    "message": "fresh sample counts 7 contacts",
    "segment_id": SEGMENT_ID,
    "contacts_count": 7,
    "sample_updated_at": "2026-03-01T12:00:00+00:00",
}


def test_execute_complete_returns_the_result_on_success() -> None:
    assert make_sensor().execute_complete({}, SUCCESS) == {  # type: ignore[arg-type]
        "segment_id": SEGMENT_ID,
        "contacts_count": 7,
        "sample_updated_at": "2026-03-01T12:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("event", "error", "text"),
    [
        ({"status": "invalid", "message": "bad column"}, AirflowFailException, "bad column"),
        ({"status": "timeout", "message": "not populated by 18:00"}, AirflowSensorTimeout, "18:00"),
        ({"status": "error", "message": "HTTP 503 six times"}, AirflowException, "503"),
        (None, AirflowException, "Unexpected event"),
        ({}, AirflowException, "Unexpected event"),
        ({"status": "done"}, AirflowException, "Unexpected event"),
        ("success", AirflowException, "Unexpected event"),
        ({"status": "success"}, AirflowException, "missing result fields"),
        ({**SUCCESS, "contacts_count": "7"}, AirflowException, "missing result fields"),
        ({**SUCCESS, "sample_updated_at": None}, AirflowException, "missing result fields"),
    ],
)
def test_execute_complete_fails_loudly_on_anything_but_a_complete_success(
    event: object, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        make_sensor().execute_complete({}, event)  # type: ignore[arg-type]


def test_invalid_event_is_not_retried() -> None:
    # AirflowFailException skips the task's retries: the query will not fix itself.
    with pytest.raises(AirflowFailException):
        make_sensor(retries=3).execute_complete({}, {"status": "invalid", "message": "m"})  # type: ignore[arg-type]
