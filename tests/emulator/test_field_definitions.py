"""Custom field definitions: create and list, SendGrid's naming rules and limits, spec shapes."""

from __future__ import annotations

import httpx
import pytest
from sgseg_emulator.field_definitions import MAX_CUSTOM_FIELDS, RESERVED_FIELDS, normalized_value
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.spec_schemas import validate_response

FIELDS = "/v3/marketing/field_definitions"


def create(api: httpx.Client, name: str, field_type: str = "Text") -> httpx.Response:
    return api.post(FIELDS, json={"name": name, "field_type": field_type})


def test_create_answers_200_with_a_typed_id_and_lists_it_after_the_reserved_fields(api: httpx.Client) -> None:
    listed = api.get(FIELDS)
    assert listed.status_code == 200
    validate_response(listed.json(), "custom_fields", FIELDS, "get", 200)
    assert listed.json()["custom_fields"] == []
    reserved = {field["name"]: field for field in listed.json()["reserved_fields"]}
    assert reserved["email"] == {"id": "_rf2_T", "name": "email", "field_type": "Text"}
    assert reserved["created_at"]["read_only"] is True
    assert len(reserved) == len(RESERVED_FIELDS)

    made = [create(api, "num_orders", "Number"), create(api, "dob", "Date"), create(api, "Tier")]
    for answer in made:
        assert answer.status_code == 200  # SendGrid answers 200, not 201
        validate_response(answer.json(), "custom_fields", FIELDS, "post", 200)
    assert [answer.json()["id"] for answer in made] == ["e1_N", "e2_D", "e3_T"]
    listed = api.get(FIELDS).json()
    validate_response(listed, "custom_fields", FIELDS, "get", 200)
    assert listed["custom_fields"] == [
        {"id": "e1_N", "name": "num_orders", "field_type": "Number"},
        {"id": "e2_D", "name": "dob", "field_type": "Date"},
        {"id": "e3_T", "name": "Tier", "field_type": "Text"},
    ]


@pytest.mark.parametrize(
    ("name", "field_type", "field", "words"),
    [
        ("", "Text", "name", "1 to 100"),
        ("x" * 101, "Text", "name", "1 to 100"),
        ("1st_order", "Text", "name", "must begin with a letter"),
        ("has space", "Text", "name", "only letters"),
        ("First_Name", "Text", "name", "reserved"),
        ("TIER", "Text", "name", "already exists"),
        ("ok_name", "Boolean", "field_type", "Text, Number, Date"),
    ],
)
def test_bad_definitions_are_400_naming_the_rule(
    api: httpx.Client, name: str, field_type: str, field: str, words: str
) -> None:
    create(api, "tier").raise_for_status()
    answer = create(api, name, field_type)
    assert answer.status_code == 400
    validate_response(answer.json(), "custom_fields", FIELDS, "post", 400)
    (error,) = answer.json()["errors"]
    assert error["field"] == field
    assert words in error["message"]


def test_at_most_500_custom_fields(api: httpx.Client) -> None:
    for index in range(MAX_CUSTOM_FIELDS):
        create(api, f"f{index}").raise_for_status()
    answer = create(api, "one_too_many")
    assert answer.status_code == 400
    assert "500" in answer.json()["errors"][0]["message"]


def test_rename_and_delete(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    first = create(api, "tier").json()["id"]
    create(api, "plan").raise_for_status()
    sendgrid_emulator.admin.seed_contacts([{"email": "a@example.com", "custom_fields": {first: "gold"}}])
    renamed = api.patch(f"{FIELDS}/{first}", json={"name": "level"})
    assert renamed.status_code == 200
    validate_response(renamed.json(), "custom_fields", f"{FIELDS}/{{custom_field_id}}", "patch", 200)
    assert (renamed.json()["id"], renamed.json()["name"]) == (first, "level")
    clash = api.patch(f"{FIELDS}/{first}", json={"name": "PLAN"})
    assert clash.status_code == 400
    validate_response(clash.json(), "custom_fields", f"{FIELDS}/{{custom_field_id}}", "patch", 400)
    reserved = api.patch(f"{FIELDS}/_rf0_T", json={"name": "given_name"})
    assert reserved.status_code == 404
    assert "reserved" in reserved.json()["errors"][0]["message"]

    assert api.delete(f"{FIELDS}/{first}").status_code == 204
    missing = api.delete(f"{FIELDS}/{first}")
    assert missing.status_code == 404
    validate_response(missing.json(), "custom_fields", f"{FIELDS}/{{custom_field_id}}", "delete", 404)
    found = api.post("/v3/marketing/contacts/search/emails", json={"emails": ["a@example.com"]}).json()
    assert found["result"]["a@example.com"]["contact"]["custom_fields"] == {}
    assert create(api, "tier").json()["id"] == "e3_T"  # ids are never reused


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_a_date_time_with_no_utc_moment_is_refused_not_a_500(text: str) -> None:
    # Was an OverflowError (a 500) from the upsert; the provider refuses it as a row error too.
    value, why = normalized_value("Date", text)
    assert value is None and why == f"{text!r} is not a date (YYYY-MM-DD, MM/DD/YYYY or ISO 8601 date-time)"
