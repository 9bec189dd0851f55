"""Issue 21 part 4: the emulator refuses what SendGrid refuses, and nothing an admin or a client
sends makes it answer 5xx (that is for injected faults only). Each case was a finding."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import SEGMENTS, create_segment, person
from tests.emulator.spec_schemas import validate_response

SINGLESENDS = "/v3/marketing/singlesends"
READY_CONFIG = {
    "subject": "Digest",
    "html_content": "<p>Hello</p>",
    "sender_id": 123,
    "suppression_group_id": 42,
}
ADMIN = "/__emulator__"


def refused(response: httpx.Response, field: str) -> str:
    """The 400 in SendGrid's shape naming ``field``; returns its message."""
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == field, error
    message: str = error["message"]
    return message


def ready_draft(api: httpx.Client, segment_id: str, **body: Any) -> str:
    created = api.post(
        SINGLESENDS,
        json={
            "name": "digest",
            "send_to": {"segment_ids": [segment_id]},
            "email_config": READY_CONFIG,
            **body,
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.mark.parametrize(
    ("send_at", "accepted"),
    [
        ("2030-01-01", False),  # a date, no time
        ("2030-01-01T00:00:00", False),  # no offset: the spec's date-time (RFC 3339) needs one
        ("20300101T000000Z", False),  # ISO 8601's basic format is no RFC 3339
        ("2030-W01-1T00:00:00Z", False),  # a week date
        ("2030-01-01T00:00Z", False),  # no seconds
        ("2030-01-01T02:00:00+02:00", True),
        ("2030-01-01t00:00:00.5z", True),
    ],
)
def test_a_schedule_send_at_must_be_an_rfc_3339_date_time(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, send_at: str, accepted: bool
) -> None:
    sendgrid_emulator.admin.seed_contacts([person(1)])
    single_send_id = ready_draft(api, create_segment(api)["id"])
    answer = api.put(f"{SINGLESENDS}/{single_send_id}/schedule", json={"send_at": send_at})
    if accepted:
        assert answer.status_code == 201, answer.text
        assert answer.json()["send_at"] == "2030-01-01T00:00:00Z"
        return
    assert "date-time" in refused(answer, "send_at")
    assert api.get(f"{SINGLESENDS}/{single_send_id}").json()["status"] == "draft"


def test_a_past_send_at_is_refused_and_nothing_is_sent(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.seed_contacts([person(1)])
    single_send_id = ready_draft(api, create_segment(api)["id"])
    past = (sendgrid_emulator.admin.now() - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = refused(api.put(f"{SINGLESENDS}/{single_send_id}/schedule", json={"send_at": past}), "send_at")
    assert past in message and "in the past" in message and "'now'" in message
    assert sendgrid_emulator.admin.sends() == []
    assert api.get(f"{SINGLESENDS}/{single_send_id}").json()["status"] == "draft"


def test_the_current_second_and_the_future_are_accepted(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    single_send_id = ready_draft(api, create_segment(api)["id"])
    now = sendgrid_emulator.admin.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert api.put(f"{SINGLESENDS}/{single_send_id}/schedule", json={"send_at": now}).status_code == 201


@pytest.mark.parametrize("url", ["AAA", "", "https://exa mple.com/u", "/unsubscribe"])
def test_a_custom_unsubscribe_url_that_is_no_uri_is_refused(api: httpx.Client, url: str) -> None:
    config = {**READY_CONFIG, "suppression_group_id": None, "custom_unsubscribe_url": url}
    response = api.post(SINGLESENDS, json={"name": "digest", "email_config": config})
    message = refused(response, "email_config.custom_unsubscribe_url")
    assert repr(url) in message and "URI" in message
    assert api.get(SINGLESENDS).json()["result"] == []


def test_a_uri_unsubscribe_url_is_echoed(api: httpx.Client) -> None:
    config = {**READY_CONFIG, "custom_unsubscribe_url": "https://example.com/unsubscribe?id=1"}
    response = api.post(SINGLESENDS, json={"name": "digest", "email_config": config})
    assert response.status_code == 201, response.text
    assert response.json()["email_config"]["custom_unsubscribe_url"] == "https://example.com/unsubscribe?id=1"


def test_years_below_1000_are_written_with_four_digits(api: httpx.Client) -> None:
    response = api.post(SINGLESENDS, json={"name": "old", "send_at": "0038-08-18T01:40:55Z"})
    assert response.status_code == 201, response.text
    assert response.json()["send_at"] == "0038-08-18T01:40:55Z"
    validate_response(response.json(), "singlesends", SINGLESENDS, "post", 201)


def test_a_schedule_for_the_year_124_is_refused_and_breaks_nothing(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    """Seen: after one schedule for the year 124, every later read or schedule answered 500."""
    single_send_id = ready_draft(api, create_segment(api)["id"])
    refused(
        api.put(f"{SINGLESENDS}/{single_send_id}/schedule", json={"send_at": "0124-01-01T00:00:00Z"}),
        "send_at",
    )
    assert api.get(f"{SINGLESENDS}/{single_send_id}").status_code == 200
    assert api.get(SINGLESENDS).status_code == 200
    later = (sendgrid_emulator.admin.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert api.put(f"{SINGLESENDS}/{single_send_id}/schedule", json={"send_at": later}).status_code == 201


def test_integers_beyond_64_bits_are_refused_with_400(api: httpx.Client) -> None:
    message = refused(
        api.post("/v3/marketing/contacts/exports", json={"max_file_size": 2**63}), "max_file_size"
    )
    assert str(2**63) in message
    refused(api.get(SINGLESENDS, params={"page_token": str(2**63)}), "page_token")
    refused(api.get(SINGLESENDS, params={"page_token": "9" * 400}), "page_token")


def test_deeply_nested_json_is_a_400(api: httpx.Client) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = api.post("/v3/marketing/lists", content=body, headers={"Content-Type": "application/json"})
    assert "nests deeper than" in refused(response, "json.decode failed")
    shallow = {"name": "x", "deep": [[[[[[[[1]]]]]]]]}
    assert api.post("/v3/marketing/lists", json=shallow).status_code == 201


@pytest.mark.parametrize(
    "where",
    [
        "(" * 2000 + "c.email = 'a'" + ")" * 2000,
        "NOT " * 2000 + "c.email = 'a'",
        "c.email = 'a'" + " AND c.email = 'a'" * 2000,
    ],
    ids=["parentheses", "not", "and"],
)
def test_a_2000_deep_query_is_invalid_not_a_server_error(api: httpx.Client, where: str) -> None:
    query = f"SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE {where}"
    response = api.post(SEGMENTS, json={"name": "deep", "query_dsl": query})
    assert response.status_code in (201, 400), response.text
    if response.status_code == 201:
        segment = api.get(f"{SEGMENTS}/{response.json()['id']}").json()
        assert segment["status"]["query_validation"] == "INVALID"
        assert "nests too deeply" in segment["status"]["error_message"]
    else:
        assert "nests too deeply" in response.text
    assert api.get(SEGMENTS).status_code == 200


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("sample_interval", 1e-300),
        ("membership_check_interval", 0),
        ("sample_max_interval", float("inf")),
        ("rate_limit", -5),
        ("rate_limit", 0),
        ("rate_limit", 2.5),
        ("refresh_delay", -1),
        ("export_delay", 1e308),
        ("refreshes_per_segment_per_day", 1.5),
        ("rate_limit_window", True),
    ],
)
def test_admin_settings_out_of_range_are_refused(
    sendgrid_emulator: EmulatorHandle, api: httpx.Client, setting: str, value: Any
) -> None:
    before = sendgrid_emulator.admin.config()
    response = api.patch(f"{ADMIN}/config", content=f'{{"{setting}": {_json(value)}}}')
    message = refused(response, "config")
    assert setting in message and "from" in message
    assert sendgrid_emulator.admin.config() == before
    assert api.get(SEGMENTS).status_code == 200  # the emulator still answers, not 429


def _json(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == float("inf"):
        return "1e999"
    return repr(value)


@pytest.mark.parametrize("seconds", ["1e308", "-1", "1e999"])
def test_a_clock_advance_out_of_range_is_refused(
    sendgrid_emulator: EmulatorHandle, api: httpx.Client, seconds: str
) -> None:
    before = sendgrid_emulator.admin.now()
    response = api.post(f"{ADMIN}/clock/advance", content=f'{{"seconds": {seconds}}}')
    assert "seconds must be from 0" in refused(response, "seconds")
    assert sendgrid_emulator.admin.now() == before


@pytest.mark.parametrize(
    ("fault", "named"),
    [
        ({"kind": "status", "path": "("}, "regular expression"),
        ({"kind": "delay", "seconds": 1e308}, "seconds"),
        ({"kind": "status", "times": 10**12}, "times"),
        ({"kind": "status", "status": True}, "status"),
        ({"kind": "status", "headers": {"Retry-After": 5}}, "headers"),
        ({"kind": "status", "path": 5}, "path"),
        # Seen: each was armed, then broke HTTP on the wire instead of answering as asked.
        ({"kind": "status", "status": 101}, "status"),  # "switching protocols": the client errors
        ({"kind": "status", "status": 204, "body": {"a": 1}}, "body"),  # corrupts the next answer
        ({"kind": "malformed", "status": 304}, "body"),
        ({"kind": "status", "headers": {"X-Note": "a\r\nb"}}, "headers"),  # connection dropped
        ({"kind": "status", "headers": {"bad name": "v"}}, "headers"),  # traceback, dropped
        ({"kind": "status", "headers": {"Content-Length": "9999"}}, "headers"),  # two lengths
    ],
)
def test_faults_out_of_range_are_refused(
    sendgrid_emulator: EmulatorHandle, api: httpx.Client, fault: dict[str, Any], named: str
) -> None:
    assert named in refused(api.post(f"{ADMIN}/faults", json=fault), "fault")
    assert sendgrid_emulator.admin.requests() is not None
    assert api.get(SEGMENTS).status_code == 200


def test_a_fault_without_a_body_leaves_the_connection_usable(
    sendgrid_emulator: EmulatorHandle, api: httpx.Client
) -> None:
    api.post(f"{ADMIN}/faults", json={"kind": "status", "status": 204, "path": "^/v3/marketing/lists$"})
    assert api.get("/v3/marketing/lists").status_code == 204
    assert api.get(SEGMENTS).status_code == 200  # the same keep-alive connection, not faulted


@pytest.mark.timeout(120)
def test_the_shortest_intervals_and_a_year_long_advance_do_not_hang(
    sendgrid_emulator: EmulatorHandle, api: httpx.Client
) -> None:
    """Seen: a sample interval of 1e-300 hung the server; the shortest allowed one must not."""
    sendgrid_emulator.admin.seed_contacts([person(i) for i in range(3)])
    sendgrid_emulator.admin.configure(membership_check_interval=1, sample_interval=1, sample_max_interval=1)
    segment_id = create_segment(api)["id"]
    sendgrid_emulator.admin.advance_clock(366 * 86400)
    segment = api.get(f"{SEGMENTS}/{segment_id}").json()
    assert segment["contacts_count"] == 3
    assert segment["sample_updated_at"] == sendgrid_emulator.admin.now().strftime("%Y-%m-%dT%H:%M:%SZ")
