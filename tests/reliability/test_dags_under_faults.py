"""Whole DAGs under `airflow dags test`, with a distinctive API key, against an emulator that
loses answers after applying writes.

Three runs share one real-clock emulator (SendGrid's minutes shrunk to seconds):

1. ``sgseg_retry_after_accept`` (tests/reliability/dags): a create, a refresh and a Single Send
   schedule are each applied by the server, their answers lost, the try failed; Airflow retries.
2. ``sendgrid_segment_refresh`` and 3. ``sendgrid_single_send``, the example DAGs, with every
   task given one retry (Airflow's ``default_task_retries``) and the same kind of fault armed on
   their create and schedule.

Then: no duplicate segment, no second refresh, no second send; and the key is nowhere: process
output, log files, the metadata DB (XCom, rendered template fields, task state, everything),
exception text, the trigger and the emulator's request log.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.models.trigger import Trigger
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_sgseg.emulator.client import EmulatorAdmin
from airflow_provider_sgseg.emulator.config import EmulatorConfig
from airflow_provider_sgseg.emulator.pytest_plugin import connection_json
from airflow_provider_sgseg.emulator.server import EmulatorServer
from airflow_provider_sgseg.exceptions import SendGridError
from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor
from tests.conftest import AIRFLOW_BIN, REPO_ROOT

from .conftest import ALL_CONTACTS, SEGMENTS, SINGLE_SENDS, record_faults

API_KEY = "SG.leakcanary-7Hq2xZ.Wq4vN8pR2tY6uK0mB3cX9zL5"
# The key and distinctive pieces of it: a leak of half a key is a leak too.
CANARIES = (API_KEY, "leakcanary-7Hq2xZ", "Wq4vN8pR2tY6uK0mB3cX9zL5")
HERE = Path(__file__).parent
UUID = "[0-9a-f-]{36}"
ANSWER_LOST: dict[str, Any] = {"kind": "drop", "when": "after"}
CHECK_FAILS: dict[str, Any] = {"kind": "status", "status": 429, "headers": {"Retry-After": "3600"}}
PASS_THROUGH: dict[str, Any] = {"kind": "delay", "seconds": 0.01}
SEGMENT_NAME = "Reliability pipeline audience"
EXAMPLE_SETTINGS = {
    "SGSEG_SEGMENT_NAME": SEGMENT_NAME,
    "SGSEG_QUERY_DSL": "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.country = 'NL'",
    "SGSEG_TIME_ZONE": "Europe/Amsterdam",
    "SGSEG_POLL_FLOOR_SECONDS": "1",
    "SGSEG_POLL_CEILING_SECONDS": "5",
    "SGSEG_POLL_SLACK_SECONDS": "0.5",
    "SGSEG_WAIT_TIMEOUT_SECONDS": "90",
    "SGSEG_REQUIRE_MIN_CONTACTS": "100",
}
# Every task of the example DAGs gets one immediate retry, the way a deployment would impose it
# without touching the DAG files: a cluster policy in airflow_local_settings.
RETRY_POLICY = """
import datetime


def task_policy(task):
    task.retries = 1
    task.retry_delay = datetime.timedelta(seconds=0)
