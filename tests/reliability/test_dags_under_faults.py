"""The example DAGs under `airflow dags test`, with a distinctive API key, against an emulator
that loses answers after applying writes.

``sendgrid_segment_refresh``, ``sendgrid_single_send`` and ``sendgrid_segment_lifecycle`` run
against one real-clock emulator (SendGrid's minutes shrunk to seconds). A cluster policy
(tests/reliability/policy, on PYTHONPATH for these runs only) gives every task one immediate retry
and, on the first try of the create, the refresh and the Single Send, has the server apply the
write, lose the answer and then fail the try's check; Airflow retries the task. The lifecycle's
DELETE is applied and its answer lost too.

Then: no duplicate segment, no second refresh, no second send; and the key is nowhere: process
output, log files, the metadata DB (XCom, rendered template fields, task state, everything),
exception text, the trigger and the emulator's request log.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.models.trigger import Trigger
from sgseg_emulator.client import EmulatorAdmin
from sgseg_emulator.config import EmulatorConfig
from sgseg_emulator.pytest_plugin import connection_json, running_emulator
from sgseg_emulator.server import EmulatorServer

from airflow_provider_sgseg.exceptions import SendGridError
from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor
from airflow_provider_sgseg.version_compat import AIRFLOW_V_3_3_PLUS, TaskDeferred
from tests.airflow_compat import sync_dags_for_dags_test, without_airflows_mask_requests
from tests.conftest import AIRFLOW_BIN, REPO_ROOT
from tests.helpers import PIPELINE_AUDIENCE, PIPELINE_CONTACTS, metadata_db, pipeline_dag_settings

from .conftest import ALL_CONTACTS, SEGMENTS, SINGLE_SENDS, record_faults

API_KEY = "SG.leakcanary-7Hq2xZ.Wq4vN8pR2tY6uK0mB3cX9zL5"
# The key and distinctive pieces of it: a leak of half a key is a leak too.
CANARIES = (API_KEY, "leakcanary-7Hq2xZ", "Wq4vN8pR2tY6uK0mB3cX9zL5")
POLICY_DIR = Path(__file__).parent / "policy"
SEGMENT_NAME = "Reliability pipeline audience"
EXAMPLE_SETTINGS = pipeline_dag_settings(SEGMENT_NAME)


@dataclass
class Run:
    dag_id: str
    process: subprocess.CompletedProcess[str]
    requests: list[dict[str, Any]]  # the emulator's log during this run
    output_file: Path  # the full process output, kept for a failure's reader

    @property
    def output(self) -> str:
        return without_airflows_mask_requests(self.process.stdout + self.process.stderr)

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
    runs: dict[str, Run] = field(default_factory=dict)


def _dags_test(
    dag_id: str, dags_folder: Path, env: dict[str, str], conf: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(AIRFLOW_BIN), "dags", "test", dag_id]
    if conf is not None:
        command += ["--conf", conf]
    full_env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder), **env}
    sync_dags_for_dags_test(AIRFLOW_BIN, full_env)
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def runs(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    with running_emulator(EmulatorConfig.short_timings(api_key=API_KEY)) as emulator:
        server, admin = emulator.server, emulator.admin
        admin.seed_contacts(PIPELINE_CONTACTS)
        python_path = os.pathsep.join(filter(None, [str(POLICY_DIR), os.environ.get("PYTHONPATH")]))
        # The Single Send DAG lands its results in a warehouse table (its land_results task).
        warehouse = tmp_path_factory.mktemp("warehouse") / "warehouse.db"
        env = {
            **EXAMPLE_SETTINGS,
            **emulator.conn_env(),
            "PYTHONPATH": python_path,
            "AIRFLOW_CONN_SGSEG_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
        }

        outputs = tmp_path_factory.mktemp("dags_test_output")

        def run(dag_id: str, conf: str | None = None) -> Run:
            logged = len(admin.requests())
            process = _dags_test(dag_id, REPO_ROOT / "dags", env, conf)
            output_file = outputs / f"{dag_id}.log"
            output_file.write_text(process.stdout + process.stderr)
            return Run(dag_id, process, admin.requests()[logged:], output_file)

        refresh = run("sendgrid_segment_refresh")
        found = [s for s in _segments(server) if s["name"] == SEGMENT_NAME]
        send = run("sendgrid_single_send", json.dumps({"segment_id": found[0]["id"]}) if found else None)
        lifecycle = run("sendgrid_segment_lifecycle")
        yield Runs(
            server=server,
            admin=admin,
            airflow_home=airflow_db,
            runs={r.dag_id: r for r in (refresh, send, lifecycle)},
        )


def _segments(server: EmulatorServer) -> list[dict[str, Any]]:
    import httpx

    answer = httpx.get(
        f"{server.base_url}{SEGMENTS}", headers={"Authorization": f"Bearer {server.api_key}"}, timeout=10
    )
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def _tries(airflow_home: Path, dag_id: str) -> dict[str, tuple[int, str]]:
    """task_id -> (try_number, state) in the newest run of ``dag_id``."""
    with metadata_db(airflow_home) as db:
        run_id = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()[0]
        rows = db.execute(
            "SELECT task_id, try_number, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
            (dag_id, run_id),
        ).fetchall()
    return {task_id: (try_number, state) for task_id, try_number, state in rows}


def _xcom(airflow_home: Path, dag_id: str, task_id: str) -> Any:
    """The return value of ``task_id`` in the newest run of ``dag_id``, from the metadata DB."""
    with metadata_db(airflow_home) as db:
        (value,) = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value' "
            "ORDER BY dag_run_id DESC LIMIT 1",
            (dag_id, task_id),
        ).fetchone()
    return json.loads(value)


def _tracebacks(output: str) -> list[str]:
    """Every traceback in ``output``: from its header through the first unindented line after it."""
    blocks: list[str] = []
    lines = output.splitlines()
    for start, line in enumerate(lines):
        if "Traceback (most recent call last)" not in line:
            continue
        end = start + 1
        while end < len(lines) and (not lines[end] or lines[end][0].isspace()):
            end += 1
        blocks.append("\n".join(lines[start : end + 1]))
    return blocks


def _assert_succeeded(run: Run) -> None:
    if run.process.returncode != 0:
        tracebacks = "\n\n".join(_tracebacks(run.output)) or run.output[-6000:]
        pytest.fail(
            f"{run.dag_id} exited {run.process.returncode}; full output in {run.output_file}\n{tracebacks}"
        )


# ------------------------------------------------------------------------ task retries


def test_retried_create_refresh_and_send_do_nothing_twice(runs: Runs) -> None:
    refresh, send = runs.runs["sendgrid_segment_refresh"], runs.runs["sendgrid_single_send"]
    _assert_succeeded(refresh)
    _assert_succeeded(send)
    assert record_faults(refresh.requests) == 6  # 3 around the create, 3 around the refresh
    assert record_faults(send.requests) == 2  # around the schedule

    # Each writing task failed its first try and Airflow retried it; the others ran once.
    assert _tries(runs.airflow_home, refresh.dag_id) == {
        "ensure_segment": (2, "success"),
        "refresh_segment": (2, "success"),
        "wait_until_populated": (1, "success"),
    }
    assert _tries(runs.airflow_home, send.dag_id)["send_single_send"] == (2, "success")

    # One segment, one refresh spent, one Single Send scheduled once: all by the first tries.
    (segment,) = [s for s in _segments(runs.server) if s["name"] == SEGMENT_NAME]
    assert refresh.count("POST", SEGMENTS) == 1
    assert refresh.count("POST", f"{SEGMENTS}/refresh/{segment['id']}") == 1
    assert send.count("POST", SINGLE_SENDS) == 1
    assert send.count_suffix("PUT", SINGLE_SENDS, "/schedule") == 1
    (delivery,) = runs.admin.sends()
    assert delivery["recipient_count"] == PIPELINE_AUDIENCE

    # The retries say what they found instead of pretending they did it.
    refreshed = _xcom(runs.airflow_home, refresh.dag_id, "refresh_segment")
    assert refreshed["segment_id"] == segment["id"]
    assert refreshed["job_id"] is None  # the first try's refresh, adopted
    populated = _xcom(runs.airflow_home, refresh.dag_id, "wait_until_populated")
    assert populated["contacts_count"] == PIPELINE_AUDIENCE
    sent = _xcom(runs.airflow_home, send.dag_id, "send_single_send")
    assert sent["single_send_id"] == delivery["single_send_id"]
    assert sent["status"] in ("scheduled", "triggered")


def test_lifecycle_dag_deletes_once_even_when_the_answer_is_lost(runs: Runs) -> None:
    lifecycle = runs.runs["sendgrid_segment_lifecycle"]
    _assert_succeeded(lifecycle)
    assert record_faults(lifecycle.requests) == 1
    deletes = [e for e in lifecycle.requests if e["method"] == "DELETE"]
    # Applied (no status: the answer was dropped), then the hook's retry found nothing left.
    assert [e["status"] for e in deletes] == [None, 404]
    assert _tries(runs.airflow_home, lifecycle.dag_id)["delete_segment"] == (1, "success")
    # The operator knows the 404 answers its own repeated DELETE: the segment was deleted, once.
    assert _xcom(runs.airflow_home, lifecycle.dag_id, "delete_segment")["deleted"] is True
    assert [s["name"] for s in _segments(runs.server)] == [SEGMENT_NAME]  # only the pipeline's
    assert lifecycle.count("POST", SEGMENTS) == 1


# ---------------------------------------------------------------------------- secrets


def _leaks(text: str) -> list[str]:
    return [canary for canary in CANARIES if canary in text]


def test_key_is_not_in_process_output(runs: Runs) -> None:
    assert len(runs.runs) == 3
    for run in runs.runs.values():
        assert "SendGrid" in run.output  # the hook's request log lines are there...
        assert _leaks(run.output) == [], run.dag_id  # ...the key is not


def test_key_is_not_in_exception_text_of_the_failed_tries(runs: Runs) -> None:
    failures = "".join(run.output for run in runs.runs.values())
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
    dag_ids = tuple(runs.runs)
    with metadata_db(runs.airflow_home) as db:
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
        # Airflow 3.3+: the refresh's and the sensor's records (before 3.3 there is no such table).
        task_state = (
            db.execute("SELECT count(*) FROM task_state_store").fetchone()[0] if AIRFLOW_V_3_3_PLUS else None
        )
    # The scan covered real values: the segment ids in XCom and in rendered template fields.
    (segment,) = [s for s in _segments(runs.server) if s["name"] == SEGMENT_NAME]
    segment_id = segment["id"]
    assert any(segment_id in str(value) for (value,) in xcoms)
    assert any(segment_id in str(fields) for (fields,) in rendered)
    assert task_state is None or task_state >= 1
    # And the raw file, free pages included.
    assert _leaks((runs.airflow_home / "airflow.db").read_bytes().decode("latin-1")) == []


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


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.args!r} {record.__dict__!r}")


def test_key_is_not_in_debug_logs_of_the_hook_and_httpx(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Users turn DEBUG on when something is wrong: the key must not show up then either."""
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", connection_json(runs.server.base_url, API_KEY))
    handler = _Everything()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore", "airflow")}
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        hook = SendGridMarketingHook(retry=RetryPolicy(max_attempts=2, initial_wait=0, jitter=0))
        runs.admin.add_fault("status", method="GET", path=f"^{SEGMENTS}$", status=503)
        hook.list_segments()  # a retry, logged at WARNING with the error
        hook.get_segment(_segments(runs.server)[0]["id"])
        assert hook.test_connection()[0]
        hook.close()
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    assert any("httpcore" in line for line in handler.lines)  # the transport's own debug lines
    assert any("/v3/marketing/segments/2.0" in line for line in handler.lines)
    assert [line for line in handler.lines if _leaks(line)] == []
