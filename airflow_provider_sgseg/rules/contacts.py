"""Column mapping and row validation for contact upserts. Pure: rows in, SendGrid contacts out.

A source row (a mapping of column -> value) becomes a ``ContactRequest`` of
``PUT /v3/marketing/contacts``: reserved fields by name, custom fields under ``custom_fields`` keyed
by **field id** (ids come from ``GET /v3/marketing/field_definitions``). Every refusal is a
:class:`SendGridRowError` naming the row number (1-based, in source order), column, value and rule.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.exceptions import SendGridRowError as SendGridRowError  # its first home

IDENTIFIERS = ("email", "phone_number_id", "external_id", "anonymous_id")
# Writable reserved fields and their length limits (None: no documented limit). Source: the
# ContactRequest schema of tsg_mc_contacts_v3.json.
RESERVED_LIMITS: dict[str, int | None] = {
    "address_line_1": 100,
    "address_line_2": 100,
    "alternate_emails": 254,  # per address; at most MAX_ALTERNATE_EMAILS of them
    "city": 60,
    "country": 50,
    "email": 254,
    "phone_number_id": None,
    "external_id": 254,
    "anonymous_id": 254,
    "first_name": 50,
    "last_name": 50,
    "postal_code": None,
    "state_province_region": 50,
}
MAX_ALTERNATE_EMAILS = 5
CUSTOM_FIELD_TYPES = ("Text", "Number", "Date")
# Deliberately loose: one @, no spaces, a dot in the domain. SendGrid has the last word.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class CustomField:
    """A custom field definition: SendGrid's ``id`` (e.g. ``w1``), ``name`` and ``field_type``."""

    id: str
    name: str
    field_type: str


@dataclass(frozen=True)
class FieldCatalog:
    """The account's field definitions, read from ``GET /v3/marketing/field_definitions``.

    ``reserved_ids`` maps reserved names to their ids when SendGrid lists them (the CSV import's
    ``field_mappings`` needs ids; upserts use names).
    """

    custom: dict[str, CustomField]  # by lower-cased name: SendGrid names are case-insensitive
    reserved_ids: dict[str, str | None]

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> FieldCatalog:
        """The catalog from a ``GET /v3/marketing/field_definitions`` answer."""
        custom = {}
        for item in answer.get("custom_fields") or []:
            if isinstance(item, Mapping) and item.get("id") and item.get("name"):
                field = CustomField(str(item["id"]), str(item["name"]), str(item.get("field_type") or "Text"))
                custom[field.name.lower()] = field
        reserved: dict[str, str | None] = {}
        for item in answer.get("reserved_fields") or []:
            if isinstance(item, Mapping) and item.get("name"):
                reserved[str(item["name"]).lower()] = str(item["id"]) if item.get("id") else None
        return cls(custom, reserved)


@dataclass(frozen=True)
class ColumnTarget:
    """Where one source column goes: a reserved field by name or a custom field by id."""

    column: str
    field: str  # the SendGrid field name
    custom: CustomField | None = None


def missing_custom_fields(
    columns: Iterable[str], mapping: Mapping[str, str] | None, catalog: FieldCatalog
) -> list[str]:
    """Field names the columns refer to that are neither reserved nor defined custom fields."""
    missing = []
    for column in columns:
        field = _field_of(column, mapping)
        if field is not None and not _is_reserved(field, catalog) and field.lower() not in catalog.custom:
            missing.append(field)
    return missing


def _is_reserved(field: str, catalog: FieldCatalog) -> bool:
    return field.lower() in RESERVED_LIMITS or field.lower() in catalog.reserved_ids


def plan_columns(
    columns: Iterable[str], mapping: Mapping[str, str] | None, catalog: FieldCatalog
) -> list[ColumnTarget]:
    """Resolve every used column to its field.

    :param columns: the source's column names.
    :param mapping: source column -> SendGrid field name; ``None``: each column is the field of the
        same name. With a mapping, only mapped columns are sent.
    Field names are matched ignoring case, reserved and custom alike (an export's ``EMAIL``,
    ``FIRST_NAME`` headers map to ``email``, ``first_name``). Without a mapping, a column named after
    a reserved field SendGrid sets itself (listed in the field definitions but not writable, e.g. an
    export's ``CONTACT_ID``, ``CREATED_AT``) is not sent.

    :raises SendGridInputError: a column maps to an unknown field, two columns map to the same
        field (e.g. ``email`` and ``EMAIL``), or a mapped column is absent from the source.
    """
    columns = list(columns)
    if mapping is not None:
        absent = [column for column in mapping if column not in columns]
        if absent and columns:
            raise SendGridInputError(
                "column_mapping", absent, f"maps columns the source does not have (it has {columns})"
            )
    targets = []
    for column in columns:
        field = _field_of(column, mapping)
        if field is None:
            continue
        if field.lower() in RESERVED_LIMITS:
            targets.append(ColumnTarget(column, field.lower()))
        elif mapping is None and field.lower() in catalog.reserved_ids:
            continue  # read-only: SendGrid sets it
        elif (custom := catalog.custom.get(field.lower())) is not None:
            targets.append(ColumnTarget(column, custom.name, custom))
        else:
            raise SendGridInputError(
                "column",
                column,
                f"field {field!r} is neither a writable reserved field nor a custom field of this account "
                "(create it first, or pass create_missing_fields=True with its type in custom_field_types)",
            )
    by_field: dict[str, list[str]] = {}
    for target in targets:
        by_field.setdefault(target.field, []).append(target.column)
    for field, same in by_field.items():
        if len(same) > 1:
            raise SendGridInputError(
                "columns", same, f"all map to field {field!r} (field names ignore case): keep one"
            )
    if not any(target.field in IDENTIFIERS for target in targets) and targets:
        raise SendGridInputError("columns", columns, f"none maps to an identifier ({', '.join(IDENTIFIERS)})")
    return targets


