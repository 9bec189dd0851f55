"""Table tests for the pure client-side validators."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules import validation

UUID_A = "6b2b2a0e-7e1f-4b8b-9a53-0c1c3d5e6f70"
UUID_B = "0f6c3f7d-2b9e-4c55-8f1a-7d3e2c1b0a99"
UUIDS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(12)]

Validator = Callable[[Any], Any]

VALID: list[tuple[Validator, object, object]] = [
    (validation.segment_id, UUID_A, UUID_A),
    (validation.segment_id, f"  {UUID_A}\n", UUID_A),
    # SendGrid answers lowercase ids: an uppercase one is normalised, or nothing would match it.
    (validation.segment_id, UUID_A.upper(), UUID_A),
    (validation.single_send_id, UUID_B.upper(), UUID_B),
    (validation.list_id, UUID_B.upper(), UUID_B),
    (validation.single_send_ids, [UUID_A.upper(), UUID_A, UUID_B], [UUID_A, UUID_B]),
    (validation.single_send_list_ids, [UUID_B.upper()], [UUID_B]),
    (validation.list_filter_ids, f"{UUID_A.upper()},{UUID_B}", [UUID_A, UUID_B]),
    (validation.single_send_id, UUID_B, UUID_B),
    (validation.time_zone, "America/Chicago", "America/Chicago"),
    (validation.time_zone, "UTC", "UTC"),
    (validation.time_zone, "Europe/Berlin ", "Europe/Berlin"),
    (validation.time_zone, "Europe/Berlin", "Europe/Berlin"),
    (validation.time_zone, "Etc/GMT+5", "Etc/GMT+5"),
    (validation.time_zone, "Etc/UTC", "Etc/UTC"),
    (validation.segment_name, "Active buyers", "Active buyers"),
    (validation.segment_name, "x", "x"),
    (validation.segment_name, "n" * 100, "n" * 100),
    (validation.segment_name, " padded \n", "padded"),
    (validation.single_send_name, "Weekly digest", "Weekly digest"),
    (
        validation.query_dsl,
        " SELECT contact_id, updated_at FROM contact_data ",
        "SELECT contact_id, updated_at FROM contact_data",
    ),
    (validation.parent_list_ids, None, None),
    (validation.parent_list_ids, [], None),
    (validation.parent_list_ids, [UUID_A], [UUID_A]),
    (validation.parent_list_ids, UUID_A, [UUID_A]),
    (validation.parent_list_ids, [UUID_A, UUID_A], [UUID_A]),
    (validation.list_filter_ids, None, None),
    (validation.list_filter_ids, f"{UUID_A},{UUID_B}", [UUID_A, UUID_B]),
    (validation.list_filter_ids, [UUID_A, UUID_B], [UUID_A, UUID_B]),
    (validation.segment_ids, None, None),
    (validation.segment_ids, [], None),
    (validation.segment_ids, UUIDS, UUIDS),
    (validation.single_send_segment_ids, None, []),
    (validation.single_send_segment_ids, UUIDS[:10], UUIDS[:10]),
    (validation.single_send_segment_ids, (UUID_A, UUID_B, UUID_A), [UUID_A, UUID_B]),
    (validation.single_send_list_ids, [UUID_B], [UUID_B]),
    (validation.categories, None, []),
    (validation.categories, ["news", "news", "promo"], ["news", "promo"]),
    (validation.send_at, "now", "now"),
    (validation.send_at, "NOW", "now"),
    (validation.send_at, "2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z"),
    (validation.send_at, "2026-03-01T10:00:00+02:00", "2026-03-01T08:00:00Z"),
    (validation.send_at, "2026-03-01T10:00:00-0500", "2026-03-01T15:00:00Z"),
    (
        validation.send_at,
        datetime.datetime(2026, 3, 1, 10, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
        "2026-03-01T09:00:30Z",
    ),
]


@pytest.mark.parametrize(("validator", "value", "expected"), VALID)
def test_valid_values_are_normalised(validator: Validator, value: object, expected: object) -> None:
    assert validator(value) == expected


INVALID: list[tuple[Validator, object, str, str]] = [
    # validator, value, name in the error, a fragment of the rule
    (validation.segment_id, "1234", "segment_id", "36-character UUID"),
    (validation.segment_id, UUID_A + "0", "segment_id", "36-character UUID"),
    (validation.segment_id, "g" * 8 + UUID_A[8:], "segment_id", "36-character UUID"),
    (validation.segment_id, "", "segment_id", "36-character UUID"),
    (validation.segment_id, 42, "segment_id", "must be a string, not int"),
    (validation.segment_id, None, "segment_id", "template render to None"),
    (validation.segment_id, "None", "segment_id", "template render to None"),
    (validation.single_send_id, "abc", "single_send_id", "36-character UUID"),
    (validation.time_zone, "", "user_time_zone", "IANA time zone"),
    (validation.time_zone, "+02:00", "user_time_zone", "not an offset"),
    (validation.time_zone, "Mars/Olympus", "user_time_zone", "IANA time zone"),
    (validation.time_zone, "local", "user_time_zone", "IANA time zone"),
    (validation.time_zone, None, "user_time_zone", "template render to None"),
    # accepted by pendulum, refused by SendGrid (and the emulator): exact case, no host files
    (validation.time_zone, "utc", "user_time_zone", "in its exact case"),
    (validation.time_zone, "america/chicago", "user_time_zone", "in its exact case"),
    (validation.time_zone, "posix/America/Chicago", "user_time_zone", "not a posix/ or right/ path"),
    (validation.time_zone, "right/UTC", "user_time_zone", "not a posix/ or right/ path"),
    (validation.time_zone, "posixrules", "user_time_zone", "IANA time zone name"),
    (validation.time_zone, "localtime", "user_time_zone", "not localtime"),
    (validation.time_zone, "Factory", "user_time_zone", "IANA time zone name"),
    (validation.time_zone, 5, "user_time_zone", "must be a string, not int"),
    (validation.time_zone, "None", "user_time_zone", "template render to None"),
    (validation.segment_name, "", "segment_name", "1..100 characters (got 0)"),
    (validation.segment_name, "   ", "segment_name", "1..100 characters (got 0)"),
    (validation.segment_name, "n" * 101, "segment_name", "1..100 characters (got 101)"),
    (validation.segment_name, None, "segment_name", "template render to None"),
    (validation.segment_name, "None", "segment_name", "template render to None"),
    (validation.segment_name, ["a"], "segment_name", "must be a string"),
    (validation.single_send_name, "", "single_send_name", "1..100 characters"),
    (validation.query_dsl, "", "query_dsl", "must not be empty"),
    (validation.query_dsl, " \n\t", "query_dsl", "must not be empty"),
    (validation.query_dsl, None, "query_dsl", "template render to None"),
    (validation.parent_list_ids, [UUID_A, UUID_B], "parent_list_ids", "at most 1 ids allowed (got 2)"),
    (validation.parent_list_ids, ["not-a-uuid"], "parent_list_ids", "36-character UUID"),
    (validation.parent_list_ids, 7, "parent_list_ids", "must be a list of ids"),
    (
        validation.list_filter_ids,
        [f"00000000-0000-4000-8000-{n:012d}" for n in range(51)],
        "parent_list_ids",
        "at most 50",
    ),
    (validation.segment_ids, ["nope"], "ids", "36-character UUID"),
    (validation.single_send_segment_ids, UUIDS[:11], "segment_ids", "at most 10 ids allowed (got 11)"),
    (validation.single_send_segment_ids, [UUID_A, None], "segment_ids", "template render to None"),
    (validation.single_send_list_ids, ["x"], "list_ids", "36-character UUID"),
    (validation.categories, "news", "categories", "must be a list of strings"),
    (validation.categories, [""], "categories", "must not contain empty strings"),
    (validation.categories, [f"c{n}" for n in range(11)], "categories", "at most 10 allowed (got 11)"),
    (validation.send_at, "tomorrow", "send_at", "'now', a timezone-aware datetime"),
    (validation.send_at, "2026-03-01T10:00:00", "send_at", "with an offset"),
    (validation.send_at, "2026-03-01", "send_at", "with an offset"),
    (validation.send_at, datetime.datetime(2026, 3, 1, 10, 0), "send_at", "timezone-aware"),
    (validation.send_at, None, "send_at", "template render to None"),
    (validation.send_at, "None", "send_at", "template render to None"),
]


@pytest.mark.parametrize(("validator", "value", "name", "rule"), INVALID)
def test_invalid_values_name_the_value_and_the_rule(
    validator: Validator, value: object, name: str, rule: str
) -> None:
    with pytest.raises(SendGridInputError) as caught:
        validator(value)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.name == name
    # A bad item of a list is reported alone, with its position in the rule ("item 1 ...").
    assert error.value == value or (isinstance(value, list) and error.value in value)
    assert rule in error.rule
    assert repr(error.value) in str(error)
    assert rule in str(error)


def test_a_bad_list_item_is_reported_with_its_position() -> None:
    with pytest.raises(SendGridInputError) as caught:
        validation.single_send_segment_ids([UUID_A, "oops", UUID_B])
    assert (caught.value.name, caught.value.value) == ("segment_ids", "oops")
    assert str(caught.value).startswith("Invalid segment_ids 'oops': item 1 must be a 36-character UUID")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("False", False), (" TRUE ", True)],
)
def test_flag_accepts_bools_and_rendered_bools(value: object, expected: bool) -> None:
    assert validation.flag("send_to_all", value) is expected


@pytest.mark.parametrize(
    ("value", "rule"),
    [(None, "render to None"), ("None", "render to None"), ("yes", "True or False"), (1, "True or False")],
)
def test_flag_rejects_anything_else(value: object, rule: str) -> None:
    with pytest.raises(SendGridInputError, match=rule) as caught:
        validation.flag("send_to_all", value)
    assert caught.value.name == "send_to_all"


def test_time_zone_names_are_the_tz_databases_without_host_files() -> None:
    import zoneinfo

    names = validation.time_zone_names()
    assert {"America/Chicago", "UTC", "Etc/GMT+5", "Europe/Berlin", "Etc/UTC"} <= names
    assert not {name for name in names if name.startswith(("posix/", "right/"))}
    assert not names & {"posixrules", "localtime", "Factory"}
    assert names <= zoneinfo.available_timezones() and len(names) > 400


def test_time_zone_names_the_argument_given() -> None:
    with pytest.raises(SendGridInputError) as caught:
        validation.time_zone("utc", name="zone")
    assert caught.value.name == "zone" and str(caught.value).startswith("Invalid zone 'utc': ")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_seconds_refuse_nan_and_infinity(value: float) -> None:
    with pytest.raises(SendGridInputError, match="validation_timeout"):
        validation.seconds("validation_timeout", value, allow_zero=True)


@pytest.mark.parametrize("value", [".", "..", "..."])
def test_a_job_id_of_dots_only_is_refused(value: str) -> None:
    with pytest.raises(SendGridInputError, match="export_id"):
        validation.job_id(value, "export_id")
