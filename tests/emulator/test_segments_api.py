"""Segments V2 endpoints: behaviour, errors and every body checked against the official spec."""

from __future__ import annotations

import httpx
import jsonschema
import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import ALL_CONTACTS, SEGMENTS, create_segment, get_segment, person
from tests.emulator.spec_schemas import component, response_schema, validate, validate_response

ITEM = "/v3/marketing/segments/2.0/{segment_id}"


def make_list(api: httpx.Client, name: str) -> str:
    response = api.post("/v3/marketing/lists", json={"name": name})
    assert response.status_code == 201
    list_id: str = response.json()["id"]
    return list_id


def test_create_returns_201_segment_matching_the_spec(api: httpx.Client) -> None:
    response = api.post(SEGMENTS, json={"name": "All", "query_dsl": ALL_CONTACTS})
    assert response.status_code == 201
    body = response.json()
    validate_response(body, "segments", SEGMENTS, "post", 201)
    assert body["name"] == "All"
    assert body["query_dsl"] == ALL_CONTACTS
    assert body["query_version"] == "2"
    assert body["status"] == {"query_validation": "VALID"}
    assert body["contacts_count"] == 0
    assert body["contacts_sample"] == []
    assert body["parent_list_ids"] == []
    assert body["sample_updated_at"] == body["created_at"] == body["updated_at"]
    assert body["refreshes_used"] == 0
    assert body["max_refreshes"] == 2
    assert "last_refreshed_at" not in body


