"""Contacts and lists endpoints, admin seeding and events, checked against the official spec."""

from __future__ import annotations

import httpx
import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import person
from tests.emulator.spec_schemas import spec_document, validate, validate_response

CONTACTS = "/v3/marketing/contacts"
LISTS = "/v3/marketing/lists"
FIELDS = "/v3/marketing/field_definitions"


def count(api: httpx.Client) -> int:
    response = api.get(f"{CONTACTS}/count")
    assert response.status_code == 200
    validate_response(response.json(), "contacts", f"{CONTACTS}/count", "get", 200)
    value: int = response.json()["contact_count"]
    return value


def search(api: httpx.Client, *emails: str) -> httpx.Response:
    return api.post(f"{CONTACTS}/search/emails", json={"emails": list(emails)})


def test_upsert_is_keyed_by_lowercased_email_and_merges_custom_fields_by_id(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.configure(upsert_delay=0)
    tier = api.post(FIELDS, json={"name": "tier", "field_type": "Text"}).json()["id"]
    age = api.post(FIELDS, json={"name": "age", "field_type": "Number"}).json()["id"]
    list_id = api.post(LISTS, json={"name": "news"}).json()["id"]
    first = api.put(
        CONTACTS,
        json={
            "list_ids": [list_id],
            "contacts": [{"email": "Ann@Example.com", "first_name": "Ann", "custom_fields": {tier: "gold"}}],
        },
    )
    assert first.status_code == 202
    validate_response(first.json(), "contacts", CONTACTS, "put", 202)
    assert first.json()["job_id"]
    second = api.put(
        CONTACTS,
        json={"contacts": [{"email": "ann@example.com", "last_name": "Lee", "custom_fields": {age: 40}}]},
    )
    assert second.status_code == 202
    assert count(api) == 1

    found = search(api, "ann@example.com")
    assert found.status_code == 200
    validate_response(found.json(), "contacts", f"{CONTACTS}/search/emails", "post", 200)
    contact = found.json()["result"]["ann@example.com"]["contact"]
    assert (contact["first_name"], contact["last_name"]) == ("Ann", "Lee")
    assert contact["list_ids"] == [list_id]
    # Upserts key custom fields by id; contact reads show them by name, as SendGrid does.
    assert contact["custom_fields"] == {"tier": "gold", "age": 40}


def test_custom_fields_keyed_by_name_are_refused(api: httpx.Client) -> None:
    api.post(FIELDS, json={"name": "tier", "field_type": "Text"}).raise_for_status()
    answer = api.put(CONTACTS, json={"contacts": [{"email": "a@b.co", "custom_fields": {"tier": "gold"}}]})
    assert answer.status_code == 400
    validate_response(answer.json(), "contacts", CONTACTS, "put", 400)
    (error,) = answer.json()["errors"]
    assert error["field"] == "contacts[0].custom_fields"
    assert error["message"] == "invalid custom field ids supplied - tier"


def test_search_reports_partial_and_total_misses(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.seed_contacts([person(1)])
    partial = search(api, "person1@example.com", "nobody@example.com")
    assert partial.status_code == 200
    assert "contact" in partial.json()["result"]["person1@example.com"]
    assert "error" in partial.json()["result"]["nobody@example.com"]
    missing = search(api, "nobody@example.com")
    assert missing.status_code == 404
    validate_response(missing.json(), "contacts", f"{CONTACTS}/search/emails", "post", 404)


@pytest.mark.parametrize("address", ["not-an-email", "@example.com", "ann@", "ann smith@example.com"])
def test_search_with_an_invalid_address_is_a_400(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, address: str
) -> None:
    sendgrid_emulator.admin.seed_contacts([person(1)])
    answer = search(api, "person1@example.com", address)
    assert answer.status_code == 400
    validate_response(answer.json(), "contacts", f"{CONTACTS}/search/emails", "post", 400)
    (error,) = answer.json()["errors"]
    assert error["field"] == "emails"
    assert address.lower() in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"contacts": []},
        {"contacts": [{"first_name": "no email"}]},
        {"contacts": [person(1)], "list_ids": ["7c1f0e3a-1111-4222-8333-444455556666"]},
        {"contacts": [{"email": "a@b.co", "custom_fields": ["not", "an", "object"]}]},
    ],
)
def test_bad_upserts_are_400_and_write_nothing(api: httpx.Client, body: dict[str, object]) -> None:
    response = api.put(CONTACTS, json=body)
    assert response.status_code == 400
    validate_response(response.json(), "contacts", CONTACTS, "put", 400)
    assert count(api) == 0


