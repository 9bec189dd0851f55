"""Single Sends: drafts, paging, scheduling rules and the record of real sends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import READY_CONFIG, SEGMENTS, create_segment, person
from tests.emulator.spec_schemas import validate_response

SINGLESENDS = "/v3/marketing/singlesends"
ITEM = SINGLESENDS + "/{id}"
SCHEDULE = SINGLESENDS + "/{id}/schedule"


def draft(api: httpx.Client, name: str = "digest", **body: Any) -> dict[str, Any]:
    response = api.post(SINGLESENDS, json={"name": name, **body})
    assert response.status_code == 201, response.text
    validate_response(response.json(), "singlesends", SINGLESENDS, "post", 201)
    created: dict[str, Any] = response.json()
    return created


def test_create_get_and_delete_a_draft(api: httpx.Client) -> None:
    segment_id = create_segment(api)["id"]
    created = draft(
        api, send_to={"segment_ids": [segment_id]}, email_config=READY_CONFIG, categories=["news"]
    )
    assert created["status"] == "draft"
    assert created["send_to"] == {"segment_ids": [segment_id], "list_ids": [], "all": False}
    fetched = api.get(f"{SINGLESENDS}/{created['id']}")
    assert fetched.status_code == 200
    validate_response(fetched.json(), "singlesends", ITEM, "get", 200)
    assert fetched.json() == created
    deleted = api.delete(f"{SINGLESENDS}/{created['id']}")
    assert deleted.status_code == 204
    missing = api.get(f"{SINGLESENDS}/{created['id']}")
    assert missing.status_code == 404
    validate_response(missing.json(), "singlesends", ITEM, "get", 404)
    assert api.delete(f"{SINGLESENDS}/{created['id']}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 101},
        {
            "name": "too many segments",
            "send_to": {"segment_ids": [f"00000000-0000-4000-8000-{i:012d}" for i in range(11)]},
        },
        {
            "name": "too many lists",
            "send_to": {"list_ids": [f"00000000-0000-4000-8000-{i:012d}" for i in range(51)]},
        },
        {"name": "now is for scheduling", "send_at": "now"},
    ],
)
def test_create_rejects_bad_drafts(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post(SINGLESENDS, json=body)
    assert response.status_code == 400
    validate_response(response.json(), "singlesends", SINGLESENDS, "post", 400)
    assert api.get(SINGLESENDS).json()["result"] == []


def test_list_pages_with_metadata_next(api: httpx.Client) -> None:
    for index in range(3):
        draft(api, f"send {index}")
    first = api.get(SINGLESENDS, params={"page_size": 2})
    assert first.status_code == 200
    validate_response(first.json(), "singlesends", SINGLESENDS, "get", 200)
    assert [item["name"] for item in first.json()["result"]] == ["send 0", "send 1"]
    second = api.get(first.json()["_metadata"]["next"])
    validate_response(second.json(), "singlesends", SINGLESENDS, "get", 200)
    assert [item["name"] for item in second.json()["result"]] == ["send 2"]
    assert "next" not in second.json()["_metadata"]
    assert api.get(SINGLESENDS, params={"page_size": 0}).status_code == 400


def assert_single_sends_error_body(body: Any) -> None:
    """The spec documents no 400 for the schedule PUT: check the one every other Single Sends
    endpoint uses (``errors[]`` of field/message/error_id strings), with at least one error."""
    validate_response(body, "singlesends", "/v3/marketing/singlesends/{id}", "patch", 400)
    assert body["errors"]
    assert all(isinstance(error["message"], str) and error["message"] for error in body["errors"])


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ({"send_to": {}}, "send_to"),
        ({"email_config": {**READY_CONFIG, "sender_id": None}}, "email_config.sender_id"),
        (
            {"email_config": {**READY_CONFIG, "suppression_group_id": None}},
            "email_config.suppression_group_id",
        ),
        ({"email_config": {**READY_CONFIG, "html_content": None}}, "email_config"),
    ],
)
def test_schedule_refuses_an_incomplete_draft(api: httpx.Client, missing: dict[str, Any], field: str) -> None:
    body = {"send_to": {"all": True}, "email_config": READY_CONFIG, **missing}
    created = draft(api, **body)
    response = api.put(f"{SINGLESENDS}/{created['id']}/schedule", json={"send_at": "now"})
    assert response.status_code == 400
    assert_single_sends_error_body(response.json())
    assert field in {error["field"] for error in response.json()["errors"]}
    assert api.get(f"{SINGLESENDS}/{created['id']}").json()["status"] == "draft"


def test_schedule_unknown_or_bad_send_at(api: httpx.Client) -> None:
    missing = api.put(f"{SINGLESENDS}/00000000-0000-4000-8000-000000000000/schedule", json={"send_at": "now"})
    assert missing.status_code == 404
    validate_response(missing.json(), "singlesends", SCHEDULE, "put", 404)
    created = draft(api, send_to={"all": True}, email_config=READY_CONFIG)
    for body in ({"send_at": "tomorrow"}, {}):
        refused = api.put(f"{SINGLESENDS}/{created['id']}/schedule", json=body)
        assert refused.status_code == 400
        assert_single_sends_error_body(refused.json())
        assert "send_at" in {error["field"] for error in refused.json()["errors"]}


def test_send_now_goes_to_the_segment_members_exactly_once(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(i) for i in range(5)] + [person(9, domain="other.org")])
    segment_id = create_segment(
        api, "example", "SELECT contact_id, updated_at FROM contact_data WHERE email LIKE '%@example.com'"
    )["id"]
    created = draft(api, send_to={"segment_ids": [segment_id]}, email_config=READY_CONFIG)
    scheduled = api.put(f"{SINGLESENDS}/{created['id']}/schedule", json={"send_at": "now"})
    assert scheduled.status_code == 201
    validate_response(scheduled.json(), "singlesends", SCHEDULE, "put", 201)
    assert scheduled.json() == {"send_at": admin.now().strftime("%Y-%m-%dT%H:%M:%SZ"), "status": "scheduled"}

    fetched = api.get(f"{SINGLESENDS}/{created['id']}").json()
    validate_response(fetched, "singlesends", ITEM, "get", 200)
    assert fetched["status"] == "triggered"
    (sent,) = admin.sends()
    assert (sent["single_send_id"], sent["status"], sent["recipient_count"]) == (
        created["id"],
        "triggered",
        5,
    )
    again = api.put(f"{SINGLESENDS}/{created['id']}/schedule", json={"send_at": "now"})
    assert again.status_code == 400
    assert len(admin.sends()) == 1


def test_a_later_send_at_triggers_when_the_clock_passes_it(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    list_id = api.post("/v3/marketing/lists", json={"name": "vip"}).json()["id"]
    admin.seed_contacts([person(1), person(2)], list_ids=[list_id])
    created = draft(api, send_to={"list_ids": [list_id]}, email_config=READY_CONFIG)
    send_at = (admin.now().replace(microsecond=0)).timestamp() + 7200
    from datetime import datetime, timezone

    iso = datetime.fromtimestamp(send_at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert api.put(f"{SINGLESENDS}/{created['id']}/schedule", json={"send_at": iso}).json()["send_at"] == iso
    admin.advance_clock(3600)
    assert api.get(f"{SINGLESENDS}/{created['id']}").json()["status"] == "scheduled"
    assert admin.sends()[0]["status"] == "scheduled"
    admin.seed_contacts([person(3)], list_ids=[list_id])  # joins before the send time
    admin.advance_clock(3600)
    (sent,) = admin.sends()
    assert (sent["status"], sent["recipient_count"], sent["triggered_at"]) == ("triggered", 3, iso)


def _scheduled_send_to(api: httpx.Client, segment_id: str, send_at: str, name: str = "digest") -> str:
    created = draft(api, name=name, send_to={"segment_ids": [segment_id]}, email_config=READY_CONFIG)
    scheduled = api.put(f"{SINGLESENDS}/{created['id']}/schedule", json={"send_at": send_at})
    assert scheduled.status_code == 201, scheduled.text
    single_send_id: str = created["id"]
    return single_send_id


def test_deleting_a_segment_a_scheduled_send_targets_is_allowed_by_default(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    """One reading of SendGrid (the field report): the delete succeeds and the send reaches nobody."""
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(i) for i in range(3)])
    segment_id = create_segment(api, "audience")["id"]
    _scheduled_send_to(api, segment_id, "2100-01-01T00:00:00Z", name="later")
    soon = (admin.now() + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _scheduled_send_to(api, segment_id, soon, name="soon")
    admin.advance_clock(120)  # "soon" is due: it is counted before the delete, lazily or not
    assert api.delete(f"{SEGMENTS}/{segment_id}").status_code == 202
    sent = {s["name"]: s for s in admin.sends()}
    assert (sent["soon"]["status"], sent["soon"]["recipient_count"]) == ("triggered", 3)
    admin.advance_clock(100 * 366 * 86400)
    sent = {s["name"]: s for s in admin.sends()}
    assert (sent["later"]["status"], sent["later"]["recipient_count"]) == ("triggered", 0)


def test_deleting_a_segment_a_scheduled_send_targets_is_refused_when_configured(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    """The other reading: SendGrid refuses with 400 errors[] naming the sends."""
    sendgrid_emulator.admin.configure(segment_delete_in_use="refuse")
    segment_id = create_segment(api, "audience")["id"]
    other_id = create_segment(api, "other")["id"]
    draft(api, name="only a draft", send_to={"segment_ids": [other_id]}, email_config=READY_CONFIG)
    single_send_id = _scheduled_send_to(api, segment_id, "2100-01-01T00:00:00Z")
    refused = api.delete(f"{SEGMENTS}/{segment_id}")
    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert error["field"] == "segment_id"
    assert single_send_id in error["message"]
    assert api.get(f"{SEGMENTS}/{segment_id}").status_code == 200
    assert api.delete(f"{SEGMENTS}/{other_id}").status_code == 202  # a draft does not hold it
    assert api.delete(f"{SINGLESENDS}/{single_send_id}").status_code == 204
    assert api.delete(f"{SEGMENTS}/{segment_id}").status_code == 202


def test_segment_delete_in_use_setting_is_checked(sendgrid_emulator: EmulatorHandle) -> None:
    with pytest.raises(httpx.HTTPStatusError) as caught:
        sendgrid_emulator.admin.configure(segment_delete_in_use="sometimes")
    assert "segment_delete_in_use must be 'allow' or 'refuse'" in caught.value.response.text
