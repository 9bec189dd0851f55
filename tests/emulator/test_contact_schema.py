"""The contact record is declared once (contact_schema); the table, query_dsl and answers follow it."""

from __future__ import annotations

import sqlite3

from sgseg_emulator import contact_schema
from sgseg_emulator.field_definitions import RESERVED_BY_NAME
from sgseg_emulator.query.rules import CONTACT_COLUMNS, Kind
from sgseg_emulator.store import SCHEMA


def test_contacts_table_has_exactly_the_declared_columns_and_identifier_indexes() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(contacts)")]
    assert tuple(columns) == contact_schema.COLUMN_NAMES
    indexed = {
        conn.execute(f"PRAGMA index_info({name!r})").fetchone()[2]
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE tbl_name = 'contacts' AND type = 'index'"
        )
    }
    assert set(contact_schema.IDENTIFIERS) <= indexed


def test_query_dsl_reads_every_declared_column_but_custom_fields_by_its_kind() -> None:
    declared = {column.name: column.kind for column in contact_schema.COLUMNS}
    assert set(CONTACT_COLUMNS) == set(declared) - {"custom_fields"}
    assert CONTACT_COLUMNS["list_ids"] is Kind.ARRAY
    assert CONTACT_COLUMNS["updated_at"] is Kind.TIMESTAMP
    assert CONTACT_COLUMNS["external_id"] is Kind.VALUE


def test_every_declared_column_is_a_sendgrid_reserved_field() -> None:
    # list_ids and custom_fields are how the store keeps memberships and custom values.
    stored_only = {"list_ids", "custom_fields"}
    assert set(contact_schema.COLUMN_NAMES) - stored_only <= set(RESERVED_BY_NAME)
    assert contact_schema.IDENTIFIERS == ("email", "phone_number_id", "external_id", "anonymous_id")
