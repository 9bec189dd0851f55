"""The pure "populated?" verdict and poll schedule shared by the sensor and the trigger."""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

import pendulum
import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.pacing import WaitBounds, failure_delay, poll_delay
from airflow_provider_sgseg.rules.population import (
    SEGMENT_WAIT_BOUNDS,
    Deadline,
    next_poll_text,
    verdict,
    waiting_summary,
    watermark_from,
)

NOW = pendulum.datetime(2026, 3, 1, 12, 0, 0)
WATERMARK = pendulum.datetime(2026, 3, 1, 11, 0, 0)


def bounds(**overrides: Any) -> WaitBounds:
    """The segment wait's default bounds with some changed (``default``: the interval)."""
    if "default" in overrides:
        overrides["interval"] = overrides.pop("default")
    return replace(SEGMENT_WAIT_BOUNDS, **overrides)


def next_poll_delay(segment: dict[str, Any], now: datetime.datetime, bounds: WaitBounds) -> float:
    """What the sensor and the trigger wait after a healthy look at ``segment``."""
    return poll_delay(parse_instant(segment.get("next_sample_update")), now, bounds)


def segment(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "5b4b6d3e-0000-4000-8000-000000000001",
        "contacts_count": 12,
        "sample_updated_at": "2026-03-01T11:30:00Z",
        "next_sample_update": "2026-03-01T12:30:00Z",
        "status": {"query_validation": "VALID"},
    }
    body.update(overrides)
    return body


# --- watermark_from --------------------------------------------------------------------------


def test_watermark_from_accepts_iso_string_datetime_and_none() -> None:
    assert watermark_from(None) is None
    assert watermark_from("2026-03-01T11:00:00Z") == WATERMARK
    assert watermark_from(datetime.datetime(2026, 3, 1, 11, 0)) == WATERMARK


@pytest.mark.parametrize("rendered_nothing", ["", "None", "null", "  "])
def test_watermark_from_treats_an_empty_template_rendering_as_no_watermark(rendered_nothing: str) -> None:
    assert watermark_from(rendered_nothing) is None


def test_watermark_from_refresh_xcom_prefers_its_watermark() -> None:
    xcom = {
        "segment_id": "x",
        "job_id": "j",
        "requested_at": "2026-03-01T11:59:00Z",
        "watermark": "2026-03-01T11:00:00Z",
    }
    assert watermark_from(xcom) == WATERMARK


def test_watermark_from_reads_a_0_2_0_refresh_xcom() -> None:
    # 0.2.0 called the XCom's watermark sample_updated_at_before; XComs written then still count.
    xcom = {"requested_at": "2026-03-01T11:59:00Z", "sample_updated_at_before": "2026-03-01T11:00:00Z"}
    assert watermark_from(xcom) == WATERMARK


def test_watermark_from_refresh_xcom_falls_back_to_requested_at() -> None:
    xcom = {"segment_id": "x", "job_id": "j", "requested_at": "2026-03-01T11:00:00Z"}
    assert watermark_from(xcom) == WATERMARK
    assert watermark_from({**xcom, "watermark": None}) == WATERMARK


def test_watermark_from_reads_a_dict_that_a_template_rendered_to_text() -> None:
    as_json = '{"requested_at": "2026-03-01T11:00:00Z", "watermark": null}'
    as_repr = "{'requested_at': '2026-03-01T12:00:00Z', 'watermark': '2026-03-01T11:00:00Z'}"
    assert watermark_from(as_json) == WATERMARK
    assert watermark_from(as_repr) == WATERMARK


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("yesterday-ish", "watermark"),
        ({"job_id": "j"}, "watermark"),
        ({"requested_at": "soon"}, "watermark['requested_at']"),
        ("{not a dict", "watermark"),
        (12345, "watermark"),
    ],
)
def test_watermark_from_rejects_bad_input_naming_the_value(value: object, named: str) -> None:
    with pytest.raises(SendGridInputError) as caught:
        watermark_from(value)
    assert caught.value.name == named
    assert repr(value) in str(caught.value) or repr(value["requested_at"]) in str(caught.value)  # type: ignore[index]


