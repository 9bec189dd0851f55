"""scripts/demo.py on real Airflow, and scripts/airflow_stack.py: no process is ever left behind.

The full demo runs once (with ``--keep``, so the running stack can be inspected before Ctrl-C).
The failure and signal paths run the real driver with a stand-in ``airflow`` (a shell script),
so they cost seconds. Every process the stack starts works in the test's Airflow home (and its
children inherit that working directory, unlike the environment, which Airflow's process titles
overwrite); afterwards no process on the machine may still work there.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import pytest
from sgseg_emulator.client import EmulatorAdmin
from sgseg_emulator.config import DEMO_API_KEY

from airflow_provider_sgseg.version_compat import AIRFLOW_V_3_1_PLUS
from tests.conftest import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts"
# The real demo.main() with its Airflow home (and optionally its `airflow` and DAG settings) swapped.
DRIVER = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import demo
demo.DEMO_DIR = Path(sys.argv[2])
if sys.argv[3]:
    demo.BIN = Path(sys.argv[3])
demo.DAG_SETTINGS.update(json.loads(os.environ.get("SGSEG_DEMO_TEST_SETTINGS", "{}")))
demo.PIPELINE_TIMEOUT = float(os.environ.get("SGSEG_DEMO_TEST_PIPELINE_TIMEOUT", demo.PIPELINE_TIMEOUT))
sys.exit(demo.main(sys.argv[4:]))
"""