def test_get_patch_and_delete_match_the_spec(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.seed_contacts([person(1), person(2)])
    segment = create_segment(api, "to change")
    sendgrid_emulator.admin.advance_clock(900)
    fetched = api.get(f"{SEGMENTS}/{segment['id']}")
    assert fetched.status_code == 200
    validate_response(fetched.json(), "segments", ITEM, "get", 200)
    assert fetched.json()["contacts_count"] == 2
    assert len(fetched.json()["contacts_sample"]) == 2

    patched = api.patch(f"{SEGMENTS}/{segment['id']}", json={"name": "changed"})
    assert patched.status_code == 200
    validate_response(patched.json(), "segments", ITEM, "patch", 200)
    assert patched.json()["name"] == "changed"
    assert patched.json()["contacts_count"] == 2  # a rename does not reset the sample

    deleted = api.delete(f"{SEGMENTS}/{segment['id']}")
    assert deleted.status_code == 202
    assert deleted.content == b""
    assert api.get(f"{SEGMENTS}/{segment['id']}").status_code == 404


def test_contacts_sample_false_keeps_the_body_schema_valid(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.seed_contacts([person(1)])
    segment = create_segment(api)
    sendgrid_emulator.admin.advance_clock(900)
    without = get_segment(api, segment["id"], contacts_sample="false")
    validate_response(without, "segments", ITEM, "get", 200)
    assert without["contacts_sample"] == []
    assert without["contacts_count"] == 1
    assert len(get_segment(api, segment["id"])["contacts_sample"]) == 1


def test_sample_contacts_match_contact_response(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    list_id = make_list(api, "newsletter")
    sendgrid_emulator.admin.seed_contacts(
        [person(1, alternate_emails=["other@example.org"], custom_fields={"plan": "gold", "score": 7})],
        list_ids=[list_id],
    )
    segment = create_segment(api)
    sendgrid_emulator.admin.advance_clock(900)
    (contact,) = get_segment(api, segment["id"])["contacts_sample"]
    validate(contact, component("segments", "ContactResponse"))
    assert contact["email"] == "person1@example.com"
    assert contact["postal_code"] == 62701
    assert contact["list_ids"] == [list_id]
    assert contact["custom_fields"] == {"plan": "gold", "score": 7}
    assert contact["segment_ids"] == [segment["id"]]


def test_list_uses_a_results_wrapper_of_all_segments_items(api: httpx.Client) -> None:
    create_segment(api, "one")
    create_segment(api, "two")
    response = api.get(SEGMENTS)
    assert response.status_code == 200
    body = response.json()
    # Documented exception: the spec writes AllSegments200 as one item; SendGrid wraps them.
    assert set(body) == {"results"}
    assert [item["name"] for item in body["results"]] == ["one", "two"]
    for item in body["results"]:
        validate(item, response_schema("segments", SEGMENTS, "get", 200))
        assert "query_dsl" not in item
        assert "contacts_sample" not in item


def test_list_filters_follow_the_spec_truth_table(api: httpx.Client) -> None:
    list_a, list_b = make_list(api, "a"), make_list(api, "b")
    on_a = create_segment(api, "on a", parent_list_ids=[list_a])["id"]
    on_b = create_segment(api, "on b", parent_list_ids=[list_b])["id"]
    orphan = create_segment(api, "no parent")["id"]

    def ids(**params: object) -> set[str]:
        response = api.get(SEGMENTS, params=params)
        assert response.status_code == 200
        return {item["id"] for item in response.json()["results"]}

    assert ids() == {on_a, on_b, orphan}
    assert ids(parent_list_ids=list_a) == {on_a}
    assert ids(parent_list_ids=f"{list_a},{list_b}") == {on_a, on_b}
    assert ids(parent_list_ids=list_a, no_parent_list_id="true") == {on_a, orphan}
    assert ids(no_parent_list_id="true") == {orphan}
    assert ids(ids=[on_b, orphan], parent_list_ids=list_a, no_parent_list_id="true") == {on_b, orphan}
    assert ids(ids="00000000-0000-4000-8000-000000000000") == set()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query_dsl": ALL_CONTACTS}, "name"),
        ({"name": "", "query_dsl": ALL_CONTACTS}, "name"),
        ({"name": "x" * 101, "query_dsl": ALL_CONTACTS}, "name"),
        ({"name": "no query"}, "query_dsl"),
        ({"name": "blank query", "query_dsl": "  "}, "query_dsl"),
        ({"name": "garbage", "query_dsl": "SELEC contact_id FROM"}, "query_dsl"),
        (
            {"name": "two parents", "query_dsl": ALL_CONTACTS, "parent_list_ids": ["a", "b"]},
            "parent_list_ids",
        ),
        (
            {
                "name": "unknown parent",
                "query_dsl": ALL_CONTACTS,
                "parent_list_ids": ["7c1f0e3a-1111-4222-8333-444455556666"],
            },
            "parent_list_ids",
        ),
    ],
)
def test_create_rejects_bad_input_with_errors_array(
    api: httpx.Client, body: dict[str, object], field: str
) -> None:
    response = api.post(SEGMENTS, json=body)
    assert response.status_code == 400
    validate_response(response.json(), "segments", SEGMENTS, "post", 400)
    assert field in {error["field"] for error in response.json()["errors"]}
    assert api.get(SEGMENTS).json()["results"] == []


def test_names_are_unique_on_create_and_patch(api: httpx.Client) -> None:
    create_segment(api, "taken")
    other = create_segment(api, "other")
    duplicate = api.post(SEGMENTS, json={"name": "taken", "query_dsl": ALL_CONTACTS})
    assert duplicate.status_code == 400
    assert duplicate.json()["errors"][0]["field"] == "name"
    renamed = api.patch(f"{SEGMENTS}/{other['id']}", json={"name": "taken"})
    assert renamed.status_code == 400
    validate_response(renamed.json(), "segments", ITEM, "patch", 400)
    assert get_segment(api, other["id"])["name"] == "other"
    # Renaming a segment to its own name is not a clash.
    assert api.patch(f"{SEGMENTS}/{other['id']}", json={"name": "other"}).status_code == 200


def test_rule_breaking_query_is_saved_as_invalid(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.seed_contacts([person(1)])
    segment = create_segment(api, "bad columns", "SELECT email FROM contact_data")
    assert segment["status"]["query_validation"] == "INVALID"
    assert segment["status"]["error_message"]
    sendgrid_emulator.admin.advance_clock(3 * 86400)
    later = get_segment(api, segment["id"])
    validate_response(later, "segments", ITEM, "get", 200)
    assert later["contacts_count"] == 0
    assert later["sample_updated_at"] == segment["sample_updated_at"]


def test_unknown_segment_is_404(api: httpx.Client) -> None:
    missing = "7c1f0e3a-1111-4222-8333-444455556666"
    got = api.get(f"{SEGMENTS}/{missing}")
    assert got.status_code == 404
    validate(got.json(), component("segments", "ErrorsSegmentV2"))
    assert api.patch(f"{SEGMENTS}/{missing}", json={"name": "x"}).status_code == 404
    deleted = api.delete(f"{SEGMENTS}/{missing}")
    assert deleted.status_code == 404
    assert deleted.content == b""


ROUTE_NOT_FOUND = {"errors": [{"field": None, "message": "resource not found"}]}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v3/v3/marketing/segments/2.0"),  # a base URL that already ended in /v3
        ("DELETE", "/v3/v3/marketing/segments/2.0/7c1f0e3a-1111-4222-8333-444455556666"),
        ("GET", "/v3/marketing/segments/2.0/"),  # SendGrid answers a trailing slash, never redirects
        ("GET", "/v3/marketing/segments/2.0/7c1f0e3a-1111-4222-8333-444455556666/"),
        ("GET", "/marketing/segments/2.0"),
        ("POST", "/v3/marketing/segment/2.0"),
    ],
)
def test_unknown_route_is_sendgrids_404_resource_not_found(api: httpx.Client, method: str, path: str) -> None:
    answer = api.request(method, path)
    assert answer.status_code == 404
    assert answer.json() == ROUTE_NOT_FOUND
    assert "location" not in answer.headers