# --- verdict ---------------------------------------------------------------------------------


def test_verdict_populated_when_valid_fresh_and_big_enough() -> None:
    result = verdict(segment(), WATERMARK, min_contacts=1)
    assert result.status == "populated"
    assert result.populated
    assert result.contacts_count == 12
    assert result.sample_updated_at == pendulum.datetime(2026, 3, 1, 11, 30)
    assert "12 contacts" in result.reason
    assert "2026-03-01T11:30:00+00:00" in result.reason
    assert "2026-03-01T11:00:00+00:00" in result.reason


def test_verdict_min_contacts_is_inclusive() -> None:
    assert verdict(segment(contacts_count=12), WATERMARK, min_contacts=12).populated
    below = verdict(segment(contacts_count=11), WATERMARK, min_contacts=12)
    assert below.status == "waiting"
    assert "11 contacts, fewer than min_contacts=12" in below.reason


def test_verdict_zero_contacts_wait_even_with_a_fresh_sample() -> None:
    result = verdict(segment(contacts_count=0), WATERMARK, min_contacts=1)
    assert result.status == "waiting"
    assert result.contacts_count == 0


def test_verdict_min_contacts_zero_accepts_an_empty_fresh_sample() -> None:
    assert verdict(segment(contacts_count=0), WATERMARK, min_contacts=0).populated


@pytest.mark.parametrize(
    "sample_at", ["2026-03-01T11:00:00Z", "2026-03-01T10:59:59.999Z", "2026-03-01T12:00:00+02:00"]
)
def test_verdict_waits_while_the_sample_is_not_newer_than_the_watermark(sample_at: str) -> None:
    result = verdict(segment(sample_updated_at=sample_at, contacts_count=500), WATERMARK, min_contacts=1)
    assert result.status == "waiting"
    assert "not newer than the watermark" in result.reason


def test_verdict_compares_instants_across_offsets() -> None:
    # 13:00:01+02:00 is 11:00:01Z: one second after the watermark.
    result = verdict(segment(sample_updated_at="2026-03-01T13:00:01+02:00"), WATERMARK, min_contacts=1)
    assert result.populated


def test_verdict_without_watermark_accepts_any_sample() -> None:
    result = verdict(segment(sample_updated_at="2000-01-01T00:00:00Z"), None, min_contacts=1)
    assert result.populated
    assert "watermark none" in result.reason


def test_verdict_accepts_a_naive_watermark_as_utc() -> None:
    naive = datetime.datetime(2026, 3, 1, 11, 29)
    assert verdict(segment(), naive, min_contacts=1).populated
    assert not verdict(segment(), datetime.datetime(2026, 3, 1, 11, 31), min_contacts=1).populated


def test_verdict_invalid_is_final_and_carries_sendgrid_message() -> None:
    body = segment(status={"query_validation": "INVALID", "error_message": "unknown column 'foo'"})
    result = verdict(body, WATERMARK, min_contacts=1)
    assert result.status == "invalid"
    assert "unknown column 'foo'" in result.reason


def test_verdict_invalid_without_message_still_says_invalid() -> None:
    result = verdict(segment(status={"query_validation": "INVALID"}), WATERMARK, min_contacts=1)
    assert result.status == "invalid"
    assert "INVALID" in result.reason


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ({"query_validation": "PENDING"}, "PENDING"),
        ({}, "not reported yet"),
        (None, "not reported yet"),
        ("VALID", "not reported yet"),
    ],
)
def test_verdict_waits_until_query_validation_is_valid(status: object, shown: str) -> None:
    result = verdict(segment(status=status), None, min_contacts=0)
    assert result.status == "waiting"
    assert shown in result.reason


