"""The pure Single Send rules: the request SendGrid would accept, audience comparison."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules.audience import count_or_none
from airflow_provider_sgseg.rules.single_sends import (
    SEND_AT_CLOCK_SKEW,
    build_single_send_request,
    draft_differences,
    due_send_at,
    same_recipients,
)

SEGMENT = "8a3c1f3e-4a5b-4c6d-9e7f-0a1b2c3d4e5f"
LIST = "11111111-2222-4333-8444-555555555555"


def request_args(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "Weekly digest 2026-11-26",
        "segment_ids": [SEGMENT],
        "subject": "Your digest",
        "html_content": "<p>Hello</p>",
        "sender_id": 42,
        "suppression_group_id": 7,
    }
    args.update(changes)
    return args


def test_builds_the_create_body_and_normalises_rendered_strings() -> None:
    request = build_single_send_request(
        **request_args(sender_id="42", suppression_group_id="7", categories=["digest"])
    )
    assert request.name == "Weekly digest 2026-11-26"
    assert request.segment_ids == [SEGMENT]
    assert request.list_ids == []
    assert request.send_at == "now"
    assert request.categories == ["digest"]
    assert request.email_config == {
        "sender_id": 42,
        "subject": "Your digest",
        "html_content": "<p>Hello</p>",
        "suppression_group_id": 7,
    }


def test_a_single_segment_id_string_is_one_segment() -> None:
    assert build_single_send_request(**request_args(segment_ids=SEGMENT)).segment_ids == [SEGMENT]


def test_plain_content_turns_off_generated_plain_text() -> None:
    request = build_single_send_request(**request_args(html_content=None, plain_content="Hello"))
    assert request.email_config["plain_content"] == "Hello"
    assert request.email_config["generate_plain_content"] is False
    assert "html_content" not in request.email_config


def test_design_and_custom_unsubscribe_url() -> None:
    request = build_single_send_request(
        **request_args(
            subject=None,
            html_content=None,
            design_id="d-123",
            suppression_group_id=None,
            custom_unsubscribe_url="https://example.com/unsub",
        )
    )
    assert request.email_config == {
        "sender_id": 42,
        "design_id": "d-123",
        "custom_unsubscribe_url": "https://example.com/unsub",
    }


def test_send_at_is_normalised_to_utc() -> None:
    moment = datetime.datetime(2026, 12, 1, 9, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-6)))
    assert build_single_send_request(**request_args(send_at=moment)).send_at == "2026-12-01T15:30:00Z"
    assert build_single_send_request(**request_args(send_at=" NOW ")).send_at == "now"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"name": ""}, "single_send_name"),
        ({"name": "x" * 101}, "single_send_name"),
        (
            {"segment_ids": [SEGMENT] * 2 + [f"{n:08d}-2222-4333-8444-555555555555" for n in range(10)]},
            "segment_ids",
        ),
        ({"segment_ids": ["not-a-uuid"]}, "segment_ids"),
        ({"segment_ids": "None"}, "segment_ids"),
        ({"segment_ids": None}, "send_to"),
        ({"segment_ids": [], "list_ids": ["nope"]}, "list_ids"),
        ({"sender_id": None}, "sender_id"),
        ({"sender_id": "abc"}, "sender_id"),
        ({"sender_id": 0}, "sender_id"),
        ({"suppression_group_id": None}, "suppression_group_id"),
        ({"suppression_group_id": None, "custom_unsubscribe_url": "example.com/u"}, "custom_unsubscribe_url"),
        ({"html_content": None}, "html_content"),
        ({"subject": " "}, "subject"),
        ({"design_id": "d-1"}, "design_id"),
        ({"send_at": "tomorrow"}, "send_at"),
        ({"send_at": "2026-12-01T09:00:00"}, "send_at"),
        ({"categories": ["a"] * 3 + [str(n) for n in range(10)]}, "categories"),
    ],
)
def test_each_rule_names_the_value(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(SendGridInputError) as raised:
        build_single_send_request(**request_args(**changes))
    assert raised.value.name.startswith(named)  # e.g. "segment_ids[0]" for one bad item
    assert named in str(raised.value)


def test_send_to_all_needs_no_segment_or_list() -> None:
    request = build_single_send_request(**request_args(segment_ids=None, send_to_all=True))
    assert request.send_to_all is True
    assert request.segment_ids == []


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("None", None), ("", None), ("3", 3), (0, 0)])
def test_require_min_contacts_values(value: object, expected: int | None) -> None:
    assert count_or_none("require_min_contacts", value) == expected


@pytest.mark.parametrize("value", [-1, "many", True])
def test_require_min_contacts_rejects(value: object) -> None:
    with pytest.raises(SendGridInputError, match="require_min_contacts"):
        count_or_none("require_min_contacts", value)


def test_same_recipients_compares_the_audience() -> None:
    request = build_single_send_request(**request_args(list_ids=[LIST]))
    assert same_recipients({"send_to": {"segment_ids": [SEGMENT], "list_ids": [LIST], "all": False}}, request)
    assert not same_recipients({"send_to": {"segment_ids": [SEGMENT], "list_ids": []}}, request)
    assert not same_recipients({"send_to": {"segment_ids": [], "list_ids": [LIST], "all": True}}, request)


NOW = datetime.datetime(2026, 12, 7, 9, 16, tzinfo=datetime.timezone.utc)


def test_a_past_send_at_fails_naming_value_current_time_and_rule() -> None:
    with pytest.raises(SendGridInputError) as caught:
        due_send_at("2026-12-07T04:00:00Z", NOW, "fail")
    message = str(caught.value)
    assert "'2026-12-07T04:00:00Z'" in message
    assert "current time 2026-12-07T09:16:00Z" in message
    assert "future time or 'now'" in message and "if_past='now'" in message


def test_if_past_now_turns_a_past_send_at_into_now() -> None:
    assert due_send_at("2026-12-07T04:00:00Z", NOW, "now") == "now"


@pytest.mark.parametrize(
    ("send_at", "expected"),
    [
        ("now", "now"),
        ("2026-12-07T09:17:00Z", "2026-12-07T09:17:00Z"),
        ("2026-12-07T09:16:00Z", "2026-12-07T09:16:00Z"),
        ("2026-12-07T09:15:00Z", "now"),  # within the clock-skew tolerance
    ],
)
def test_future_and_skewed_send_at(send_at: str, expected: str) -> None:
    assert SEND_AT_CLOCK_SKEW == 60
    assert due_send_at(send_at, NOW, "fail") == expected


def test_just_past_the_skew_fails() -> None:
    with pytest.raises(SendGridInputError, match="61 s before"):
        due_send_at("2026-12-07T09:14:59Z", NOW, "fail")


def test_a_send_at_before_the_year_1000_is_refused_as_past_not_crashing() -> None:
    request = build_single_send_request(**request_args(send_at="0124-01-01T00:00:00Z"))
    assert request.send_at == "0124-01-01T00:00:00Z"
    with pytest.raises(SendGridInputError, match="'0124-01-01T00:00:00Z'"):
        due_send_at(request.send_at, NOW, "fail")


def as_sendgrid_holds(**changes: Any) -> dict[str, Any]:
    """The Single Send SendGrid returns for ``request_args(**changes)``: its email_config filled in."""
    request = build_single_send_request(**request_args(**changes))
    send_to = {"segment_ids": request.segment_ids, "list_ids": request.list_ids, "all": request.send_to_all}
    config = {
        "editor": "code",
        "generate_plain_content": True,
        "plain_content": "generated from the HTML",
        "design_id": None,
        "custom_unsubscribe_url": None,
        "ip_pool": None,
        **request.email_config,
    }
    return {
        "name": request.name,
        "send_to": send_to,
        "categories": request.categories,
        "email_config": config,
    }


def test_a_draft_of_the_same_send_has_no_differences_whatever_sendgrid_filled_in() -> None:
    request = build_single_send_request(**request_args(categories=["b", "a"]))
    held = as_sendgrid_holds(categories=["a", "b"])
    held["email_config"]["sender_id"] = "42"  # ids compared as text
    assert draft_differences(held, request) == []
    design = build_single_send_request(**request_args(html_content=None, subject=None, design_id="d-1"))
    from_design = as_sendgrid_holds(html_content=None, subject=None, design_id="d-1")
    from_design["email_config"].update(subject="The design's subject", html_content="<p>the design</p>")
    assert draft_differences(from_design, design) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Old subject"),
        ("html_content", "<p>old</p>"),
        ("sender_id", 41),
        ("suppression_group_id", None),
        ("design_id", "d-old"),
        ("custom_unsubscribe_url", "https://example.com/u"),
    ],
)
def test_every_email_config_field_of_a_draft_counts(field: str, value: object) -> None:
    request = build_single_send_request(**request_args())
    held = as_sendgrid_holds()
    held["email_config"][field] = value
    assert draft_differences(held, request) == [f"email_config.{field}"]


def test_a_draft_with_plain_text_given_or_other_recipients_and_categories_differs() -> None:
    request = build_single_send_request(**request_args(plain_content="Hello", categories=["x"]))
    held = as_sendgrid_holds(plain_content="Hello", categories=["x"])
    assert draft_differences(held, request) == []
    held["email_config"]["plain_content"] = "Hello from last week"
    held["categories"] = []
    held["send_to"]["list_ids"] = [LIST]
    assert draft_differences(held, request) == ["send_to", "categories", "email_config.plain_content"]