@pytest.fixture
def airflow_stack(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import airflow_stack

    return airflow_stack


def working_in(root: Path) -> list[int]:
    """Live (non-zombie) processes whose working directory is ``root`` or below."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE and process.cwd().startswith(str(root)):
                found.append(process.pid)
    return found


def commands_and_listening_ips(pids: list[int]) -> tuple[str, set[str]]:
    """The command lines of ``pids`` (joined) and the addresses they listen on. A short-lived
    process (a task's, a worker's) that ends meanwhile is left out."""
    commands, listening = [], set()
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            connections = process.net_connections(kind="inet")
            commands.append(" ".join(process.cmdline()))
            listening |= {conn.laddr.ip for conn in connections if conn.status == psutil.CONN_LISTEN}
    return " ".join(commands), listening


@contextlib.contextmanager
def driver(
    tmp_path: Path, *args: str, fake_bin: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """The demo driver as a subprocess, and its demo folder; on the way out whatever still works
    there is killed (a guard: the tests assert that nothing does)."""
    demo_dir = tmp_path / "demo"
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(SCRIPTS), str(demo_dir), str(fake_bin or ""), *args],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, demo_dir
    finally:
        process.kill()
        process.wait()
        for pid in working_in(demo_dir):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def read_until(process: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    """The driver's output up to and including the first line matching ``pattern``."""
    assert process.stdout is not None
    seen: list[str] = []
    give_up = time.monotonic() + timeout  # a guard against a hang, not a timing assertion
    while time.monotonic() < give_up:
        line = process.stdout.readline()
        if not line:
            pytest.fail("the demo ended early:\n" + "".join(seen))
        seen.append(line)
        if re.search(pattern, line):
            return "".join(seen)
    pytest.fail(f"no line matching {pattern!r} in time:\n" + "".join(seen))


def get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as answer:
        body = answer.read()
        return json.loads(body) if answer.headers.get_content_type() == "application/json" else body


def test_the_demo_runs_the_pipeline_on_real_airflow_and_keep_holds_it_until_ctrl_c(tmp_path: Path) -> None:
    with driver(tmp_path, "--keep") as (demo, demo_dir):
        output = read_until(demo, r"Ctrl-C stops every process", timeout=300)

        # The sensor really deferred, and the Single Send DAG was started by the Asset event.
        deferred = re.search(
            r"wait_until_populated\s+deferred (\d+) s in triggerer \(job \d+\); the wait cost (\d+)", output
        )
        assert deferred, output
        assert int(deferred[1]) >= 1 and int(deferred[2]) >= 2
        assert re.search(r"sendgrid_single_send\s+success in \d+ s: asset_triggered__", output), output
        # Two pipelines: the refresh one, and the audience one (warehouse -> contacts -> send + export),
        # each asked SendGrid for one of each.
        per_pipeline = re.findall(
            r"SendGrid\s+1 segment created, 1 refresh, 1 Single Send scheduled: sent to (\d+) \(triggered\)",
            output,
        )
        assert per_pipeline == ["2000", "500"], output
        assert re.search(r"sendgrid_audience_pipeline success in \d+ s: manual__", output), output
        assert "warehouse rows synced: 2000 of 2000 read (batches: 1 request(s), jobs completed" in output
        assert "rows exported: 500 = contacts_count 500" in output
        # The results leg closed the loop: settled stats of the 2000-contact send in the warehouse.
        assert re.search(r"results landed in sendgrid_single_send_stats \(\d+ rows, settled\)", output), (
            output
        )
        assert re.search(r" total\s+sent 2000, delivered \d+, opened \d+, clicked \d+", output), output
        # The watched segment's next sample started the events DAG, which printed the event.
        started = re.search(
            r"sendgrid_segment_events\s+success in \d+ s: asset_triggered__.*\n"
            r"\s+started by the event\s+segment \S+ \(Demo watched segment\): 2000 contacts, sample \S+",
            output,
        )
        assert started, output

        # The emulator agrees: one of each per pipeline, to the 2000 @example.com contacts and to
        # the 500 Dutch warehouse customers.
        emulator_url = re.search(r"Emulator at (http://127\.0\.0\.1:\d+)", output)
        assert emulator_url, output
        admin = EmulatorAdmin(emulator_url[1], DEMO_API_KEY)
        posts = [r["path"] for r in admin.requests(method="POST", path_prefix="/v3/")]
        assert sum("/refresh/" in path for path in posts) == 2
        assert posts.count("/v3/marketing/segments/2.0") == 3  # and the watched segment
        assert sorted(d["recipient_count"] for d in admin.sends()) == [500, 2000, 2000]
        admin.close()

        # The UI is up, and the printed login works.
        ui = re.search(r"Airflow UI\s+(http://127\.0\.0\.1:\d+)", output)
        login = re.search(r"log in as\s+(\S+) / (\S+)", output)
        assert ui and login, output
        assert b"<html" in get(ui[1] + "/").lower()
        request = urllib.request.Request(
            ui[1] + "/auth/token",
            data=json.dumps({"username": login[1], "password": login[2]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            token = json.load(answer)["access_token"]
        runs = get(ui[1] + "/api/v2/dags/sendgrid_single_send/dagRuns", token)["dag_runs"]
        assert [run["run_type"] for run in runs] == ["asset_triggered"]

        # The connection is in the metadata DB (listed in the UI) with the emulator's port stored,
        # and the UI's Test button (what it posts: the stored connection, password masked) works.
        assert "sendgrid_default: Admin -> Connections" in output
        stored = get(ui[1] + "/api/v2/connections/sendgrid_default", token)
        assert (stored["conn_type"], stored["host"]) == ("sendgrid_marketing", emulator_url[1])
        assert stored["port"] == int(emulator_url[1].rsplit(":", 1)[1])
        if not AIRFLOW_V_3_1_PLUS:
            # Airflow 3.0 has no Test button, and its endpoint tests exactly the body it gets (a
            # masked password would be sent as "***"): test the stored connection with its key.
            stored["password"] = DEMO_API_KEY
        tested = urllib.request.Request(
            ui[1] + "/api/v2/connections/test",
            data=json.dumps(stored).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(tested, timeout=30) as answer:
            result = json.load(answer)
        assert result["status"] is True, result

        # Separate processes, and nothing listening beyond loopback.
        commands, listening = commands_and_listening_ips(working_in(demo_dir))
        commands = commands.replace("_", "-")  # "airflow api_server"
        for component in ("api-server", "scheduler", "dag-processor", "triggerer", "sgseg-emulator"):
            assert component in commands
        assert listening == {"127.0.0.1"}

        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=60)[0]
        assert demo.returncode == 0, rest
        assert "every process stopped" in rest
        assert working_in(demo_dir) == []


def test_a_failed_task_fails_the_demo_with_the_task_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQL that SendGrid cannot parse: the emulator answers 400 and ensure_segment fails.
    monkeypatch.setenv(
        "SGSEG_DEMO_TEST_SETTINGS", json.dumps({"SGSEG_QUERY_DSL": "SELECT c.contact_id FROM"})
    )
    with driver(tmp_path) as (demo, demo_dir):
        output = demo.communicate(timeout=240)[0]
        assert demo.returncode == 1, output
        assert re.search(
            r"DAG run sendgrid_segment_refresh manual__\S+ failed at task ensure_segment", output
        )
        assert "task_id=ensure_segment/attempt=1.log" in output  # where the full log is
        # The tail, readable: the exception SendGrid's 400 became, with its message.
        assert "SendGridValidationError: SendGrid rejected the request" in output
        assert "query_dsl is not valid SQL" in output
        assert working_in(demo_dir) == []


def test_an_unfinished_pipeline_fails_the_demo_with_task_states_and_log_tails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More contacts than exist: the refresh pipeline's sensor stays deferred past the demo's limit.
    monkeypatch.setenv("SGSEG_DEMO_TEST_SETTINGS", json.dumps({"SGSEG_MIN_CONTACTS": "1000000"}))
    monkeypatch.setenv("SGSEG_DEMO_TEST_PIPELINE_TIMEOUT", "45")
    with driver(tmp_path) as (demo, demo_dir):
        output = demo.communicate(timeout=240)[0]
        assert demo.returncode == 1, output
        assert "the pipelines did not finish within 45 s: sendgrid_segment_refresh running" in output
        # Which task is where, on which try, and where its log is, with its tail.
        assert re.search(
            r"task sendgrid_segment_refresh\.wait_until_populated deferred \(try 1\); full log: \S+"
            r"task_id=wait_until_populated/attempt=1\.log",
            output,
        ), output
        assert "--- last lines of scheduler; full log: " in output
        # The trigger's own log says why it keeps waiting.
        assert "fewer than min_contacts=1000000" in output
        assert working_in(demo_dir) == []


FAILING_SCHEDULER = """#!/bin/sh
case "$1" in
  db) exit 0 ;;
  scheduler) echo "scheduler: cannot reach the metadata DB (a test stand-in)"; exit 1 ;;
  *) exec sleep 300 ;;
esac
"""
# Every component hangs; the scheduler also leaves a child in a session of its own (outside its
# process group), which must be stopped too. The triggerer says when it has started.
HANGING_COMPONENTS = """#!/bin/sh
case "$1" in
  db) exit 0 ;;
  scheduler) setsid sleep 300 & exec sleep 300 ;;
  triggerer) touch "$SGSEG_DEMO_TEST_STARTED"; exec sleep 300 ;;
  *) exec sleep 300 ;;
esac
"""


def stand_in(tmp_path: Path, script: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "airflow").write_text(script)
    (bin_dir / "airflow").chmod(0o755)
    return bin_dir


def test_a_failing_component_fails_the_demo_with_its_log_tail(tmp_path: Path) -> None:
    with driver(tmp_path, fake_bin=stand_in(tmp_path, FAILING_SCHEDULER)) as (demo, demo_dir):
        output = demo.communicate(timeout=120)[0]
        assert demo.returncode == 1, output
        assert "scheduler exited with status 1" in output
        assert "cannot reach the metadata DB (a test stand-in)" in output  # the log tail
        assert f"full log: {tmp_path / 'demo' / 'airflow_home' / 'logs' / 'scheduler.log'}" in output
        assert working_in(demo_dir) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stopped_demo_leaves_no_process_behind(
    tmp_path: Path, signum: signal.Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = tmp_path / "triggerer-started"
    monkeypatch.setenv("SGSEG_DEMO_TEST_STARTED", str(started))
    with driver(tmp_path, fake_bin=stand_in(tmp_path, HANGING_COMPONENTS)) as (demo, demo_dir):
        give_up = time.monotonic() + 60  # a guard against a hang, not a timing assertion
        while not started.exists():
            assert demo.poll() is None, demo.communicate()[0]
            assert time.monotonic() < give_up, "the demo did not start its components"
            time.sleep(0.1)
        time.sleep(1)  # the scheduler's detached child is running too
        assert len(working_in(demo_dir)) >= 6  # the emulator, 4 components, the detached child

        demo.send_signal(signum)
        output = demo.communicate(timeout=60)[0]

        assert demo.returncode == (130 if signum == signal.SIGINT else 128 + signum), output
        assert working_in(demo_dir) == []


def test_a_hung_command_is_killed_with_its_children(airflow_stack: ModuleType, tmp_path: Path) -> None:
    config = airflow_stack.StackConfig(home=tmp_path, dags_folder=tmp_path, airflow_bin=Path("/bin/sh"))
    stack = airflow_stack.AirflowStack(config)
    with pytest.raises(airflow_stack.ComponentError, match="did not finish within 2 s") as failed:
        stack.run(["-c", "echo started; sleep 300 & sleep 300"], "hang", timeout=2)
    assert "started" in str(failed.value)  # the log tail
    assert working_in(tmp_path) == []


def test_a_failing_command_shows_its_log_tail(airflow_stack: ModuleType, tmp_path: Path) -> None:
    config = airflow_stack.StackConfig(home=tmp_path, dags_folder=tmp_path, airflow_bin=Path("/bin/sh"))
    with pytest.raises(airflow_stack.ComponentError, match="exit status 3") as failed:
        airflow_stack.AirflowStack(config).run(["-c", "echo what went wrong; exit 3"], "step")
    assert "what went wrong" in str(failed.value)
    assert str(tmp_path / "logs" / "step.log") in str(failed.value)


def test_the_stack_binds_loopback_and_keeps_its_ports_apart(
    airflow_stack: ModuleType, tmp_path: Path
) -> None:
    stacks = [
        airflow_stack.AirflowStack(airflow_stack.StackConfig(home=tmp_path / name, dags_folder=tmp_path))
        for name in ("a", "b")
    ]
    for stack in stacks:
        assert stack.env["AIRFLOW__API__HOST"] == "127.0.0.1"
        assert stack.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{stack.api_url}/execution/"
        assert stack.api_url.startswith("http://127.0.0.1:")
    ports = [
        stack.env[name]
        for stack in stacks
        for name in (
            "AIRFLOW__API__PORT",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
        )
    ]
    assert len(set(ports)) == len(ports)
    assert "8080" not in ports and "8793" not in ports


def test_two_thirds_of_the_demo_contacts_match_its_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import demo

    contacts = demo.demo_contacts(3000)
    assert len({c["email"] for c in contacts}) == 3000
    assert sum(c["email"].endswith("@example.com") for c in contacts) == 2000
