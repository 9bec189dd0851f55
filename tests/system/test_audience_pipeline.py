"""The audience example (dags/sendgrid_audience_pipeline.py) on the production shape, its warehouse
a database of the stack's real PostgreSQL server, reached through an Airflow ``postgres`` connection.

* The whole pipeline: the upsert and export jobs are waited on in the triggerers (deferred, seen in
  the metadata DB), the segment's Asset event is emitted, and SendGrid sees every warehouse row
  synced, one export whose rows = its ``contact_count`` = the segment's ``contacts_count``, one send.
* ``kill -9`` of the Celery worker while SendGrid holds the answer to an upsert batch: the retry
  resends no batch an earlier try saw accepted (only the one whose answer was lost may go again)
  and starts no second export.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from services import wait_for
from stack import CONTACTS, SEGMENTS, TASK_HEARTBEAT_TIMEOUT, WAREHOUSE_DB, System, warehouse

DAG_ID = "sendgrid_audience_pipeline"
CONTACTS_PATH = "/v3/marketing/contacts"
EXPORTS = "/v3/marketing/contacts/exports"
SEGMENT_ASSET = "x-sendgrid://segments/e2e-warehouse-audience"
EXPORT_ASSET = "x-sendgrid://exports/e2e-warehouse-audience"
ROWS = 400
# Above SendGrid's 30,000 contacts per upsert: two batches, the second one's answer held.
KILL_ROWS = 31_000
HOLD_ANSWER = 120.0  # seconds the emulator keeps the held batch's answer: longer than any retry


def fill_warehouse(system: System, rows: int) -> set[str]:
    """A fresh ``customers`` table of ``rows`` customers (the example's default query); returns the
    audience's emails (country NL)."""
    with warehouse(system, "postgres") as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (WAREHOUSE_DB,))
        if not cursor.fetchone():
            cursor.execute(f"CREATE DATABASE {WAREHOUSE_DB}")
    with warehouse(system) as cursor:
        cursor.execute("DROP TABLE IF EXISTS customers")
        cursor.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT,"
            " country TEXT, plan TEXT, lifetime_value NUMERIC(12, 2))"
        )
        cursor.execute(
            "INSERT INTO customers SELECT n, 'customer' || n || '@shop.example.org', 'First' || n,"
            " 'Last' || n, (ARRAY['NL', 'DE', 'FR', 'US'])[n %% 4 + 1], (ARRAY['free', 'pro'])[n %% 2 + 1],"
            " round(n * 1.25, 2) FROM generate_series(0, %s) AS n",
            (rows - 1,),
        )
        cursor.execute("SELECT email FROM customers WHERE country = 'NL'")
        return {email for (email,) in cursor.fetchall()}


def sendgrid_get(system: System, path: str) -> Any:
    answer = httpx.get(
        system.emulator_url + path, headers={"Authorization": f"Bearer {system.api_key}"}, timeout=30
    )
    answer.raise_for_status()
    return answer.json()


def log_mark(system: System) -> int:
    """Where the emulator's request log ends now (it only grows)."""
    assert system.admin is not None
    return len(system.admin.requests())


def run_requests(system: System, method: str, path: str, since: int) -> list[dict[str, Any]]:
    """The emulator's log of ``method path`` (exact path) after the mark ``since``."""
    assert system.admin is not None
    return [r for r in system.admin.requests()[since:] if r["method"] == method and r["path"] == path]


