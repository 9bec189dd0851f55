"""JSON shapes of emulator objects, as the SendGrid spec defines them (no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from .contact_schema import IDENTIFIERS, SAMPLE_TEXT_FIELDS, TEXT_FIELDS


class Row(Protocol):
    """A stored row: a dict or an ``sqlite3.Row``."""

    def __getitem__(self, key: str, /) -> Any: ...


def _postal_code_as_integer(value: str | None) -> int | str:
    """The spec types a sample's postal_code as integer (sic); keep non-numeric codes as text."""
    if not value:
        return 0
    return int(value) if value.isdigit() else value


def named_custom_fields(stored: str, field_names: Mapping[str, str]) -> dict[str, Any]:
    """Custom values as SendGrid shows them on a contact: keyed by field name (stored by id)."""
    values: dict[str, Any] = json.loads(stored)
    return {field_names.get(key, key): value for key, value in values.items()}


def sample_contact(row: Row, segment_id: str, field_names: Mapping[str, str]) -> dict[str, Any]:
    """A ``ContactResponse`` (an item of ``contacts_sample``); blanks where the contact has none."""
    contact: dict[str, Any] = {"id": row["contact_id"]}
    for field in IDENTIFIERS:  # shown only when set
        if row[field]:
            contact[field] = row[field]
    contact["alternate_emails"] = json.loads(row["alternate_emails"])
    for field in SAMPLE_TEXT_FIELDS:
        contact[field] = row[field] or ""
    contact["postal_code"] = _postal_code_as_integer(row["postal_code"])
    contact["list_ids"] = json.loads(row["list_ids"])
    contact["custom_fields"] = named_custom_fields(row["custom_fields"], field_names)
    contact["segment_ids"] = [segment_id]
    return contact


def contact_details(row: Row, field_names: Mapping[str, str]) -> dict[str, Any]:
    """A ``ContactDetails3`` (contacts search answers). ``segment_ids`` is not computed: []."""
    contact: dict[str, Any] = {"id": row["contact_id"]}
    for field in TEXT_FIELDS:
        contact[field] = row[field] or ""
    contact["alternate_emails"] = json.loads(row["alternate_emails"])
    contact["list_ids"] = json.loads(row["list_ids"])
    contact["segment_ids"] = []
    contact["custom_fields"] = named_custom_fields(row["custom_fields"], field_names)
    contact["created_at"] = row["created_at"]
    contact["updated_at"] = row["updated_at"]
    return contact


def segment_status(row: Row, now_iso: str) -> dict[str, Any]:
    if now_iso < row["validated_at"]:
        return {"query_validation": "PENDING"}
    status: dict[str, Any] = {"query_validation": row["validation"]}
    if row["error_message"]:
        status["error_message"] = row["error_message"]
    return status


def segment_summary(row: Row, now_iso: str, next_sample_update: str) -> dict[str, Any]:
    """An ``AllSegments200`` item: only the fields that schema lists."""
    return {
        "id": row["segment_id"],
        "name": row["name"],
        "contacts_count": row["contacts_count"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "sample_updated_at": row["sample_updated_at"],
        "next_sample_update": next_sample_update,
        "parent_list_ids": json.loads(row["parent_list_ids"]),
        "query_version": "2",
        "status": segment_status(row, now_iso),
    }


def segment_full(
    row: Row,
    now_iso: str,
    next_sample_update: str,
    *,
    include_sample: bool,
    refreshes_used: int,
    max_refreshes: int,
    last_refreshed_at: str | None,
) -> dict[str, Any]:
    """A ``Segment2xx``. ``contacts_sample`` is required by the spec, so excluded means []."""
    segment = segment_summary(row, now_iso, next_sample_update)
    segment["query_dsl"] = row["query_dsl"]
    segment["contacts_sample"] = json.loads(row["contacts_sample"]) if include_sample else []
    segment["refreshes_used"] = refreshes_used
    segment["max_refreshes"] = max_refreshes
    if last_refreshed_at is not None:
        segment["last_refreshed_at"] = last_refreshed_at
    return segment


def contact_list(row: Row, contact_count: int) -> dict[str, Any]:
    return {"id": row["list_id"], "name": row["name"], "contact_count": contact_count}


def without_nulls(value: Any) -> Any:
    """Drop null members: the spec's OpenAPI-3.0 ``nullable`` is not JSON Schema, so omit instead."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def single_send_short(send: dict[str, Any]) -> dict[str, Any]:
    """A ``SinglesendResponseShort`` (list items)."""
    short = {
        "id": send["id"],
        "name": send["name"],
        "abtest": None,
        "status": send["status"],
        "categories": send["categories"],
        "is_abtest": False,
        "updated_at": send["updated_at"],
        "created_at": send["created_at"],
    }
    if send.get("send_at"):
        short["send_at"] = send["send_at"]
    return short
