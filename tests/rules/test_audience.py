"""The pre-send audience gate's pure rules."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules.audience import audience_gate, evaluate

NOW = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.timezone.utc)
A, B = "8a3c1f3e-4a5b-4c6d-9e7f-0a1b2c3d4e5f", "11111111-2222-4333-8444-555555555555"


def segment(count: Any, sampled: str | None = "2026-12-07T09:30:00Z", name: str = "s") -> dict[str, Any]:
    return {"name": name, "contacts_count": count, "sample_updated_at": sampled}


def failures(gate_args: dict[str, Any], *bodies: dict[str, Any]) -> list[list[str]]:
    verdict = evaluate(audience_gate(**gate_args), list(zip((A, B), bodies, strict=False)), NOW)
    return [item["failures"] for item in verdict.to_dict()["segments"]]


def test_no_rules_is_an_inactive_gate() -> None:
    assert not audience_gate().active
    assert audience_gate(min_contacts="0").active


def test_every_segment_is_checked_and_named() -> None:
    gate = audience_gate(min_contacts=10, max_contacts=20)
    verdict = evaluate(gate, [(A, segment(15, name="ok")), (B, segment(5, name="small"))], NOW)
    assert not verdict.passed
    summary = verdict.summary()
    assert f"'ok' ({A}): 15 contacts" in summary and f"'small' ({B}): 5 contacts" in summary
    assert "fewer than min_contacts=10" in summary
    record = verdict.to_dict()
    assert record["rules"] == {"min_contacts": 10, "max_contacts": 20}
    assert [s["failures"] for s in record["segments"]] == [[], ["fewer than min_contacts=10"]]


def test_a_segment_without_a_count_or_sample_fails_the_rules_that_read_them() -> None:
    args = {"min_contacts": 0, "max_sample_age": 3600, "expected_contacts": 0}
    (found,) = failures(args, segment(None, sampled=None))
    assert len(found) == 3


def test_sample_age_and_watermark() -> None:
    assert failures({"max_sample_age": 1800}, segment(1)) == [[]]
    (found,) = failures({"max_sample_age": "600"}, segment(1))
    assert found == ["sample 1800 s old, older than max_sample_age=600 s"]
    assert failures({"watermark": "2026-12-07T09:00:00Z"}, segment(1)) == [[]]
    (found,) = failures({"watermark": "2026-12-07T09:30:00Z"}, segment(1))
    assert found == ["sample not newer than watermark 2026-12-07T09:30:00+00:00"]


@pytest.mark.parametrize(
    ("expected", "tolerance", "count", "passes"),
    [
        (100, 0, 100, True),
        (100, 0, 99, False),
        (100, 5, 95, True),
        (100, 5, 106, False),
        (100, "5%", 105, True),
        (100, "5%", 94, False),
        ({A: 100}, "10%", 91, True),
        ({B: 100}, 0, 1, True),  # no expectation for this segment
    ],
)
def test_expected_contacts_with_tolerance(expected: Any, tolerance: Any, count: int, passes: bool) -> None:
    (found,) = failures({"expected_contacts": expected, "tolerance": tolerance}, segment(count))
    assert (found == []) is passes


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"min_contacts": -1}, "min_contacts"),
        ({"max_contacts": 1.5}, "max_contacts"),
        ({"min_contacts": 3, "max_contacts": 2}, "max_contacts"),
        ({"max_sample_age": 0}, "max_sample_age"),
        ({"max_sample_age": float("inf")}, "max_sample_age"),
        ({"expected_contacts": "many"}, "expected_contacts"),
        ({"expected_contacts": 5, "tolerance": "-1%"}, "tolerance"),
        ({"expected_contacts": 5, "tolerance": 0.5}, "tolerance"),
        ({"watermark": "soon"}, "watermark"),
    ],
)
def test_bad_rules_are_input_errors(args: dict[str, Any], named: str) -> None:
    with pytest.raises(SendGridInputError, match=named):
        audience_gate(**args)


@pytest.mark.parametrize("nothing", [None, "None", "null", " "])
def test_a_given_rule_that_rendered_to_nothing_is_an_input_error(nothing: object) -> None:
    with pytest.raises(SendGridInputError, match=r"expected_contacts .*rendered to nothing"):
        audience_gate(expected_contacts=nothing, tolerance="5%", given={"expected_contacts"})
    assert not audience_gate(expected_contacts=nothing).active  # not given: the rule is off
