"""Data builders and shortcuts shared by the emulator tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.emulator.spec_schemas import validate_response

SEGMENTS = "/v3/marketing/segments/2.0"
IMPORTS = "/v3/marketing/contacts/imports"
ALL_CONTACTS = "SELECT contact_id, updated_at FROM contact_data"
# A Single Send's email_config that is ready to schedule.
READY_CONFIG = {
    "subject": "Digest",
    "html_content": "<p>Hello {{{unsubscribe}}}</p>",
    "sender_id": 123,
    "suppression_group_id": 42,
}


def person(index: int, domain: str = "example.com", **extra: Any) -> dict[str, Any]:
    """A complete contact (every ContactResponse-required field filled in)."""
    return {
        "email": f"person{index}@{domain}",
        "first_name": f"First{index}",
        "last_name": f"Last{index}",
        "address_line_1": f"{index} Main Street",
        "address_line_2": "",
        "city": "Springfield",
        "state_province_region": "IL",
        "postal_code": "62701",
        "country": "US",
        **extra,
    }


def create_segment(
    api: httpx.Client, name: str = "segment", query_dsl: str = ALL_CONTACTS, **extra: Any
) -> dict[str, Any]:
    response = api.post(SEGMENTS, json={"name": name, "query_dsl": query_dsl, **extra})
    assert response.status_code == 201, response.text
    segment: dict[str, Any] = response.json()
    return segment


def get_segment(api: httpx.Client, segment_id: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"{SEGMENTS}/{segment_id}", params=params)
    assert response.status_code == 200, response.text
    segment: dict[str, Any] = response.json()
    return segment


def read_contacts_resource(api: httpx.Client, path: str, spec_path: str) -> dict[str, Any]:
    """GET ``path``: 200, checked against the contacts spec's 200 schema for ``spec_path``."""
    answer = api.get(path)
    assert answer.status_code == 200, answer.text
    validate_response(answer.json(), "contacts", spec_path, "get", 200)
    body: dict[str, Any] = answer.json()
    return body


def import_job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    """A contact job's status (``ContactImport``)."""
    return read_contacts_resource(api, f"{IMPORTS}/{job_id}", f"{IMPORTS}/{{id}}")
