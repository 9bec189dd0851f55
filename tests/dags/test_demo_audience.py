"""scripts/demo_audience.py: the audience pipeline's warehouse, settings and summary for `make demo`."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from types import ModuleType


def test_warehouse_and_settings(audience: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "warehouse.db"
    in_audience = audience.build_warehouse(path, rows=100)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM customers WHERE country = 'NL'").fetchone() == (in_audience,)
        assert db.execute("SELECT COUNT(*) FROM customers").fetchone() == (100,)
    settings = audience.dag_settings(path, tmp_path / "export")
    assert json.loads(settings["AIRFLOW_CONN_SGSEG_WAREHOUSE"]) == {"conn_type": "sqlite", "host": str(path)}
    assert "'NL'" in settings["SGSEG_AUDIENCE_QUERY_DSL"]


def test_summary_names_rows_synced_jobs_and_rows_exported(audience: ModuleType) -> None:
    sync = {
        "rows_read": 100, "rows_sent": 100, "method": "batches", "batches": 1, "refused_rows": 0,
        "jobs": {"j1": {"status": "completed"}}, "created_count": 100, "updated_count": 0, "errored_count": 0,
    }  # fmt: skip
    export = {"export_id": "e1", "row_count": 25, "contact_count": 25, "paths": ["/x/contacts-1.csv"]}
    lines = audience.summary_lines(sync, export)
    assert lines[0].startswith(
        "warehouse rows synced: 100 of 100 read (batches: 1 request(s), jobs completed"
    )
    assert lines[1] == "rows exported: 25 = contacts_count 25 (export e1, /x/contacts-1.csv)"
