"""PUT /v3/marketing/contacts as SendGrid runs it: validated at once, applied later as a job
whose status, counts and errors file GET /v3/marketing/contacts/imports/{id} reports."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

import httpx
import pytest
from sgseg_emulator.contact_rules import MAX_CONTACTS_PER_UPSERT, MAX_UPSERT_BYTES
from sgseg_emulator.middleware import MAX_LOGGED_BODY
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import IMPORTS, import_job, person
from tests.emulator.spec_schemas import component, validate, validate_response

CONTACTS = "/v3/marketing/contacts"
FIELDS = "/v3/marketing/field_definitions"


def upsert(api: httpx.Client, contacts: list[Any], **extra: Any) -> httpx.Response:
    return api.put(CONTACTS, json={"contacts": contacts, **extra})


def contact_count(api: httpx.Client) -> int:
    value: int = api.get(f"{CONTACTS}/count").json()["contact_count"]
    return value


def errors_file(url: str) -> list[dict[str, str]]:
    answer = httpx.get(url)  # a pre-signed URL: no API key
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_an_upsert_is_pending_until_upsert_delay_then_completed(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    accepted = upsert(api, [person(1), person(2)])
    assert accepted.status_code == 202
    validate_response(accepted.json(), "contacts", CONTACTS, "put", 202)
    job_id = accepted.json()["job_id"]
    pending = import_job(api, job_id)
    assert pending["status"] == "pending"
    assert pending["job_type"] == "upsert"
    assert pending["results"]["requested_count"] == 2
    assert "finished_at" not in pending
    assert contact_count(api) == 0

    sendgrid_emulator.admin.advance_clock(29)
    assert import_job(api, job_id)["status"] == "pending"
    sendgrid_emulator.admin.advance_clock(1)  # the default upsert_delay is 30 s
    done = import_job(api, job_id)
    assert done["status"] == "completed"
    assert done["results"] == {
        "requested_count": 2,
        "created_count": 2,
        "updated_count": 0,
        "errored_count": 0,
    }
    assert done["finished_at"] >= done["started_at"]
    assert contact_count(api) == 2

    again = upsert(api, [person(1, city="Paris")]).json()["job_id"]
    sendgrid_emulator.admin.advance_clock(30)
    assert import_job(api, again)["results"]["updated_count"] == 1
    assert contact_count(api) == 2


def test_rows_that_fail_in_the_job_make_it_errored_with_a_downloadable_errors_file(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.configure(upsert_delay=0)
    orders = api.post(FIELDS, json={"name": "orders", "field_type": "Number"}).json()["id"]
    born = api.post(FIELDS, json={"name": "born", "field_type": "Date"}).json()["id"]
    rows = [
        person(1, custom_fields={orders: "12", born: "05/17/1990"}),
        {"email": "not-an-email"},
        person(3, custom_fields={orders: "a dozen"}),
        person(4, custom_fields={born: "yesterday"}),
    ]
    status = import_job(api, upsert(api, rows).json()["job_id"])
    assert status["status"] == "errored"
    results = status["results"]
    assert (results["requested_count"], results["created_count"], results["errored_count"]) == (4, 1, 3)
    errors = errors_file(results["errors_url"])
    assert [(row["row_number"], row["identifier"]) for row in errors] == [
        ("2", "not-an-email"),
        ("3", "person3@example.com"),
        ("4", "person4@example.com"),
    ]
    assert "invalid email" in errors[0]["message"]
    assert "'a dozen' is not a number" in errors[1]["message"]
    assert "not a date" in errors[2]["message"]
    stored = api.post(f"{CONTACTS}/search/emails", json={"emails": ["person1@example.com"]}).json()
    assert stored["result"]["person1@example.com"]["contact"]["custom_fields"] == {
        "orders": 12,
        "born": "1990-05-17T00:00:00Z",
    }


def test_a_job_whose_rows_all_fail_is_failed(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.configure(upsert_delay=0)
    status = import_job(api, upsert(api, [{"email": "a@"}, {"email": "@b"}]).json()["job_id"])
    assert status["status"] == "failed"
    assert status["results"]["errored_count"] == 2
    assert len(errors_file(status["results"]["errors_url"])) == 2


def test_contacts_are_keyed_by_any_identifier(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.configure(upsert_delay=0)
    first = import_job(api, upsert(api, [{"external_id": "crm-1", "first_name": "Ann"}]).json()["job_id"])
    assert first["results"]["created_count"] == 1
    second = import_job(api, upsert(api, [{"external_id": "crm-1", "last_name": "Lee"}]).json()["job_id"])
    assert second["results"] == {
        "requested_count": 1,
        "created_count": 0,
        "updated_count": 1,
        "errored_count": 0,
    }
    assert contact_count(api) == 1
    # "In order to update a contact, all of its existing identifiers must be present."
    sendgrid_emulator.admin.seed_contacts([{"email": "bo@example.com", "external_id": "crm-2"}])
    partial = import_job(api, upsert(api, [{"email": "bo@example.com", "first_name": "Bo"}]).json()["job_id"])
    assert partial["status"] == "failed"
    (error,) = errors_file(partial["results"]["errors_url"])
    assert "external_id" in error["message"]
    phone = upsert(api, [{"phone_number_id": "+14155550100"}, {"phone_number_id": "555-0100"}]).json()[
        "job_id"
    ]
    assert import_job(api, phone)["status"] == "errored"
    # Identifiers of two different contacts in one row.
    clash_job = upsert(api, [{"email": "bo@example.com", "external_id": "crm-1"}]).json()["job_id"]
    clash = import_job(api, clash_job)
    assert clash["status"] == "failed"


def test_duplicate_identifiers_in_one_request_merge_in_order(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.configure(upsert_delay=0)
    rows = [
        {"email": "ann@example.com", "first_name": "Ann"},
        {"email": "ANN@example.com", "last_name": "Lee"},
    ]
    status = import_job(api, upsert(api, rows).json()["job_id"])
    assert (status["results"]["created_count"], status["results"]["updated_count"]) == (1, 1)
    found = api.post(f"{CONTACTS}/search/emails", json={"emails": ["ann@example.com"]}).json()
    contact = found["result"]["ann@example.com"]["contact"]
    assert (contact["first_name"], contact["last_name"]) == ("Ann", "Lee")


@pytest.mark.parametrize(
    ("contact", "field", "words"),
    [
        ({"first_name": "no identifier"}, "contacts[0]", "at least one identifier"),
        ({"email": "a@b.co", "first_name": "x" * 51}, "contacts[0].first_name", "longer than 50"),
        ({"email": "a@b.co", "city": 7}, "contacts[0].city", "must be a string"),
        (
            {"email": "a@b.co", "custom_fields": {"e99_T": "x"}},
            "contacts[0].custom_fields",
            "invalid custom field ids supplied - e99_T",
        ),
        ({"email": "a@b.co", "created_at": "2020-01-01"}, "contacts[0].created_at", "read-only"),
        ({"email": "a@b.co", "favourite": "tea"}, "contacts[0].favourite", "not a contact field"),
        ({"email": "a@b.co", "alternate_emails": ["x@y.z"] * 6}, "contacts[0].alternate_emails", "up to 5"),
    ],
)
def test_structural_problems_refuse_the_whole_request_with_400(
    api: httpx.Client, contact: dict[str, Any], field: str, words: str
) -> None:
    answer = upsert(api, [person(9), contact])
    assert answer.status_code == 400
    validate_response(answer.json(), "contacts", CONTACTS, "put", 400)
    (error,) = answer.json()["errors"]
    assert error["field"] == field.replace("[0]", "[1]")
    assert words in error["message"]
    assert api.get(f"{CONTACTS}/count").json()["contact_count"] == 0


def test_the_count_and_byte_limits(api: httpx.Client) -> None:
    too_many = upsert(api, [{"email": f"p{index}@x.co"} for index in range(MAX_CONTACTS_PER_UPSERT + 1)])
    assert too_many.status_code == 400
    assert "30000" in too_many.json()["errors"][0]["message"]
    at_limit = upsert(api, [{"email": f"p{index}@x.co"} for index in range(MAX_CONTACTS_PER_UPSERT)])
    assert at_limit.status_code == 202
    wide = {
        "address_line_1": "x" * 100,
        "address_line_2": "y" * 100,
        "city": "z" * 60,
        "first_name": "f" * 50,
    }
    body = json.dumps({"contacts": [{"email": f"p{index}@x.co", **wide} for index in range(14_000)]}).encode()
    assert len(body) < MAX_UPSERT_BYTES
    exactly = body + b" " * (MAX_UPSERT_BYTES - len(body))  # JSON may end in whitespace
    headers = {"Content-Type": "application/json"}
    assert api.put(CONTACTS, content=exactly, headers=headers).status_code == 202
    too_big = api.put(CONTACTS, content=exactly + b" ", headers=headers)
    assert too_big.status_code == 413
    validate_response(too_big.json(), "contacts", CONTACTS, "put", 400)  # no 413 in the spec: its 400 shape
    assert str(MAX_UPSERT_BYTES) in too_big.json()["errors"][0]["message"]


def test_unknown_job_is_404_and_a_delete_is_a_completed_delete_job(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    missing = api.get(f"{IMPORTS}/no-such-job")
    assert missing.status_code == 404
    validate(missing.json(), component("contacts", "ErrorResponse"))  # MarketingContacts404
    sendgrid_emulator.admin.seed_contacts([person(1), person(2)])
    deleted = api.delete(CONTACTS, params={"delete_all_contacts": "true"}).json()["job_id"]
    status = import_job(api, deleted)
    assert (status["status"], status["job_type"]) == ("completed", "delete")
    assert status["results"] == {"requested_count": 2, "deleted_count": 2}


def test_a_lost_answer_still_queues_the_job_and_large_bodies_are_logged_by_digest(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.add_fault("drop", method="PUT", path=f"^{CONTACTS}$", when="after")
    batch = [person(index, address_line_2="x" * 90) for index in range(200)]
    body = json.dumps({"contacts": batch}).encode()
    assert len(body) > MAX_LOGGED_BODY
    with pytest.raises(httpx.TransportError):
        api.put(CONTACTS, content=body, headers={"Content-Type": "application/json"})
    admin.advance_clock(30)
    assert contact_count(api) == 200  # accepted before the answer was lost
    (entry,) = admin.requests(method="PUT", path_prefix=CONTACTS)
    assert (entry["fault"], entry["json"], entry["body_bytes"]) == ("drop", None, len(body))
    assert entry["body_sha256"] == hashlib.sha256(body).hexdigest()
    upsert(api, [person(1)]).raise_for_status()
    assert admin.requests(method="PUT", path_prefix=CONTACTS)[-1]["json"]["contacts"][0]["email"] == (
        "person1@example.com"
    )


def test_search_by_identifiers(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    path = f"{CONTACTS}/search/identifiers"
    sendgrid_emulator.admin.seed_contacts([{"external_id": "crm-1", "first_name": "Ann"}, person(2)])
    found = api.post(f"{path}/external_id", json={"identifiers": ["crm-1", "crm-404"]})
    assert found.status_code == 200
    validate_response(found.json(), "contacts", f"{path}/{{identifier_type}}", "post", 200)
    assert found.json()["result"]["crm-1"]["contact"]["first_name"] == "Ann"
    assert found.json()["result"]["crm-404"] == {"error": "contact not found"}
    by_email = api.post(f"{path}/email", json={"identifiers": ["PERSON2@example.com"]})
    assert "contact" in by_email.json()["result"]["person2@example.com"]
    none = api.post(f"{path}/anonymous_id", json={"identifiers": ["nobody"]})
    assert none.status_code == 404
    validate_response(none.json(), "contacts", f"{path}/{{identifier_type}}", "post", 404)
    bad = api.post(f"{path}/nickname", json={"identifiers": ["x"]})
    assert bad.status_code == 400
    validate_response(bad.json(), "contacts", f"{path}/{{identifier_type}}", "post", 400)
