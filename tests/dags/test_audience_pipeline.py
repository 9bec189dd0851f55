"""The audience pipeline example under `airflow dags test` against a real-clock emulator:
a SQLite warehouse table -> upsert -> ensure/refresh segment -> populated (Asset) -> Single Send,
plus the export of the segment's exact members."""

from __future__ import annotations

import contextlib
import csv
import json
import sqlite3
from pathlib import Path

from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.conftest import DagsTest

NL, US = 120, 30


def warehouse(path: Path) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT,"
            " country TEXT, plan TEXT, lifetime_value REAL)"
        )
        rows = [
            (n, f"buyer{n}@example.com", f"B{n}", "Doe", "NL" if n < NL else "US", "pro", n * 1.5)
            for n in range(NL + US)
        ]
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return path


def test_warehouse_to_send_and_export(
    dags_test: DagsTest, airflow_db: Path, sendgrid_emulator_real_clock: EmulatorHandle, tmp_path: Path
) -> None:
    database = warehouse(tmp_path / "warehouse.db")
    export_dir = tmp_path / "export"
    env = {
        **sendgrid_emulator_real_clock.conn_env(),
        "AIRFLOW_CONN_SGSEG_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(database)}),
        "SGSEG_AUDIENCE_SEGMENT_NAME": "Warehouse test audience",
        "SGSEG_EXPORT_DIR": str(export_dir),
        "SGSEG_TIME_ZONE": "Europe/Amsterdam",
        "SGSEG_POLL_FLOOR_SECONDS": "1",
        "SGSEG_POLL_CEILING_SECONDS": "5",
        "SGSEG_POLL_SLACK_SECONDS": "0.5",
        "SGSEG_WAIT_TIMEOUT_SECONDS": "120",
        "SGSEG_JOB_POLL_SECONDS": "1",
    }
    run = dags_test("sendgrid_audience_pipeline", env=env, timeout=280)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]

    admin = sendgrid_emulator_real_clock.admin
    (delivery,) = admin.sends()
    assert delivery["recipient_count"] == NL
    (exported,) = list(export_dir.rglob("contacts-*.csv"))
    with exported.open(newline="") as file:
        emails = {row["EMAIL"] for row in csv.DictReader(file)}
    assert emails == {f"buyer{n}@example.com" for n in range(NL)}  # the exact members, not a sample
    puts = [r for r in admin.requests(method="PUT") if r["path"] == "/v3/marketing/contacts"]
    assert len(puts) == 1  # 150 rows: one batch
    with contextlib.closing(sqlite3.connect(airflow_db / "airflow.db")) as db:
        uris = {row[0] for row in db.execute(
            "SELECT a.uri FROM asset_event e JOIN asset a ON a.id = e.asset_id"
            " WHERE e.source_dag_id = 'sendgrid_audience_pipeline'"
        )}  # fmt: skip
    assert uris == {
        "x-sendgrid://segments/warehouse-test-audience",
        "x-sendgrid://exports/warehouse-test-audience",
    }
