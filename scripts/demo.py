"""`make demo`: the whole pipeline, offline, in about a minute.

1. A throwaway Airflow home in .demo/ (SQLite), migrated.
2. The SendGrid emulator on a free loopback port, with SendGrid's timings shrunk to seconds,
   seeded with a few thousand contacts.
3. `airflow dags test sendgrid_segment_refresh`: ensure the segment, refresh it, wait until it
   has populated, emit the Asset event.
4. `airflow dags test sendgrid_single_send` with the segment id from that Asset event
   (`dags test` does not start Asset-scheduled DAGs by itself).
5. A short summary, then everything stops, even when a step fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sgseg_emulator.client import EmulatorAdmin

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / ".demo"
BIN = Path(sys.executable).parent
CONTACTS = 3000
SEGMENT_NAME = "Demo digest audience"
QUERY_DSL = "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.email LIKE '%@example.com'"
DAG_SETTINGS = {
    "SGSEG_SEGMENT_NAME": SEGMENT_NAME,
    "SGSEG_QUERY_DSL": QUERY_DSL,
    "SGSEG_TIME_ZONE": "America/Chicago",
    "SGSEG_POLL_FLOOR_SECONDS": "1",
    "SGSEG_POLL_CEILING_SECONDS": "5",
    "SGSEG_POLL_SLACK_SECONDS": "0.5",
    "SGSEG_WAIT_TIMEOUT_SECONDS": "90",
}
DAG_TEST_TIMEOUT = 150


def main() -> int:
    exit_on_termination_signals()
    started = time.monotonic()
    home = fresh_airflow_home()
    env = {
        **os.environ,
        **DAG_SETTINGS,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    step("Migrating a throwaway Airflow metadata DB (SQLite) in .demo/")
    run_logged([str(BIN / "airflow"), "db", "migrate"], env, home / "db-migrate.log")

    with emulator(home / "emulator.log") as (base_url, api_key):
        step(f"Emulator at {base_url}; seeding {CONTACTS} contacts")
        admin = EmulatorAdmin(base_url, api_key)
        admin.seed_contacts(demo_contacts(CONTACTS))
        env["AIRFLOW_CONN_SENDGRID_DEFAULT"] = json.dumps(
            {"conn_type": "sendgrid_marketing", "host": base_url, "password": api_key}
        )

        step("airflow dags test sendgrid_segment_refresh")
        refresh_seconds = dags_test("sendgrid_segment_refresh", env, home)
        event = latest_asset_event(home)

        step("airflow dags test sendgrid_single_send")
        conf = json.dumps({"segment_id": event["segment_id"]})
        send_seconds = dags_test("sendgrid_single_send", env, home, "--conf", conf)

        summary(home, admin, event, refresh_seconds, send_seconds)
    step(f"Done in {time.monotonic() - started:.0f} s; emulator stopped")
    return 0


def exit_on_termination_signals() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C: the ``finally`` blocks stop every process group.

    The emulator and each step run in their own sessions; killed outright, this driver would leave
    them running, re-parented to PID 1.
    """

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, leave)


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def fresh_airflow_home() -> Path:
    home = DEMO_DIR / "airflow_home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    return home


def demo_contacts(count: int) -> list[dict[str, Any]]:
    """Two out of three contacts match the demo segment (an @example.com address)."""
    domains = ("example.com", "example.com", "example.org")
    return [
        {"email": f"reader{n}@{domains[n % 3]}", "first_name": f"Reader{n}", "country": "US"}
        for n in range(count)
    ]


@contextlib.contextmanager
def emulator(log_path: Path) -> Iterator[tuple[str, str]]:
    """The emulator CLI in its own process group; the group is killed on the way out, always."""
    # Real clock, SendGrid's minutes and hours as seconds: the waits are real but short.
    cmd = [sys.executable, "-m", "sgseg_emulator", "--port", "0", "--short-timings"]
    log = log_path.open("w")
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        # "sgseg-emulator listening on http://127.0.0.1:PORT api_key=KEY"
        words = dict(word.split("=", 1) for word in line.split() if "=" in word)
        base_url = next((word for word in line.split() if word.startswith("http://")), None)
        if base_url is None or "api_key" not in words:
            raise SystemExit(f"emulator did not start (see {log_path}): {line!r}")
        yield base_url, words["api_key"]
    finally:
        stop_group(process)
        log.close()


def dags_test(dag_id: str, env: dict[str, str], home: Path, *args: str) -> float:
    started = time.monotonic()
    log_path = home / f"dags-test-{dag_id}.log"
    run_logged([str(BIN / "airflow"), "dags", "test", dag_id, *args], env, log_path, DAG_TEST_TIMEOUT)
    return time.monotonic() - started


def run_logged(cmd: list[str], env: dict[str, str], log_path: Path, timeout: float = 120) -> None:
    """Run a command in its own process group, output to a log file; on failure show its tail."""
    with log_path.open("w") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = process.wait(timeout=timeout)
        finally:
            stop_group(process)
    if returncode != 0:
        tail = log_path.read_text().splitlines()[-25:]
        raise SystemExit(
            f"{' '.join(cmd[1:3])} failed (exit {returncode}); full log: {log_path}\n" + "\n".join(tail)
        )


def stop_group(process: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after a few seconds."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # stray children of an exited leader
            return
        except subprocess.TimeoutExpired:
            continue


def latest_asset_event(home: Path) -> dict[str, Any]:
    """The ``extra`` of the newest Asset event the refresh DAG emitted (read from Airflow's DB)."""
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        row = db.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE e.source_dag_id = 'sendgrid_segment_refresh' ORDER BY e.id DESC LIMIT 1"
        ).fetchone()
    if row is None:
        raise SystemExit("the refresh DAG emitted no Asset event")
    extra: dict[str, Any] = json.loads(row[0])
    return extra


def task_seconds(home: Path, dag_id: str, task_id: str) -> float:
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        row = db.execute(
            "SELECT julianday(end_date) - julianday(start_date) FROM task_instance "
            "WHERE dag_id = ? AND task_id = ? ORDER BY start_date DESC LIMIT 1",
            (dag_id, task_id),
        ).fetchone()
    return float(row[0] or 0) * 86400 if row else 0.0


def xcom(home: Path, dag_id: str, task_id: str) -> Any:
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        row = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value' "
            "ORDER BY timestamp DESC LIMIT 1",
            (dag_id, task_id),
        ).fetchone()
    return json.loads(row[0]) if row else None


def summary(
    home: Path, admin: EmulatorAdmin, event: dict[str, Any], refresh_seconds: float, send_seconds: float
) -> None:
    sent = xcom(home, "sendgrid_single_send", "send_single_send") or {}
    waited = task_seconds(home, "sendgrid_segment_refresh", "wait_until_populated")
    deliveries = [d for d in admin.sends() if d["status"] != "cancelled"]
    recipients = ", ".join(f"{d['recipient_count']} ({d['status']})" for d in deliveries) or "none"
    lines = [
        f"Segment          {SEGMENT_NAME!r} ({event['segment_id']})",
        f"Contacts counted {event['contacts_count']} of {CONTACTS} seeded ({event['sample_updated_at']})",
        f"Refresh DAG      {refresh_seconds:.0f} s, of which waiting until populated {waited:.0f} s",
        f"Single Send DAG  {send_seconds:.0f} s",
        f"Single Send      {sent.get('single_send_id')}: {sent.get('status')}, send_at {sent.get('send_at')}",
        f"Emulator sent to {recipients} recipients; {len(admin.requests(path_prefix='/v3/'))} API requests",
        f"Logs             {home.relative_to(REPO)}/",
    ]
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