def test_an_unknown_segment_is_told_apart_by_the_list_read_not_the_404(api: httpx.Client) -> None:
    """Per segment route, an unknown id answers 404 (GET/PATCH errors[], DELETE no body, refresh
    {"error"}); only the list read filtered by the id answers 200, with or without the segment."""
    missing = "7c1f0e3a-1111-4222-8333-444455556666"
    assert api.get(f"{SEGMENTS}/{missing}").json() != ROUTE_NOT_FOUND
    assert api.post(f"{SEGMENTS}/refresh/{missing}", json={"user_time_zone": "UTC"}).json() == {
        "error": "Segment does not exist."
    }
    listed = api.get(SEGMENTS, params={"ids": missing})
    assert (listed.status_code, listed.json()) == (200, {"results": []})
    present = create_segment(api, "present")
    listed = api.get(SEGMENTS, params={"ids": present["id"]})
    assert [item["id"] for item in listed.json()["results"]] == [present["id"]]


def test_patch_rejects_parent_list_ids_and_bad_query(api: httpx.Client) -> None:
    segment = create_segment(api)
    assert api.patch(f"{SEGMENTS}/{segment['id']}", json={"parent_list_ids": []}).status_code == 400
    bad = api.patch(f"{SEGMENTS}/{segment['id']}", json={"query_dsl": "SELECT contact_id, updated_at FROM ("})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "query_dsl"
    assert get_segment(api, segment["id"])["query_dsl"] == ALL_CONTACTS


def test_malformed_json_body_is_a_400_errors_array(api: httpx.Client) -> None:
    response = api.post(SEGMENTS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    validate(response.json(), component("segments", "ErrorsSegmentV2"))


def test_a_segment_body_missing_a_field_would_fail_validation() -> None:
    """Guard against a validator that accepts anything."""
    with pytest.raises(jsonschema.ValidationError):
        validate({"id": "x"}, component("segments", "Segment2xx"))