def test_audience_pipeline_syncs_the_warehouse_defers_its_jobs_exports_and_sends_once(
    system: System,
) -> None:
    assert system.admin is not None
    members = fill_warehouse(system, ROWS)
    since = log_mark(system)
    run_id = system.trigger(DAG_ID)
    started = time.monotonic()

    sync = system.watch_deferral(DAG_ID, run_id, "sync_contacts", timeout=240)
    wait = system.watch_deferral(DAG_ID, run_id, "wait_until_populated", timeout=240)
    export = system.watch_deferral(DAG_ID, run_id, "export_members", timeout=240)
    state = system.wait_for_run(DAG_ID, run_id, timeout=240)
    seconds = time.monotonic() - started
    tries = system.task_instances(DAG_ID, run_id)
    assert state == "success", tries
    assert (sync.seen, wait.seen, export.seen) == (True, True, True), (sync, wait, export)
    assert all(state == "success" and n == 1 for state, n in tries.values()), tries

    synced = system.xcom(DAG_ID, run_id, "sync_contacts")
    assert (synced["rows_read"], synced["rows_sent"], synced["refused_rows"]) == (ROWS, ROWS, 0), synced
    assert synced["created_count"] == ROWS and synced["batches"] == 1, synced
    upserts = run_requests(system, "PUT", CONTACTS_PATH, since)
    assert len(upserts) == 1, "one batch of every warehouse row"
    count = sendgrid_get(system, f"{CONTACTS_PATH}/count")["contact_count"]
    assert count == CONTACTS + ROWS, f"SendGrid holds {count} contacts"

    segment_id = system.xcom(DAG_ID, run_id, "ensure_segment", "segment_id")
    exported = system.xcom(DAG_ID, run_id, "export_members")
    exports = run_requests(system, "POST", EXPORTS, since)
    assert len(exports) == 1, exports
    assert exports[0]["json"]["segment_ids"] == [segment_id]
    segment = sendgrid_get(system, f"{SEGMENTS}/{segment_id}")
    (path,) = exported["paths"]
    assert Path(path).is_relative_to(system.export_dir), path
    with open(path, newline="") as file:
        emails = {row["EMAIL"] for row in csv.DictReader(file)}
    assert emails == members, "the export holds the segment's exact members"
    assert exported["row_count"] == exported["contact_count"] == segment["contacts_count"] == len(members)

    sql = (
        "SELECT a.uri FROM asset_event e JOIN asset a ON a.id = e.asset_id "
        "WHERE e.source_dag_id = :dag_id AND e.source_run_id = :run_id"
    )
    events = sorted(uri for (uri,) in system.airflow.query(sql, dag_id=DAG_ID, run_id=run_id))
    assert events == [EXPORT_ASSET, SEGMENT_ASSET], events
    single_send_id = system.xcom(DAG_ID, run_id, "send_single_send", "single_send_id")
    sends = [s for s in system.admin.sends() if s["single_send_id"] == single_send_id]
    assert [s["status"] for s in sends] in (["scheduled"], ["triggered"]), sends
    schedule = f"/v3/marketing/singlesends/{single_send_id}/schedule"
    assert len(run_requests(system, "PUT", schedule, since)) == 1
    print(
        f"\n[audience] run {seconds:.0f} s; deferred: upsert {sync.seconds:.1f} s {sync.triggerer_ids}, "
        f"wait {wait.seconds:.1f} s {wait.triggerer_ids}, export {export.seconds:.1f} s "
        f"{export.triggerer_ids}; {ROWS} warehouse rows -> 1 batch, {count} contacts in SendGrid; "
        f"1 export of {exported['row_count']} rows = contact_count {exported['contact_count']} = "
        f"contacts_count {segment['contacts_count']}; {len(sends)} send"
    )


def batch_key(entry: dict[str, Any]) -> str:
    """The emulator logs a large body's SHA-256; the batches here are all large."""
    assert "body_sha256" in entry, f"a batch body small enough to be logged whole: {entry['path']}"
    return str(entry["body_sha256"])


def test_worker_killed_while_an_upsert_batch_answer_is_held_resends_no_accepted_batch(
    system: System,
) -> None:
    admin = system.admin
    assert admin is not None
    fill_warehouse(system, KILL_ROWS)
    since = log_mark(system)
    # The first batch is held 3 s before SendGrid takes it, so the second fault is armed in time
    # for the second batch: accepted, its answer held until the worker is dead.
    admin.add_fault("delay", method="PUT", path=f"^{CONTACTS_PATH}$", when="before", seconds=3)
    started = time.monotonic()
    try:
        run_id = system.trigger(DAG_ID)
        wait_for(
            "the first upsert batch",
            lambda: run_requests(system, "PUT", CONTACTS_PATH, since),
            timeout=240,
            interval=0.25,
        )
        admin.add_fault("delay", method="PUT", path=f"^{CONTACTS_PATH}$", when="after", seconds=HOLD_ANSWER)
        wait_for(
            "the second upsert batch",
            lambda: len(run_requests(system, "PUT", CONTACTS_PATH, since)) >= 2 or None,
            timeout=120,
            interval=0.25,
        )
        time.sleep(1)  # the emulator has applied the batch and is holding the answer
        system.kill(system.worker)
        system.start_worker()
        state = system.wait_for_run(DAG_ID, run_id, timeout=420)
    finally:
        admin.clear_faults()
    assert state == "success", system.task_instances(DAG_ID, run_id)
    state, tries = system.task_instances(DAG_ID, run_id)["sync_contacts"]
    assert (state, tries) == ("success", 2), "Airflow did not retry the upsert after the worker died"

    upserts = run_requests(system, "PUT", CONTACTS_PATH, since)
    first, second, *resent = [batch_key(r) for r in upserts]
    sent = Counter(batch_key(r) for r in upserts)
    assert first != second
    assert sent[first] == 1, "the retry resent the batch an earlier try saw accepted"
    # The held batch's answer was lost with the worker: the retry may send that batch (only) again.
    assert resent in ([], [second]), (sent, [r["status"] for r in upserts])
    synced = system.xcom(DAG_ID, run_id, "sync_contacts")
    assert (synced["rows_read"], synced["batches"]) == (KILL_ROWS, 2), synced
    exports = run_requests(system, "POST", EXPORTS, since)
    assert len(exports) == 1, exports
    print(
        f"\n[worker kill: upsert] {KILL_ROWS} rows in 2 batches; worker killed while SendGrid held batch 2's "
        f"202; the scheduler failed the task after the {TASK_HEARTBEAT_TIMEOUT} s heartbeat timeout; "
        f"try 2 sent batch 1 {sent[first] - 1} more times and batch 2 {len(resent)} more time(s) "
        f"({len(upserts)} PUTs); {len(exports)} export; run done in {time.monotonic() - started:.0f} s"
    )