def _field_of(column: str, mapping: Mapping[str, str] | None) -> str | None:
    return column if mapping is None else mapping.get(column)


def contact_from_row(row_number: int, row: Mapping[str, Any], plan: list[ColumnTarget]) -> dict[str, Any]:
    """The ``ContactRequest`` for one row. ``None`` and empty strings mean "not given".

    :raises SendGridRowError: no identifier, an invalid email, a value longer than its field's
        limit, a value that does not fit its custom field's type.
    """
    contact: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for target in plan:
        value = row.get(target.column)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if target.custom is not None:
            custom[target.custom.id] = _custom_value(row_number, target, value)
        else:
            contact[target.field] = _reserved_value(row_number, target, value)
    if not any(name in contact for name in IDENTIFIERS):
        raise SendGridRowError(
            row_number, ",".join(IDENTIFIERS), None, "a contact needs at least one identifier"
        )
    if custom:
        contact["custom_fields"] = custom
    return contact


def _reserved_value(row_number: int, target: ColumnTarget, value: Any) -> Any:
    if target.field == "alternate_emails":
        return _alternate_emails(row_number, target.column, value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SendGridRowError(row_number, target.column, value, f"{target.field} must be text")
    text = str(value).strip()
    limit = RESERVED_LIMITS[target.field]
    if limit is not None and len(text) > limit:
        raise SendGridRowError(
            row_number, target.column, value, f"{target.field} is at most {limit} characters, got {len(text)}"
        )
    if target.field == "email":
        return _email(row_number, target.column, text)
    return text


def _email(row_number: int, column: str, text: str) -> str:
    if not _EMAIL.match(text):
        raise SendGridRowError(row_number, column, text, "not a valid email address")
    return text.lower()  # SendGrid stores emails lower-cased; duplicates must compare alike


def _alternate_emails(row_number: int, column: str, value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise SendGridRowError(row_number, column, value, "must be a list or comma-separated text")
    emails = [str(item).strip() for item in items if str(item).strip()]
    if len(emails) > MAX_ALTERNATE_EMAILS:
        raise SendGridRowError(row_number, column, value, f"at most {MAX_ALTERNATE_EMAILS} alternate_emails")
    for email in emails:
        if len(email) > 254:
            raise SendGridRowError(
                row_number, column, email, "each alternate email is at most 254 characters"
            )
    return [_email(row_number, column, email) for email in emails]


def _custom_value(row_number: int, target: ColumnTarget, value: Any) -> Any:
    assert target.custom is not None
    kind = target.custom.field_type
    convert = _CONVERTERS.get(kind)
    if convert is not None:
        converted = convert(value)
        if converted is None:
            rule = f"custom field {target.field!r} is a {kind}" + (" (ISO 8601)" if kind == "Date" else "")
            raise SendGridRowError(row_number, target.column, value, rule)
        return converted
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SendGridRowError(row_number, target.column, value, f"custom field {target.field!r} is Text")
    return str(value)


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())  # "42" stays an integer
        except ValueError:
            pass
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _date(value: Any) -> str | None:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.date.fromisoformat(text).isoformat()
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return None


def identifier_keys(contact: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The contact's identifiers as ``(kind, value)`` pairs; equal pairs mean the same contact."""
    return [(name, str(contact[name])) for name in IDENTIFIERS if contact.get(name)]


def merge_contacts(earlier: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
    """Two rows for one contact, as two upserts in sequence would leave it: later values win."""
    merged = {**earlier, **later}
    if "custom_fields" in earlier or "custom_fields" in later:
        merged["custom_fields"] = {**earlier.get("custom_fields", {}), **later.get("custom_fields", {})}
    return merged


_CONVERTERS: dict[str, Callable[[Any], Any]] = {"Number": _number, "Date": _date}
