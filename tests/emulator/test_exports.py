"""Contact exports: exact membership (not the 50-contact sample), files served from pre-signed URLs
that expire, split by max_file_size, csv and json; every answer checked against the spec."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import ALL_CONTACTS, SEGMENTS, create_segment, person, read_contacts_resource
from tests.emulator.spec_schemas import component, validate, validate_response

EXPORTS = "/v3/marketing/contacts/exports"
LISTS = "/v3/marketing/lists"


def start(api: httpx.Client, **body: Any) -> str:
    answer = api.post(EXPORTS, json=body)
    assert answer.status_code == 202, answer.text
    validate_response(answer.json(), "contacts", EXPORTS, "post", 202)
    export_id: str = answer.json()["id"]
    return export_id


def status(api: httpx.Client, export_id: str) -> dict[str, Any]:
    return read_contacts_resource(api, f"{EXPORTS}/{export_id}", f"{EXPORTS}/{{id}}")


def download(url: str) -> httpx.Response:
    return httpx.get(url)  # pre-signed: no API key


def csv_rows(url: str) -> list[dict[str, str]]:
    answer = download(url)
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text)))


@pytest.fixture
def audience(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> dict[str, Any]:
    """120 Dutch readers (more than a sample holds) and 30 others; a 'vip' list of 10 others."""
    api.post(
        "/v3/marketing/field_definitions", json={"name": "tier", "field_type": "Text"}
    ).raise_for_status()
    vip = api.post(LISTS, json={"name": "vip"}).json()["id"]
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(i, "example.nl", custom_fields={"tier": f"t{i % 3}"}) for i in range(120)])
    admin.seed_contacts([person(i, "example.com") for i in range(20)])
    admin.seed_contacts([person(i, "vip.com") for i in range(10)], list_ids=[vip])
    dutch = create_segment(api, "dutch", f"{ALL_CONTACTS} WHERE email LIKE '%@example.nl'")
    return {"segment_id": dutch["id"], "list_id": vip}


def test_a_segment_export_is_pending_then_ready_with_every_member(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, audience: dict[str, Any]
) -> None:
    export_id = start(api, segment_ids=[audience["segment_id"]])
    pending = status(api, export_id)
    assert pending["status"] == "pending"
    assert "urls" not in pending
    sendgrid_emulator.admin.advance_clock(60)  # the default export_delay
    ready = status(api, export_id)
    assert ready["status"] == "ready"
    assert ready["contact_count"] == 120
    (url,) = ready["urls"]
    rows = csv_rows(url)
    assert len(rows) == 120
    assert {row["EMAIL"] for row in rows} == {f"person{i}@example.nl" for i in range(120)}
    assert {row["tier"] for row in rows} == {"t0", "t1", "t2"}  # custom fields by name
    assert all(row["CONTACT_ID"] for row in rows)
    assert ready["expires_at"] > ready["completed_at"]


def test_segments_and_lists_export_their_union_once_and_json_is_one_object_per_line(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, audience: dict[str, Any]
) -> None:
    sendgrid_emulator.admin.configure(export_delay=0)
    export_id = start(
        api, segment_ids=[audience["segment_id"]], list_ids=[audience["list_id"]], file_type="json"
    )
    ready = status(api, export_id)
    assert ready["contact_count"] == 130
    lines = download(ready["urls"][0]).text.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 130
    assert len({record["contact_id"] for record in records}) == 130
    assert sum(record["email"].endswith("@vip.com") for record in records) == 10
    dutch = next(record for record in records if record["email"] == "person4@example.nl")
    assert dutch["custom_fields"] == {"tier": "t1"}


def test_no_ids_exports_every_contact_and_the_list_shows_each_export(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, audience: dict[str, Any]
) -> None:
    sendgrid_emulator.admin.configure(export_delay=0)
    everyone = start(api)
    assert status(api, everyone)["contact_count"] == 150
    by_segment = start(api, segment_ids=[audience["segment_id"]])
    listed = api.get(EXPORTS)
    assert listed.status_code == 200
    validate_response(listed.json(), "contacts", EXPORTS, "get", 200)
    types = {item["id"]: item["export_type"] for item in listed.json()["result"]}
    assert types == {everyone: "contacts_export", by_segment: "segment_export"}


def test_max_file_size_splits_the_export_into_files_each_with_a_header(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.configure(export_delay=0)
    sendgrid_emulator.admin.seed_contacts([person(i, address_line_2="x" * 200) for i in range(6000)])
    ready = status(api, start(api, max_file_size=1))
    assert ready["contact_count"] == 6000
    assert len(ready["urls"]) >= 2
    total = 0
    for url in ready["urls"]:
        answer = download(url)
        assert len(answer.content) <= 1024 * 1024
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert rows and "EMAIL" in rows[0]
        total += len(rows)
    assert total == 6000


def test_urls_need_no_key_refuse_one_and_expire_while_the_export_gives_fresh_ones(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, audience: dict[str, Any]
) -> None:
    admin = sendgrid_emulator.admin
    admin.configure(export_delay=0, download_url_ttl=600, export_expiry=3600)
    export_id = start(api, segment_ids=[audience["segment_id"]])
    (url,) = status(api, export_id)["urls"]
    # S3 refuses a second auth mechanism: a client that sends its SendGrid key there fails.
    keyed = httpx.get(url, headers={"Authorization": f"Bearer {sendgrid_emulator.api_key}"})
    assert keyed.status_code == 400
    assert "<Code>InvalidArgument</Code>" in keyed.text
    tampered = download(url.replace("X-Signature=", "X-Signature=0"))
    assert tampered.status_code == 403
    admin.advance_clock(601)
    expired = download(url)
    assert expired.status_code == 403
    assert "Request has expired" in expired.text
    (fresh,) = status(api, export_id)["urls"]
    assert len(csv_rows(fresh)) == 120
    admin.advance_clock(3000)  # past expires_at: even a freshly signed URL is refused
    later = status(api, export_id)
    assert later["status"] == "ready"
    assert download(later["urls"][0]).status_code == 403


def test_a_segment_deleted_before_the_export_runs_ends_in_failure(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, audience: dict[str, Any]
) -> None:
    export_id = start(api, segment_ids=[audience["segment_id"]])
    assert api.delete(f"{SEGMENTS}/{audience['segment_id']}").status_code == 202
    sendgrid_emulator.admin.advance_clock(60)
    failed = status(api, export_id)
    assert failed["status"] == "failure"
    assert audience["segment_id"] in failed["message"]
    assert "urls" not in failed


@pytest.mark.parametrize(
    ("body", "status_code", "field"),
    [
        ({"file_type": "xml"}, 400, "file_type"),
        ({"max_file_size": 0}, 400, "max_file_size"),
        ({"segment_ids": "not-a-list"}, 400, "segment_ids"),
        ({"segment_ids": ["00000000-0000-4000-8000-000000000000"]}, 404, "segment_ids"),
        ({"list_ids": ["00000000-0000-4000-8000-000000000000"]}, 404, "list_ids"),
    ],
)
def test_bad_export_requests(api: httpx.Client, body: dict[str, Any], status_code: int, field: str) -> None:
    answer = api.post(EXPORTS, json=body)
    assert answer.status_code == status_code
    if status_code == 400:
        validate_response(answer.json(), "contacts", EXPORTS, "post", 400)
    else:
        validate(answer.json(), component("contacts", "ErrorResponse"))
    assert answer.json()["errors"][0]["field"] == field
    assert api.get(EXPORTS).json()["result"] == []


def test_unknown_export_is_404(api: httpx.Client) -> None:
    answer = api.get(f"{EXPORTS}/nope")
    assert answer.status_code == 404
    validate(answer.json(), component("contacts", "ErrorResponse"))


def test_faults_apply_to_the_file_host_and_are_logged(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, audience: dict[str, Any]
) -> None:
    admin = sendgrid_emulator.admin
    admin.configure(export_delay=0)
    (url,) = status(api, start(api, segment_ids=[audience["segment_id"]]))["urls"]
    admin.add_fault("status", status=503, method="GET", path_prefix="/__files__/exports/")
    assert download(url).status_code == 503
    assert len(csv_rows(url)) == 120
    logged = admin.requests(method="GET", path_prefix="/__files__/")
    assert [(entry["status"], entry["fault"]) for entry in logged] == [(503, "status"), (200, None)]
    assert urlsplit(url).path == logged[0]["path"]
