"""The contact record, declared once: the ``contacts`` table, query_dsl's ``contact_data`` and the
contact shapes in answers are all derived from :data:`COLUMNS` (pure, no I/O).

Column names are SendGrid's ``contact_data`` names. Arrays are stored as JSON array text (``[]``
when empty), custom field values as one JSON object keyed by field id (``e1_T``), timestamps as
``YYYY-MM-DDTHH:MM:SSZ`` text (whose text order is its time order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["id", "identifier", "text", "array", "custom", "timestamp"]


@dataclass(frozen=True)
class ContactColumn:
    """One column of the ``contacts`` table, named as SendGrid's ``contact_data``."""

    name: str
    kind: Kind
    # A text field of the spec's ContactResponse (the contacts in a segment's contacts_sample),
    # shown as "" when blank. Identifiers there appear only when set; postal_code is an integer.
    in_sample: bool = False


COLUMNS: tuple[ContactColumn, ...] = (
    ContactColumn("contact_id", "id"),
    ContactColumn("email", "identifier"),
    ContactColumn("phone_number_id", "identifier"),
    ContactColumn("external_id", "identifier"),
    ContactColumn("anonymous_id", "identifier"),
    ContactColumn("first_name", "text", in_sample=True),
    ContactColumn("last_name", "text", in_sample=True),
    ContactColumn("unique_name", "text"),
    ContactColumn("alternate_emails", "array"),
    ContactColumn("address_line_1", "text", in_sample=True),
    ContactColumn("address_line_2", "text", in_sample=True),
    ContactColumn("city", "text", in_sample=True),
    ContactColumn("state_province_region", "text", in_sample=True),
    ContactColumn("postal_code", "text"),
    ContactColumn("country", "text", in_sample=True),
    ContactColumn("phone_number", "text"),
    ContactColumn("whatsapp", "text"),
    ContactColumn("line", "text"),
    ContactColumn("facebook", "text"),
    ContactColumn("list_ids", "array"),
    ContactColumn("email_domains", "array"),
    ContactColumn("custom_fields", "custom"),
    ContactColumn("created_at", "timestamp"),
    ContactColumn("updated_at", "timestamp"),
)

COLUMN_NAMES = tuple(column.name for column in COLUMNS)
# The fields that identify a contact (SendGrid: at least one is required; email is unique).
IDENTIFIERS = tuple(column.name for column in COLUMNS if column.kind == "identifier")
# Plain-text fields, identifiers included, in the order the contact shapes list them.
TEXT_FIELDS = tuple(column.name for column in COLUMNS if column.kind in ("identifier", "text"))
SAMPLE_TEXT_FIELDS = tuple(column.name for column in COLUMNS if column.in_sample)

_SQL_TYPES = {"id": "TEXT PRIMARY KEY", "array": "TEXT NOT NULL DEFAULT '[]'", "timestamp": "TEXT NOT NULL"}


def _column_ddl(column: ContactColumn) -> str:
    if column.kind == "custom":
        return f"{column.name} TEXT NOT NULL DEFAULT '{{}}'"
    if column.name == "email":
        return "email TEXT UNIQUE"
    return f"{column.name} {_SQL_TYPES.get(column.kind, 'TEXT')}"


def contacts_ddl() -> str:
    """``CREATE TABLE`` and indexes for ``contacts`` (every identifier is looked up by value)."""
    columns = ",\n  ".join(_column_ddl(column) for column in COLUMNS)
    indexes = "".join(
        f"CREATE INDEX IF NOT EXISTS contacts_by_{name} ON contacts ({name});\n"
        for name in IDENTIFIERS
        if name != "email"  # UNIQUE already indexes it
    )
    return f"CREATE TABLE IF NOT EXISTS contacts (\n  {columns}\n);\n{indexes}"
