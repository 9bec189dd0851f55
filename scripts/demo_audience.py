"""The audience pipeline's part of `make demo` (dags/sendgrid_audience_pipeline.py).

``scripts/demo.py`` builds the warehouse with :func:`build_warehouse`, adds :func:`dag_settings`
to the Airflow components' environment, triggers ``sendgrid_audience_pipeline`` and prints
:func:`summary_lines` from the run's ``sync_contacts`` XCom and its export Asset event.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DAG_ID = "sendgrid_audience_pipeline"
DEFERRED_TASK_ID = "wait_until_populated"
WAREHOUSE_ROWS = 2000
AUDIENCE_COUNTRY = "NL"  # the segment: every warehouse customer in the Netherlands
SEGMENT_NAME = "Demo warehouse audience"
COUNTRIES = ("NL", "DE", "FR", "US")
# Not @example.com: the demo's other pipeline segments every @example.com contact.


def build_warehouse(path: Path, rows: int = WAREHOUSE_ROWS) -> int:
    """A fresh SQLite ``customers`` table of ``rows`` customers; returns how many are in the audience."""
    path.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT,"
            " country TEXT, plan TEXT, lifetime_value REAL)"
        )
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (n, f"customer{n}@shop.example.org", f"First{n}", f"Last{n}", COUNTRIES[n % 4],
                 ("free", "pro")[n % 2], round(n * 1.25, 2))
                for n in range(rows)
            ),
        )  # fmt: skip
    return sum(1 for n in range(rows) if COUNTRIES[n % 4] == AUDIENCE_COUNTRY)


def dag_settings(warehouse: Path, export_dir: Path) -> dict[str, str]:
    """Environment for the audience DAG: the warehouse connection, segment, export directory, and
    short polls (the emulator runs with demo timings)."""
    return {
        "AIRFLOW_CONN_SGSEG_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
        "SGSEG_AUDIENCE_SEGMENT_NAME": SEGMENT_NAME,
        "SGSEG_AUDIENCE_QUERY_DSL": (
            f"SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.country = '{AUDIENCE_COUNTRY}'"
        ),
        "SGSEG_EXPORT_DIR": str(export_dir),
        "SGSEG_JOB_POLL_SECONDS": "1",
    }


def summary_lines(sync: Mapping[str, Any], export: Mapping[str, Any]) -> list[str]:
    """What the run did: rows synced and their jobs, rows exported against SendGrid's count.

    :param sync: the ``sync_contacts`` task's XCom (``SendGridUpsertContactsOperator``).
    :param export: the export Asset event's ``extra`` (``SendGridExportContactsOperator``'s XCom).
    """
    jobs = ", ".join(f"{job.get('status')}" for job in (sync.get("jobs") or {}).values()) or "none"
    matches = "=" if export.get("row_count") == export.get("contact_count") else "!="
    return [
        f"warehouse rows synced: {sync.get('rows_sent')} of {sync.get('rows_read')} read "
        f"({sync.get('method')}: {sync.get('batches')} request(s), jobs {jobs}; "
        f"created {sync.get('created_count')}, updated {sync.get('updated_count')}, "
        f"errored {sync.get('errored_count')}, refused locally {sync.get('refused_rows')})",
        f"rows exported: {export.get('row_count')} {matches} contacts_count {export.get('contact_count')} "
        f"(export {export.get('export_id')}, {', '.join(export.get('paths') or [])})",
    ]
