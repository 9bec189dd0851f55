"""SendGridSegmentPopulatedTrigger without a server: what it serialises and how it prints."""

from __future__ import annotations

import json

import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.triggers.segments import SendGridSegmentPopulatedTrigger

SEGMENT_ID = "5b4b6d3e-0000-4000-8000-000000000001"
API_KEY = "SG.super-secret-key-that-must-not-leak"


def make_trigger(**overrides: object) -> SendGridSegmentPopulatedTrigger:
    kwargs: dict[str, object] = {
        "sendgrid_conn_id": "sendgrid_default",
        "segment_id": SEGMENT_ID,
        "watermark": "2026-03-01T11:00:00+00:00",
        "min_contacts": 3,
        "poll_floor": 5.0,
        "poll_ceiling": 600.0,
        "poke_interval": 120.0,
        "poll_slack": 10.0,
        "deadline": "2026-03-01T18:00:00+00:00",
        "first_poll_at": "2026-03-01T12:00:30+00:00",
        "max_consecutive_failures": 2,
    }
    kwargs.update(overrides)
    return SendGridSegmentPopulatedTrigger(**kwargs)  # type: ignore[arg-type]


def test_serialize_round_trips_to_an_equal_trigger() -> None:
    classpath, kwargs = make_trigger().serialize()
    assert classpath == "airflow_provider_sgseg.triggers.segments.SendGridSegmentPopulatedTrigger"
    rebuilt = SendGridSegmentPopulatedTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["watermark"] == "2026-03-01T11:00:00+00:00"
    assert kwargs["min_contacts"] == 3
    assert kwargs["poll_floor"] == 5.0 and kwargs["poll_ceiling"] == 600.0
    assert kwargs["deadline"] == "2026-03-01T18:00:00+00:00"
    assert kwargs["max_consecutive_failures"] == 2


def test_serialize_holds_only_plain_json_values() -> None:
    _, kwargs = make_trigger().serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert set(kwargs) == {
        "sendgrid_conn_id",
        "segment_id",
        "watermark",
        "min_contacts",
        "poll_floor",
        "poll_ceiling",
        "poke_interval",
        "poll_slack",
        "deadline",
        "first_poll_at",
        "max_consecutive_failures",
    }


def test_the_key_never_appears_in_serialize_or_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "sendgrid_marketing", "host": "http://127.0.0.1:9", "password": API_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", json.dumps(conn))
    trigger = make_trigger()
    assert API_KEY not in json.dumps(trigger.serialize())
    assert API_KEY not in repr(trigger)
    assert SEGMENT_ID in repr(trigger)


def test_bad_poll_bounds_are_refused_when_the_trigger_is_built() -> None:
    with pytest.raises(SendGridInputError, match="poll_ceiling"):
        make_trigger(poll_floor=10.0, poll_ceiling=5.0)


def test_a_trigger_serialised_by_0_2_0_still_loads() -> None:
    # 0.2.0 called poke_interval poll_default; rows it wrote to the trigger table must still load.
    _, kwargs = make_trigger().serialize()
    legacy = {name: value for name, value in kwargs.items() if name != "poke_interval"}
    legacy["poll_default"] = kwargs["poke_interval"]
    assert SendGridSegmentPopulatedTrigger(**legacy).serialize()[1] == kwargs


def test_unknown_trigger_kwargs_are_refused() -> None:
    with pytest.raises(TypeError, match="poll_sideways"):
        make_trigger(poll_sideways=1.0)