def test_verdict_validation_status_is_case_insensitive() -> None:
    assert verdict(segment(status={"query_validation": "valid"}), WATERMARK, 1).populated
    assert verdict(segment(status={"query_validation": "invalid"}), WATERMARK, 1).status == "invalid"


@pytest.mark.parametrize("sample_at", [None, "", "not a time"])
def test_verdict_waits_without_a_readable_sample_time(sample_at: object) -> None:
    result = verdict(segment(sample_updated_at=sample_at), None, min_contacts=0)
    assert result.status == "waiting"
    assert "no sample_updated_at" in result.reason


@pytest.mark.parametrize("count", [None, "12", True, 1.5])
def test_verdict_waits_when_the_count_is_not_an_integer(count: object) -> None:
    result = verdict(segment(contacts_count=count), WATERMARK, min_contacts=0)
    assert result.status == "waiting"
    assert result.contacts_count is None


def test_verdict_reason_for_a_small_fresh_sample_names_count_sample_and_watermark() -> None:
    result = verdict(segment(contacts_count=3), WATERMARK, min_contacts=10)
    for fragment in ("3 contacts", "min_contacts=10", "2026-03-01T11:30:00", "watermark 2026-03-01T11:00:00"):
        assert fragment in result.reason


# --- next_poll_delay -------------------------------------------------------------------------


def test_next_poll_delay_waits_for_next_sample_update_plus_slack() -> None:
    body = segment(next_sample_update="2026-03-01T12:20:00Z")
    assert next_poll_delay(body, NOW, bounds(slack=30)) == 20 * 60 + 30


def test_next_poll_delay_respects_offsets_and_fractions() -> None:
    body = segment(next_sample_update="2026-03-01T14:20:00.500+02:00")
    assert next_poll_delay(body, NOW, bounds(slack=0)) == 20 * 60 + 0.5


def test_next_poll_delay_is_never_sooner_than_the_floor() -> None:
    body = segment(next_sample_update="2026-03-01T12:00:10Z")
    assert next_poll_delay(body, NOW, bounds(floor=60, slack=0)) == 60


def test_next_poll_delay_is_never_later_than_the_ceiling() -> None:
    body = segment(next_sample_update="2026-03-02T12:00:00Z")  # 24 h back-off
    assert next_poll_delay(body, NOW, bounds(ceiling=3600)) == 3600


@pytest.mark.parametrize("late", ["2026-03-01T11:59:50Z", "2026-03-01T12:00:00Z", "2026-02-01T00:00:00Z"])
def test_next_poll_delay_uses_the_floor_when_sendgrid_is_late(late: str) -> None:
    body = segment(next_sample_update=late)
    assert next_poll_delay(body, NOW, bounds(floor=5, slack=30)) == 5


@pytest.mark.parametrize("missing", [None, "", "whenever"])
def test_next_poll_delay_uses_the_default_without_a_readable_next_sample_update(missing: object) -> None:
    assert next_poll_delay(segment(next_sample_update=missing), NOW, bounds(default=300)) == 300
    assert next_poll_delay({}, NOW, bounds(default=120)) == 120


def test_next_poll_delay_clamps_the_default_too() -> None:
    assert next_poll_delay({}, NOW, bounds(floor=600, ceiling=900, default=300)) == 600
    assert next_poll_delay({}, NOW, bounds(floor=1, ceiling=100, default=300)) == 100


def test_next_poll_delay_accepts_a_naive_now_as_utc() -> None:
    body = segment(next_sample_update="2026-03-01T12:10:00Z")
    assert next_poll_delay(body, datetime.datetime(2026, 3, 1, 12, 0), bounds(slack=0)) == 600


