"""The audience pipeline example under `airflow dags test` against a real-clock emulator:
a SQLite warehouse table -> upsert -> ensure/refresh segment -> populated (Asset) -> Single Send,
plus the export of the segment's exact members."""

from __future__ import annotations

import contextlib
import csv
import json
import sqlite3
from pathlib import Path
from types import ModuleType

from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.airflow_compat import DagBag
from tests.conftest import DagsTest
from tests.helpers import metadata_db

ROWS = 200


def test_warehouse_to_send_and_export(
    dags_test: DagsTest,
    airflow_db: Path,
    sendgrid_emulator_real_clock: EmulatorHandle,
    tmp_path: Path,
    audience: ModuleType,
) -> None:
    database = tmp_path / "warehouse.db"
    members = audience.build_warehouse(database, ROWS)
    export_dir = tmp_path / "export"
    env = {
        **sendgrid_emulator_real_clock.conn_env(),
        **audience.dag_settings(database, export_dir),
        "SGSEG_TIME_ZONE": "Europe/Amsterdam",
        "SGSEG_POLL_FLOOR_SECONDS": "1",
        "SGSEG_POLL_CEILING_SECONDS": "5",
        "SGSEG_POLL_SLACK_SECONDS": "0.5",
        "SGSEG_WAIT_TIMEOUT_SECONDS": "120",
        "SGSEG_SEND_ENABLED": "true",
    }
    run = dags_test("sendgrid_audience_pipeline", env=env, timeout=280)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]

    admin = sendgrid_emulator_real_clock.admin
    (delivery,) = admin.sends()
    assert delivery["recipient_count"] == members
    (exported,) = list(export_dir.rglob("contacts-*.csv"))
    with exported.open(newline="") as file:
        emails = {row["EMAIL"] for row in csv.DictReader(file)}
    with contextlib.closing(sqlite3.connect(database)) as db:
        dutch = {row[0] for row in db.execute("SELECT email FROM customers WHERE country = 'NL'")}
    assert emails == dutch and len(dutch) == members  # the exact members, not a sample
    puts = [r for r in admin.requests(method="PUT") if r["path"] == "/v3/marketing/contacts"]
    assert len(puts) == 1  # 200 rows: one batch
    with metadata_db(airflow_db) as db:
        events = dict(db.execute(
            "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id"
            " WHERE e.source_dag_id = 'sendgrid_audience_pipeline'"
        ).fetchall())  # fmt: skip
    assert set(events) == {
        "x-sendgrid://segments/demo-warehouse-audience",
        "x-sendgrid://exports/demo-warehouse-audience",
    }
    export_extra = json.loads(events["x-sendgrid://exports/demo-warehouse-audience"])
    assert export_extra["row_count"] == export_extra["contact_count"] == members
    assert export_extra["paths"] == [str(exported)]


def test_the_example_is_safe_to_unpause_and_wired() -> None:
    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"), safe_mode=False)
    dag = bag.dags["sendgrid_audience_pipeline"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # manual runs only by default
    assert dag.get_task("send_single_send").upstream_task_ids == {"check_send_enabled"}
    assert dag.get_task("export_members").upstream_task_ids == {"wait_until_populated"}
    assert dag.get_task("sync_contacts").deferrable and dag.get_task("export_members").deferrable
    emitted = {
        task_id: {asset.uri for asset in dag.get_task(task_id).outlets}
        for task_id in ("wait_until_populated", "export_members")
    }
    assert emitted == {
        "wait_until_populated": {"x-sendgrid://segments/airflow-warehouse-audience"},
        "export_members": {"x-sendgrid://exports/airflow-warehouse-audience"},
    }
