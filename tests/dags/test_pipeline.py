"""The demo pipeline in the suite: both example DAGs under `airflow dags test` against the emulator.

The emulator runs on a real clock with SendGrid's minutes shrunk to seconds (the plugin's
``sendgrid_emulator_real_clock``), so the deferrable sensor really waits (inline, as `dags test`
runs triggers) for the refreshed sample.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.conftest import DagsTest
from tests.helpers import PIPELINE_AUDIENCE, PIPELINE_CONTACTS, metadata_db, pipeline_dag_settings

SEGMENTS = "/v3/marketing/segments/2.0"
SINGLE_SENDS = "/v3/marketing/singlesends"
SEGMENT_NAME = "Pipeline test audience"
DAG_SETTINGS = pipeline_dag_settings(SEGMENT_NAME)
# An error-level log line as `airflow dags test` prints it (structlog's console or logging's format).
ERROR_LINE = re.compile(r"\[(error|critical)\s*\]|\b(ERROR|CRITICAL)\b| - (ERROR|CRITICAL) - ")


def newest_asset_event(airflow_home: Path) -> dict[str, Any]:
    with metadata_db(airflow_home) as db:
        row = db.execute(
            "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE e.source_dag_id = 'sendgrid_segment_refresh' ORDER BY e.id DESC LIMIT 1"
        ).fetchone()
    assert row is not None, "the refresh DAG emitted no Asset event"
    return {"uri": row[0], "extra": json.loads(row[1])}


def newest_state(airflow_home: Path, dag_id: str, task_id: str) -> str:
    with metadata_db(airflow_home) as db:
        row = db.execute(
            "SELECT state FROM task_instance WHERE dag_id = ? AND task_id = ? "
            "ORDER BY start_date DESC LIMIT 1",
            (dag_id, task_id),
        ).fetchone()
    return str(row[0])


@pytest.mark.timeout(600)  # three `airflow dags test` runs, one waiting for settled results
def test_refresh_then_single_send_end_to_end(
    dags_test: DagsTest, airflow_db: Path, sendgrid_emulator_real_clock: EmulatorHandle, tmp_path: Path
) -> None:
    admin = sendgrid_emulator_real_clock.admin
    admin.seed_contacts(PIPELINE_CONTACTS)
    warehouse = tmp_path / "warehouse.db"
    env = {
        **DAG_SETTINGS,
        **sendgrid_emulator_real_clock.conn_env(),
        "AIRFLOW_CONN_SGSEG_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
    }

    refresh = dags_test("sendgrid_segment_refresh", env=env)
    assert refresh.returncode == 0, refresh.stdout[-4000:] + refresh.stderr[-4000:]

    event = newest_asset_event(airflow_db)
    assert event["uri"] == "x-sendgrid://segments/pipeline-test-audience"
    assert event["extra"]["contacts_count"] == PIPELINE_AUDIENCE
    segment_id = event["extra"]["segment_id"]

    send = dags_test("sendgrid_single_send", env=env, conf=json.dumps({"segment_id": segment_id}))
    assert send.returncode == 0, send.stdout[-4000:] + send.stderr[-4000:]

    def count(method: str, prefix: str, suffix: str = "") -> int:
        return sum(1 for r in admin.requests(method=method, path_prefix=prefix) if r["path"].endswith(suffix))

    assert count("POST", SEGMENTS) == 2  # exactly one create and one refresh
    assert count("POST", f"{SEGMENTS}/refresh/") == 1
    assert count("POST", SINGLE_SENDS) == 1
    assert count("PUT", SINGLE_SENDS, "/schedule") == 1
    (delivery,) = admin.sends()
    assert delivery["recipient_count"] == PIPELINE_AUDIENCE
    assert delivery["status"] == "triggered"
    # The results leg closed the loop: settled totals and the digest link landed in the warehouse.
    with contextlib.closing(sqlite3.connect(warehouse)) as db:
        totals = db.execute(
            "SELECT single_send_id, requests, delivered, provisional FROM sendgrid_single_send_stats "
            "WHERE aggregation = 'total' AND ab_variation = 'all'"
        ).fetchall()
        links = db.execute("SELECT url FROM sendgrid_single_send_links").fetchall()
    assert [(row[1], row[3]) for row in totals] == [(PIPELINE_AUDIENCE, 0)]
    assert totals[0][0] == delivery["single_send_id"] and 0 < totals[0][2] <= PIPELINE_AUDIENCE
    assert links == [("https://example.com/digest",)]

    # The next run within the hour: the segment is reused, the refresh quota (1 per hour) makes the
    # refresh task skip, and the sensor still announces SendGrid's next scheduled sample.
    again = dags_test("sendgrid_segment_refresh", env=env)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert newest_state(airflow_db, "sendgrid_segment_refresh", "refresh_segment") == "skipped"
    # A skip for quota is a normal, documented path: nothing in the run's output at error level
    # (the sensor's watermark=refresh_segment.output once logged "XCom not found" twice).
    output = again.stdout + again.stderr
    assert "refresh_segment" in output and "Skipping task" in output  # the lines are really there
    errors = [line for line in output.splitlines() if ERROR_LINE.search(line)]
    assert errors == [], "\n".join(errors)
    next_event = newest_asset_event(airflow_db)
    assert next_event["extra"]["segment_id"] == segment_id
    assert next_event["extra"]["sample_updated_at"] > event["extra"]["sample_updated_at"]
    assert count("POST", SEGMENTS) == 2


def test_lifecycle_dag_uses_every_segment_operator_and_cleans_up(
    dags_test: DagsTest, sendgrid_emulator_real_clock: EmulatorHandle
) -> None:
    admin = sendgrid_emulator_real_clock.admin
    admin.seed_contacts([{"email": "reader@example.com"}])

    run = dags_test("sendgrid_segment_lifecycle", env=sendgrid_emulator_real_clock.conn_env())
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    segment_calls = [(r["method"], r["path"]) for r in admin.requests(path_prefix=SEGMENTS)]
    methods = {method for method, _ in segment_calls}
    assert methods == {"GET", "POST", "PATCH", "DELETE"}, segment_calls
    assert sum(1 for m, p in segment_calls if m == "POST" and "/refresh/" in p) == 1
    assert sum(1 for m, p in segment_calls if m == "POST" and p == SEGMENTS) == 1
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

    assert SendGridMarketingHook().list_segments() == []