"""


@dataclass
class Run:
    dag_id: str
    process: subprocess.CompletedProcess[str]
    requests: list[dict[str, Any]]  # the emulator's log during this run

    @property
    def output(self) -> str:
        return self.process.stdout + self.process.stderr

    def count(self, method: str, path: str) -> int:
        return sum(1 for entry in self.requests if entry["method"] == method and entry["path"] == path)

    def count_suffix(self, method: str, prefix: str, suffix: str) -> int:
        return sum(
            1
            for entry in self.requests
            if entry["method"] == method
            and entry["path"].startswith(prefix)
            and entry["path"].endswith(suffix)
        )


@dataclass
class Runs:
    server: EmulatorServer
    admin: EmulatorAdmin
    airflow_home: Path
    retry_report: dict[str, Any]
    runs: dict[str, Run] = field(default_factory=dict)


def _dags_test(
    dag_id: str, dags_folder: Path, env: dict[str, str], conf: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(AIRFLOW_BIN), "dags", "test", dag_id]
    if conf is not None:
        command += ["--conf", conf]
    full_env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder), **env}
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=240)


def _arm(admin: EmulatorAdmin, *faults: tuple[str, str, dict[str, Any]]) -> None:
    for method, path, spec in faults:
        admin.add_fault(method=method, path=path, **spec)


@pytest.fixture(scope="module")
def runs(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    config = EmulatorConfig(
        clock="real",
        api_key=API_KEY,
        contacts_populate_delay=3,
        membership_check_interval=3,
        sample_interval=5,
        refresh_delay=2,
    )
    report_path = tmp_path_factory.mktemp("retry") / "report.json"
    with EmulatorServer(config) as server:
        admin = EmulatorAdmin(server.base_url, server.api_key)
        contacts = [{"email": f"lezer{n}@example.nl", "country": "NL"} for n in range(150)]
        contacts += [{"email": f"reader{n}@example.com", "country": "US"} for n in range(50)]
        admin.seed_contacts(contacts)
        env = {"AIRFLOW_CONN_SENDGRID_DEFAULT": connection_json(server.base_url, server.api_key)}

        def run(dag_id: str, dags_folder: Path, extra: dict[str, str], conf: str | None = None) -> Run:
            logged = len(admin.requests())
            process = _dags_test(dag_id, dags_folder, {**env, **extra}, conf)
            return Run(dag_id, process, admin.requests()[logged:])

        retry = run("sgseg_retry_after_accept", HERE / "dags", {"SGSEG_RETRY_REPORT": str(report_path)})

        policy_dir = tmp_path_factory.mktemp("policy")
        (policy_dir / "airflow_local_settings.py").write_text(RETRY_POLICY)
        python_path = os.pathsep.join(filter(None, [str(policy_dir), os.environ.get("PYTHONPATH")]))
        examples = {**EXAMPLE_SETTINGS, "PYTHONPATH": python_path}
        report = json.loads(report_path.read_text()) if report_path.exists() else {}

        _arm(
            admin,
            ("GET", f"^{SEGMENTS}$", PASS_THROUGH),  # ensure_segment's lookup by name
            ("POST", f"^{SEGMENTS}$", ANSWER_LOST),
            ("GET", f"^{SEGMENTS}$", CHECK_FAILS),  # its lookup after the lost answer: the try fails
        )
        refresh = run("sendgrid_segment_refresh", REPO_ROOT / "dags", examples)
        found = [s for s in _segments(server) if s["name"] == SEGMENT_NAME]
        conf = json.dumps({"segment_id": found[0]["id"]}) if found else None
        _arm(
            admin,
            ("PUT", f"^{SINGLE_SENDS}/{UUID}/schedule$", ANSWER_LOST),
            ("GET", f"^{SINGLE_SENDS}/{UUID}$", CHECK_FAILS),
        )
        send = run("sendgrid_single_send", REPO_ROOT / "dags", examples, conf)
        try:
            yield Runs(
                server=server,
                admin=admin,
                airflow_home=airflow_db,
                retry_report=report,
                runs={run.dag_id: run for run in (retry, refresh, send)},
            )
        finally:
            admin.close()


def _segments(server: EmulatorServer) -> list[dict[str, Any]]:
    import httpx

    answer = httpx.get(
        f"{server.base_url}{SEGMENTS}", headers={"Authorization": f"Bearer {server.api_key}"}, timeout=10
    )
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def _tries(airflow_home: Path, dag_id: str) -> dict[str, tuple[int, str]]:
    """task_id -> (try_number, state) in the newest run of ``dag_id``."""
    with contextlib.closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        run_id = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()[0]
        rows = db.execute(
            "SELECT task_id, try_number, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
            (dag_id, run_id),
        ).fetchall()
    return {task_id: (try_number, state) for task_id, try_number, state in rows}


def _assert_succeeded(run: Run) -> None:
    assert run.process.returncode == 0, run.output[-6000:]


# ------------------------------------------------------------------------ task retries


def test_retried_create_refresh_and_send_do_nothing_twice(runs: Runs) -> None:
    run = runs.runs["sgseg_retry_after_accept"]
    _assert_succeeded(run)
    assert record_faults(run.requests) == 8  # 3 around the create, 3 around the refresh, 2 the send

    tries = _tries(runs.airflow_home, run.dag_id)
    for task_id in ("create", "refresh", "send"):
        assert tries[task_id] == (2, "success"), tries  # the first try failed; Airflow retried it

    # One segment, one refresh, one Single Send scheduled once, each applied by the first try.
    assert run.count("POST", SEGMENTS) == 1
    segment_id = runs.retry_report["create"]["id"]
    assert [s["id"] for s in _segments(runs.server) if s["name"] == "retry audience"] == [segment_id]
    assert run.count("POST", f"{SEGMENTS}/refresh/{segment_id}") == 1
    assert run.count("POST", SINGLE_SENDS) == 1
    assert run.count_suffix("PUT", SINGLE_SENDS, "/schedule") == 1
    single_send_id = runs.retry_report["send"]["single_send_id"]
    assert [d["single_send_id"] for d in runs.admin.sends()].count(single_send_id) == 1

    # The retries say what they found instead of pretending they did it.
    refreshed = runs.retry_report["refresh"]
    assert refreshed["segment_id"] == segment_id
    assert refreshed["job_id"] is None  # the refresh of the first try, adopted
    assert runs.retry_report["send"]["status"] in ("scheduled", "triggered")


def test_example_dags_survive_a_lost_answer_and_a_task_retry(runs: Runs) -> None:
    refresh, send = runs.runs["sendgrid_segment_refresh"], runs.runs["sendgrid_single_send"]
    _assert_succeeded(refresh)
    _assert_succeeded(send)
    assert record_faults(refresh.requests) == 3
    assert record_faults(send.requests) == 2
    assert _tries(runs.airflow_home, refresh.dag_id)["ensure_segment"] == (2, "success")
    assert _tries(runs.airflow_home, send.dag_id)["send_single_send"] == (2, "success")

    (segment,) = [s for s in _segments(runs.server) if s["name"] == SEGMENT_NAME]
    assert refresh.count("POST", SEGMENTS) == 1
    assert refresh.count("POST", f"{SEGMENTS}/refresh/{segment['id']}") == 1
    assert send.count("POST", SINGLE_SENDS) == 1
    assert send.count_suffix("PUT", SINGLE_SENDS, "/schedule") == 1
    deliveries = [d for d in runs.admin.sends() if d["name"].startswith("Segment digest")]
    assert len(deliveries) == 1
    assert deliveries[0]["recipient_count"] == 150


# ---------------------------------------------------------------------------- secrets


def _leaks(text: str) -> list[str]:
    return [canary for canary in CANARIES if canary in text]


def test_key_is_not_in_process_output(runs: Runs) -> None:
    assert len(runs.runs) == 3
    for run in runs.runs.values():
        assert "SendGrid" in run.output  # the hook's request log lines are there...
        assert _leaks(run.output) == [], run.dag_id  # ...the key is not


def test_key_is_not_in_exception_text_of_the_failed_tries(runs: Runs) -> None:
    failures = runs.runs["sgseg_retry_after_accept"].output
    # The failed tries' tracebacks are in the output: typed errors naming method and path.
    assert "SendGridRateLimitError" in failures and "No answer from SendGrid" in failures
    assert _leaks(failures) == []


def test_key_is_not_in_log_files(runs: Runs) -> None:
    scanned = 0
    for path in runs.airflow_home.rglob("*"):
        if (
            path.is_file()
            and path.suffix in (".log", ".json", ".txt", ".cfg", "")
            and path.stat().st_size < 50e6
        ):
            scanned += 1
            assert _leaks(path.read_text(errors="replace")) == [], path
    assert scanned >= 1  # at least airflow.cfg; task logs when Airflow writes them to files


def test_key_is_not_in_the_metadata_db(runs: Runs) -> None:
    database = runs.airflow_home / "airflow.db"
    dag_ids = tuple(runs.runs)
    with contextlib.closing(sqlite3.connect(database)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                assert _leaks(repr(row)) == [], table
        marks = ",".join("?" * len(dag_ids))
        xcoms = db.execute(f"SELECT value FROM xcom WHERE dag_id IN ({marks})", dag_ids).fetchall()
        rendered = db.execute(
            f"SELECT rendered_fields FROM rendered_task_instance_fields WHERE dag_id IN ({marks})",
            dag_ids,
        ).fetchall()
        task_state = db.execute("SELECT count(*) FROM task_state_store").fetchone()[0]
    # The scan covered real values: the segment ids in XCom and in rendered template fields.
    segment_id = runs.retry_report["create"]["id"]
    assert any(segment_id in str(value) for (value,) in xcoms)
    assert any(segment_id in str(fields) for (fields,) in rendered)
    assert task_state >= 1
    # And the raw file, free pages included.
    assert _leaks(database.read_bytes().decode("latin-1")) == []


def test_key_is_not_in_the_emulator_request_log(runs: Runs) -> None:
    log = runs.admin.requests()
    assert len(log) > 20
    assert _leaks(json.dumps(log)) == []


def test_key_is_not_in_errors_or_the_trigger(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", connection_json(runs.server.base_url, API_KEY))
    hook = SendGridMarketingHook(retry=RetryPolicy(max_attempts=1))
    texts: list[str] = []
    runs.admin.add_fault("drop", method="GET", path=f"^{SEGMENTS}$")
    for call in (
        lambda: hook.get_segment("6b2b2a0e-7e1f-4b8b-9a53-0c1c3d5e6f70"),  # 404
        lambda: hook.create_segment(SEGMENT_NAME, ALL_CONTACTS),  # 400: the name is taken
        lambda: hook.list_segments(),  # no answer
    ):
        with pytest.raises(SendGridError) as raised:
            call()
        error = raised.value
        texts += [str(error), repr(error), repr(error.args), "".join(traceback.format_exception(error))]
    assert len(texts) == 12

    # The trigger a deferrable sensor hands to the triggerer.
    segment = hook.create_segment("trigger audience", ALL_CONTACTS)
    hook.close()
    sensor = SendGridSegmentPopulatedSensor(
        task_id="wait", segment_id=segment["id"], deferrable=True, min_contacts=10_000, timeout=60
    )
    context = {"ti": SimpleNamespace(try_number=1, xcom_push=lambda **_: None), "task_state_store": None}
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    classpath, kwargs = trigger.serialize()
    assert kwargs["sendgrid_conn_id"] == "sendgrid_default" and kwargs["segment_id"] == segment["id"]
    texts += [
        repr(trigger),
        str(trigger),
        classpath,
        json.dumps(kwargs),
        repr(Trigger.from_object(trigger).kwargs),
    ]
    texts.append(repr(vars(trigger)))

    assert [text for text in texts if _leaks(text)] == []
