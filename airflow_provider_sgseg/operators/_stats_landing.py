"""Where Single Send stats land: tables through any common-sql ``DbApiHook``, or CSV files at an
``ObjectStoragePath``. Both replace what they own and never leave a half-written result.

Tables: created when missing (the DDL of the connection's dialect, :func:`create_table`), used
as they are otherwise. A landing deletes every row of the Single Sends it lands, in both tables,
and inserts the new rows, all in **one transaction**: a rerun or retry replaces, never
duplicates, and a failure anywhere leaves the previous rows as they were.

Files: ``<destination_path>/<table>.csv`` and ``<destination_path>/<links_table>.csv``, each written
to a temporary name beside it and then renamed over the old file, so a reader sees the old file
or the new one, never a part. (Parquet is not offered: pyarrow is not in Airflow's dependency
tree, and the provider adds no dependency for it.)
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules.stats import LINKS_COLUMNS, LINKS_KEY, METRICS, STATS_COLUMNS, STATS_KEY

DEFAULT_TABLE = "sendgrid_single_send_stats"
DEFAULT_LINKS_TABLE = "sendgrid_single_send_links"
# Single Sends per DELETE ... IN (...): under SQLite's oldest limit of 999 bound parameters.
DELETE_BATCH = 500
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")

# Column types per dialect; other DbApiHooks get the ANSI column.
_TYPES: dict[str, dict[str, str]] = {
    "sqlite": {"text": "TEXT", "key": "TEXT", "count": "INTEGER", "flag": "INTEGER", "time": "TEXT"},
    "postgres": {"text": "TEXT", "key": "TEXT", "count": "BIGINT", "flag": "BOOLEAN", "time": "TIMESTAMPTZ"},
    "ansi": {
        "text": "VARCHAR(2048)",
        "key": "VARCHAR(64)",
        "count": "BIGINT",
        "flag": "BOOLEAN",
        "time": "VARCHAR(40)",
    },
}
_KINDS = {
    **dict.fromkeys(("single_send_id", "aggregation", "ab_variation", "ab_phase", "timezone"), "key"),
    **dict.fromkeys((*METRICS, "url_location", "clicks", "unique_clicks"), "count"),
    "url": "text",
    "provisional": "flag",
    "landed_at": "time",
}


def table_name(value: object, name: str) -> str:
    """A table name, optionally ``schema.table``: letters, digits, ``_``. :raises SendGridInputError:"""
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise SendGridInputError(
            name, value, "must be a table name, optionally schema.table (letters, digits, _)"
        )
    return value


def dialect_of(hook: Any) -> str:
    """``"sqlite"``, ``"postgres"`` or ``"ansi"`` (any other DbApiHook) from the hook's conn_type."""
    conn_type = str(getattr(hook, "conn_type", "") or "").lower()
    if conn_type == "sqlite":
        return "sqlite"
    if conn_type in ("postgres", "postgresql"):
        return "postgres"
    return "ansi"


def create_table(dialect: str, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``columns`` with primary key ``key`` in ``dialect``."""
    types = _TYPES[dialect]
    lines = [f"{column} {types[_KINDS[column]]}{' NOT NULL' if column in key else ''}" for column in columns]
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(lines)}, PRIMARY KEY ({', '.join(key)}))"


def land_tables(
    hook: Any,
    table: str,
    links_table: str | None,
    single_send_ids: Sequence[str],
    stats_rows: Sequence[tuple[Any, ...]],
    link_rows: Sequence[tuple[Any, ...]],
) -> None:
    """Replace the rows of ``single_send_ids`` in ``table`` (and ``links_table``) in one transaction.

    :raises Exception: whatever the database raises; the transaction is rolled back first.
    """
    dialect = dialect_of(hook)
    placeholder = "?" if dialect == "sqlite" else str(getattr(hook, "placeholder", "%s") or "%s")
    targets: list[tuple[str, Sequence[str], Sequence[str], Sequence[tuple[Any, ...]]]]
    targets = [(table, STATS_COLUMNS, STATS_KEY, stats_rows)]
    if links_table is not None:
        targets.append((links_table, LINKS_COLUMNS, LINKS_KEY, link_rows))
    conn = hook.get_conn()
    try:
        cursor = conn.cursor()
        if dialect == "postgres":
            # Concurrent CREATE TABLE IF NOT EXISTS of one table fail on PostgreSQL (duplicate key
            # in pg_type): landings into the same tables take turns, until their commit.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"sgseg:{table}"])
        for name, columns, key, _ in targets:
            cursor.execute(create_table(dialect, name, columns, key))
        for name, columns, _, rows in targets:
            replace_rows(cursor, name, columns, placeholder, single_send_ids, rows)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def replace_rows(
    cursor: Any,
    table: str,
    columns: Sequence[str],
    placeholder: str,
    single_send_ids: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
) -> None:
    """Delete every row of ``single_send_ids`` from ``table``, then insert ``rows`` (same transaction)."""
    for start in range(0, len(single_send_ids), DELETE_BATCH):
        batch = list(single_send_ids[start : start + DELETE_BATCH])
        marks = ", ".join([placeholder] * len(batch))
        cursor.execute(f"DELETE FROM {table} WHERE single_send_id IN ({marks})", batch)
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([placeholder] * len(columns))})"
    cursor.executemany(insert, list(rows))


def land_files(
    destination: Any,
    table: str,
    links_table: str | None,
    stats_rows: Sequence[tuple[Any, ...]],
    link_rows: Sequence[tuple[Any, ...]],
) -> list[str]:
    """Write ``<table>.csv`` (and ``<links_table>.csv``) under ``destination`` (an
    ``ObjectStoragePath`` or its URL) atomically; returns the files' URLs."""
    from airflow.sdk import ObjectStoragePath

    base = destination if isinstance(destination, ObjectStoragePath) else ObjectStoragePath(str(destination))
    base.mkdir(parents=True, exist_ok=True)
    written = [_write_csv(base, table, STATS_COLUMNS, stats_rows)]
    if links_table is not None:
        written.append(_write_csv(base, links_table, LINKS_COLUMNS, link_rows))
    return written


def _write_csv(base: Any, name: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> str:
    final = base / f"{name}.csv"
    temporary = base / f".{name}.csv.{uuid.uuid4().hex}.tmp"
    try:
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
        temporary.rename(final)
    finally:
        if temporary.exists():
            temporary.unlink()
    return str(final)