def test_hourly_schedule_needs_at_most_two_looks_per_hour() -> None:
    # A sensor that starts right after a sample sleeps until the next one: one GET now, one after.
    body = segment(sample_updated_at="2026-03-01T12:00:00Z", next_sample_update="2026-03-01T13:00:00Z")
    delay = next_poll_delay(body, NOW.add(seconds=1), bounds())
    assert 3599 <= delay <= 3600


# --- WaitBounds and failure_delay ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"floor": 0}, "poll_floor"),
        ({"floor": -1}, "poll_floor"),
        ({"floor": 100, "ceiling": 99}, "poll_ceiling"),
        ({"default": 0}, "poke_interval"),
        ({"slack": -1}, "poll_slack"),
        ({"floor": "60"}, "poll_floor"),
        ({"ceiling": float("nan")}, "poll_ceiling"),
        ({"slack": True}, "poll_slack"),
    ],
)
def test_poll_bounds_reject_nonsense_naming_the_argument(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(SendGridInputError) as caught:
        bounds(**kwargs)
    assert caught.value.name == name


def test_next_poll_delay_validates_its_bounds() -> None:
    with pytest.raises(SendGridInputError):
        next_poll_delay(segment(), NOW, bounds(floor=10, ceiling=5))


def test_poll_bounds_floor_equal_to_ceiling_is_a_fixed_interval() -> None:
    assert next_poll_delay(segment(), NOW, bounds(floor=90, ceiling=90)) == 90
    assert next_poll_delay({}, NOW, bounds(floor=90, ceiling=90)) == 90


def test_failure_delay_doubles_from_the_floor_up_to_the_ceiling() -> None:
    delays = [failure_delay(n, NOW, bounds(floor=60, ceiling=600)) for n in range(1, 7)]
    assert delays == [60, 120, 240, 480, 600, 600]


def test_failure_delay_after_a_429_is_the_time_to_its_reset_whatever_the_streak() -> None:
    reset = NOW.add(seconds=90)
    assert failure_delay(4, NOW, bounds(floor=60, ceiling=3600), reset_at=reset) == 90  # not 480
    assert failure_delay(4, NOW, bounds(floor=60, ceiling=3600), reset_at=NOW.add(seconds=5)) == 60


def test_failure_delay_survives_huge_failure_counts() -> None:
    assert failure_delay(10_000, NOW, bounds(floor=60, ceiling=3600)) == 3600


def test_failure_delay_waits_for_a_rate_limit_reset() -> None:
    reset = NOW.add(seconds=900)
    assert failure_delay(1, NOW, bounds(floor=60, ceiling=3600), reset_at=reset) == 900
    assert failure_delay(1, NOW, bounds(floor=60, ceiling=600), reset_at=reset) == 600
    # A reset in the past does not shorten the back-off below the floor.
    assert failure_delay(1, NOW, bounds(floor=60, ceiling=600), reset_at=NOW.subtract(seconds=5)) == 60


# --- waiting_summary -------------------------------------------------------------------------


def test_waiting_summary_names_count_sample_watermark_and_next_poll() -> None:
    result = verdict(segment(contacts_count=3), WATERMARK, min_contacts=10)
    line = waiting_summary(result, WATERMARK, NOW, 90)
    assert line.startswith("not populated yet: fresh sample")
    assert "contacts_count=3" in line
    assert "sample_updated_at=2026-03-01T11:30:00+00:00" in line
    assert "watermark=2026-03-01T11:00:00+00:00" in line
    assert "next poll at 2026-03-01T12:01:30+00:00 (in 90 s)" in line


def test_the_next_poll_line_says_when_a_deadline_comes_first() -> None:
    """The poll announced is the one that will happen: a deadline before it is named instead."""
    assert next_poll_text(NOW, 90) == "next poll at 2026-03-01T12:01:30+00:00 (in 90 s)"
    later = Deadline(NOW.add(minutes=10), "timeout")
    assert next_poll_text(NOW, 90, later) == "next poll at 2026-03-01T12:01:30+00:00 (in 90 s)"
    # execution_timeout ends the task before the poll SendGrid's schedule asks for
    killed = Deadline(NOW.add(seconds=40), "execution_timeout")
    assert next_poll_text(NOW, 238, killed) == (
        "no further poll: execution_timeout ends the wait at 2026-03-01T12:00:40+00:00 (in 40 s) "
        "(the next one would be at 2026-03-01T12:03:58+00:00)"
    )
    # the poke loop's own timeout: the wait was shortened to it and takes a last look then
    last_look = Deadline(NOW.add(seconds=40), "timeout", polls_at_it=True)
    assert next_poll_text(NOW, 40, last_look) == (
        "last poll at 2026-03-01T12:00:40+00:00 (in 40 s), when timeout runs out"
    )
    # a trigger whose wait was shortened to its deadline does not poll then
    trigger = Deadline(NOW.add(seconds=40), "the deadline (timeout or execution_timeout)")
    assert next_poll_text(NOW, 40, trigger) == (
        "no further poll: the deadline (timeout or execution_timeout) ends the wait at "
        "2026-03-01T12:00:40+00:00 (in 40 s)"
    )


def test_the_waiting_summary_names_the_deadline_instead_of_a_poll_past_it() -> None:
    result = verdict(segment(contacts_count=3), WATERMARK, min_contacts=10)
    killed = Deadline(NOW.add(seconds=40), "execution_timeout")
    line = waiting_summary(result, WATERMARK, NOW, 238, killed)
    assert "next poll at" not in line
    assert line.endswith("no further poll: execution_timeout ends the wait at 2026-03-01T12:00:40+00:00 "
                         "(in 40 s) (the next one would be at 2026-03-01T12:03:58+00:00)")  # fmt: skip


def test_waiting_summary_without_sample_or_watermark_says_none() -> None:
    result = verdict(segment(sample_updated_at=None, contacts_count=None), None, min_contacts=1)
    line = waiting_summary(result, None, NOW, 300)
    assert "contacts_count=None, sample_updated_at=None, watermark=None" in line


def test_next_poll_delay_of_0_2_0_still_answers_with_a_deprecation_warning() -> None:
    from airflow.exceptions import AirflowProviderDeprecationWarning

    from airflow_provider_sgseg.rules import population

    body = segment(next_sample_update="2026-03-01T12:20:00Z")
    with pytest.warns(AirflowProviderDeprecationWarning, match="poll_delay"):
        assert population.next_poll_delay(body, NOW, bounds(slack=30)) == 20 * 60 + 30


@pytest.mark.parametrize("name", ["poll_floor", "poll_ceiling", "poke_interval", "poll_slack"])
def test_poll_bounds_refuse_infinity_as_every_number_of_seconds(name: str) -> None:
    # validation.seconds' rule: a wait bound of infinity would never poll again (or never stop).
    arguments = {**SEGMENT_WAIT_BOUNDS.to_arguments(), name: float("inf")}
    with pytest.raises(SendGridInputError) as caught:
        WaitBounds.from_arguments(arguments)
    assert caught.value.name == name


def test_the_query_check_is_read_in_one_place() -> None:
    from airflow_provider_sgseg.rules import waiting
    from airflow_provider_sgseg.rules.population import query_validation, validation_outcome

    invalid = {"status": {"query_validation": "invalid", "error_message": "no such field 'tier'"}}
    assert query_validation(invalid) == ("INVALID", "no such field 'tier'")
    assert validation_outcome(invalid) == waiting.Rejected("no such field 'tier'")
    valid = {"status": {"query_validation": "VALID"}}
    assert isinstance(validation_outcome(valid), waiting.Finished)
    assert isinstance(validation_outcome({}), waiting.Finished)  # nothing reported: nothing to wait for
    assert validation_outcome({"status": {"query_validation": "PENDING"}}) == waiting.Pending(
        "query validation is PENDING"
    )
