"""The CSV import flow: PUT /v3/marketing/contacts/imports, the file PUT to upload_uri (plain or
gzipped), the job's timed status, counts and errors file."""

from __future__ import annotations

import csv
import gzip
import io
from typing import Any

import httpx
import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import IMPORTS, import_job
from tests.emulator.spec_schemas import validate_response

CONTACTS = "/v3/marketing/contacts"
EMAIL, FIRST_NAME, EXTERNAL_ID = "_rf2_T", "_rf0_T", "_rf25_T"


def start(api: httpx.Client, field_mappings: list[str | None], **extra: Any) -> dict[str, Any]:
    answer = api.put(IMPORTS, json={"file_type": "csv", "field_mappings": field_mappings, **extra})
    assert answer.status_code == 200, answer.text
    validate_response(answer.json(), "contacts", IMPORTS, "put", 200)
    body: dict[str, Any] = answer.json()
    return body


def upload(started: dict[str, Any], content: bytes, **headers: str) -> httpx.Response:
    required = {item["header"]: item["value"] for item in started["upload_headers"]}
    return httpx.put(started["upload_uri"], content=content, headers={**required, **headers})


def csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


@pytest.fixture
def orders(api: httpx.Client) -> str:
    answer = api.post("/v3/marketing/field_definitions", json={"name": "orders", "field_type": "Number"})
    field_id: str = answer.json()["id"]
    return field_id


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_csv_import_waits_for_its_file_then_for_import_delay(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, orders: str, gzipped: bool
) -> None:
    list_id = api.post("/v3/marketing/lists", json={"name": "imported"}).json()["id"]
    started = start(api, [EMAIL, FIRST_NAME, None, orders], list_ids=[list_id])
    assert import_job(api, started["job_id"])["status"] == "pending"
    rows = [["email", "first", "ignored", "orders"]]
    rows += [[f"u{i}@example.com", f"U{i}", "x", str(i)] for i in range(250)]
    content = csv_bytes(rows)
    uploaded = upload(started, gzip.compress(content) if gzipped else content)
    assert uploaded.status_code == 200
    sendgrid_emulator.admin.advance_clock(59)
    assert import_job(api, started["job_id"])["status"] == "pending"
    sendgrid_emulator.admin.advance_clock(1)  # the default import_delay is 60 s
    done = import_job(api, started["job_id"])
    assert done["status"] == "completed"
    assert done["results"] == {
        "requested_count": 250,
        "created_count": 250,
        "updated_count": 0,
        "errored_count": 0,
    }
    found = api.post(f"{CONTACTS}/search/emails", json={"emails": ["u7@example.com"]}).json()
    contact = found["result"]["u7@example.com"]["contact"]
    assert (contact["first_name"], contact["custom_fields"], contact["list_ids"]) == (
        "U7",
        {"orders": 7},
        [list_id],
    )
    assert upload(started, content).status_code == 403  # the URL no longer takes a file


def test_bad_rows_are_counted_and_listed_by_row_number(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, orders: str
) -> None:
    sendgrid_emulator.admin.configure(import_delay=0)
    sendgrid_emulator.admin.seed_contacts([{"email": "old@example.com", "external_id": "crm-0"}])
    started = start(api, [EMAIL, EXTERNAL_ID, orders])
    rows = [
        ["email", "crm", "orders"],
        ["old@example.com", "crm-0", "1"],  # updates
        ["old@example.com", "", "2"],  # omits the contact's external_id: refused when written
        ["broken", "", "3"],
        ["", "", "4"],  # no identifier
        ["x@example.com", "", "many"],
        ["short@example.com"],
        ["new@example.com", "crm-9", "2"],  # creates
    ]
    assert upload(started, csv_bytes(rows)).status_code == 200
    status = import_job(api, started["job_id"])
    assert status["status"] == "errored"
    results = status["results"]
    assert (results["requested_count"], results["created_count"], results["updated_count"]) == (7, 1, 1)
    assert results["errored_count"] == 5
    errors = list(csv.DictReader(io.StringIO(httpx.get(results["errors_url"]).text)))
    assert [row["row_number"] for row in errors] == ["2", "3", "4", "5", "6"]  # in row order
    assert "external_id" in errors[0]["message"]
    assert "invalid email" in errors[1]["message"]
    assert "identifier" in errors[2]["message"]
    assert "not a number" in errors[3]["message"]
    assert "columns" in errors[4]["message"]


def test_an_unreadable_file_fails_the_job(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.configure(import_delay=0)
    started = start(api, [EMAIL])
    assert upload(started, b"\x1f\x8b not really gzip").status_code == 200
    status = import_job(api, started["job_id"])
    assert status["status"] == "failed"
    (error,) = list(csv.DictReader(io.StringIO(httpx.get(status["results"]["errors_url"]).text)))
    assert "could not be read" in error["message"]


def test_the_upload_url_checks_headers_key_and_expiry(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    started = start(api, [EMAIL])
    content = csv_bytes([["email"], ["a@example.com"]])
    missing_header = httpx.put(started["upload_uri"], content=content)
    assert missing_header.status_code == 403
    assert "x-amz-server-side-encryption" in missing_header.text
    keyed = upload(started, content, Authorization=f"Bearer {sendgrid_emulator.api_key}")
    assert keyed.status_code == 400
    sendgrid_emulator.admin.advance_clock(3601)
    assert upload(started, content).status_code == 403
    assert import_job(api, started["job_id"])["status"] == "failed"  # never got its file


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"file_type": "json", "field_mappings": [EMAIL]}, "file_type"),
        ({"file_type": "csv", "field_mappings": []}, "field_mappings"),
        ({"file_type": "csv", "field_mappings": [FIRST_NAME]}, "field_mappings"),
        ({"file_type": "csv", "field_mappings": [EMAIL, "e42_T"]}, "field_mappings[1]"),
        ({"file_type": "csv", "field_mappings": [EMAIL, "_rf21_D"]}, "field_mappings[1]"),
    ],
)
def test_bad_import_requests_are_400(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    answer = api.put(IMPORTS, json=body)
    assert answer.status_code == 400
    validate_response(answer.json(), "contacts", IMPORTS, "put", 400)
    assert answer.json()["errors"][0]["field"] == field


def test_an_unknown_list_is_404(api: httpx.Client) -> None:
    body = {
        "file_type": "csv",
        "field_mappings": [EMAIL],
        "list_ids": ["00000000-0000-4000-8000-000000000000"],
    }
    answer = api.put(IMPORTS, json=body)
    assert answer.status_code == 404
    validate_response(answer.json(), "contacts", IMPORTS, "put", 404)