def test_delete_by_ids_and_all(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.seed_contacts([person(i) for i in range(4)])
    ids = [
        r["contact"]["id"]
        for r in search(api, "person0@example.com", "person1@example.com").json()["result"].values()
    ]
    deleted = api.delete(CONTACTS, params={"ids": ",".join(ids)})
    assert deleted.status_code == 202
    # Documented exception: the spec types this job_id as an object (sic); SendGrid sends a string.
    job_schema = spec_document("contacts")["paths"][CONTACTS]["delete"]["responses"]["202"]["content"][
        "application/json"
    ]["schema"]
    assert job_schema["properties"]["job_id"]["type"] == "object"
    validate(deleted.json(), {**job_schema, "properties": {"job_id": {"type": "string"}}})
    assert count(api) == 2
    assert api.delete(CONTACTS).status_code == 400
    assert api.delete(CONTACTS, params={"delete_all_contacts": "true"}).status_code == 202
    assert count(api) == 0


def test_lists_create_and_page(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    created = api.post(LISTS, json={"name": "one"})
    assert created.status_code == 201
    validate_response(created.json(), "lists", LISTS, "post", 201)
    api.post(LISTS, json={"name": "two"}).raise_for_status()
    sendgrid_emulator.admin.seed_contacts([person(1), person(2)], list_ids=[created.json()["id"]])
    page = api.get(LISTS, params={"page_size": 1})
    assert page.status_code == 200
    validate_response(page.json(), "lists", LISTS, "get", 200)
    assert [item["name"] for item in page.json()["result"]] == ["one"]
    assert page.json()["result"][0]["contact_count"] == 2
    follow = api.get(page.json()["_metadata"]["next"])
    assert [item["name"] for item in follow.json()["result"]] == ["two"]
    assert "next" not in follow.json()["_metadata"]
    assert api.post(LISTS, json={"name": ""}).status_code == 400
    validate_response(api.post(LISTS, json={}).json(), "lists", LISTS, "post", 400)


def test_bulk_seed_honours_ids_and_timestamps(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    contact_id = "11111111-2222-4333-8444-555555555555"
    seeded = sendgrid_emulator.admin.seed_contacts(
        [
            person(
                1, contact_id=contact_id, created_at="2020-01-01T00:00:00Z", updated_at="2020-02-01T00:00:00Z"
            )
        ]
    )
    assert seeded == 1
    contact = search(api, "person1@example.com").json()["result"]["person1@example.com"]["contact"]
    assert contact["id"] == contact_id
    assert (contact["created_at"], contact["updated_at"]) == ("2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z")


def test_events_need_a_known_contact(sendgrid_emulator: EmulatorHandle) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(1)])
    assert admin.add_events([{"email": "PERSON1@example.com", "event_type": "open", "data": {"x": 1}}]) == 1
    with pytest.raises(httpx.HTTPStatusError) as raised:
        admin.add_events([{"email": "ghost@example.com", "event_type": "open"}])
    assert raised.value.response.status_code == 400


def test_bulk_seed_refuses_a_contact_id_already_in_use(sendgrid_emulator: EmulatorHandle) -> None:
    admin = sendgrid_emulator.admin
    contact_id = "11111111-2222-4333-8444-555555555555"
    admin.seed_contacts([person(1, contact_id=contact_id)])
    with pytest.raises(httpx.HTTPStatusError) as raised:
        admin.seed_contacts([person(2, contact_id=contact_id)])
    assert raised.value.response.status_code == 400
    assert "contact_id" in raised.value.response.json()["errors"][0]["message"]


def test_bulk_seed_updates_existing_contacts_in_place(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(1, custom_fields={"a": 1})])
    before = search(api, "person1@example.com").json()["result"]["person1@example.com"]["contact"]
    admin.seed_contacts([{"email": "PERSON1@example.com", "city": "Paris", "custom_fields": {"b": 2}}])
    after = search(api, "person1@example.com").json()["result"]["person1@example.com"]["contact"]
    assert after["id"] == before["id"]
    assert (after["city"], after["first_name"]) == ("Paris", "First1")
    assert after["custom_fields"] == {"a": 1, "b": 2}
    assert count(api) == 1
