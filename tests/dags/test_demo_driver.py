"""scripts/demo.py leaves no process behind, whether a step succeeds, fails or hangs."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sgseg_demo", REPO_ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def accepts_connections(base_url: str) -> bool:
    parts = urllib.parse.urlsplit(base_url)
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((parts.hostname, parts.port)) == 0


def running(marker: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if marker in line and "ps -eo" not in line]


def test_the_emulator_is_stopped_when_a_step_fails(demo: ModuleType, tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="step failed"),
        demo.emulator(tmp_path / "emulator.log") as (url, key),
    ):
        assert key
        assert accepts_connections(url)
        started = url
        raise RuntimeError("step failed")
    assert not accepts_connections(started)


def test_a_hung_step_is_killed_with_its_children(demo: ModuleType, tmp_path: Path) -> None:
    marker = f"sgseg-demo-{uuid.uuid4().hex}"
    # A step that starts a child in the background and hangs; every shell carries the marker.
    hang = f"bash -c 'sleep 300; true' {marker}"
    script = f"{hang} & {hang}; wait"
    with pytest.raises(subprocess.TimeoutExpired):
        demo.run_logged(["bash", "-c", script, marker], {}, tmp_path / "step.log", timeout=2)
    assert running(marker) == []


def test_a_failing_step_shows_its_log_tail(demo: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="exit 3") as failed:
        demo.run_logged(["bash", "-c", "echo what went wrong; exit 3"], {}, tmp_path / "step.log")
    assert "what went wrong" in str(failed.value)


# The real demo.main() with its `airflow` swapped for a stand-in whose `dags test` hangs: the
# emulator and the step are running, each in its own session, when the driver is told to stop.
DRIVER = """
import importlib.util, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("sgseg_demo", sys.argv[1])
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)
demo.DEMO_DIR, demo.BIN = Path(sys.argv[2]), Path(sys.argv[3])
sys.exit(demo.main())
"""
HANGING_AIRFLOW = """#!/bin/sh
[ "$1" = db ] && exit 0
touch "$SGSEG_DEMO_STEP_STARTED"
exec sleep 300
"""


def children_of(pid: int) -> list[int]:
    listing = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    pairs = (line.split() for line in listing.splitlines())
    return [int(child) for child, parent in pairs if int(parent) == pid]


def is_running(pid: int) -> bool:
    """Alive and not a zombie (a re-parented child nobody reaps would still look alive to kill(0))."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_terminated_demo_leaves_no_emulator_or_step_behind(tmp_path: Path, signum: int) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "airflow").write_text(HANGING_AIRFLOW)
    (bin_dir / "airflow").chmod(0o755)
    step_started = tmp_path / "step-started"
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(REPO_ROOT / "scripts" / "demo.py"), str(tmp_path), str(bin_dir)],
        env={**os.environ, "SGSEG_DEMO_STEP_STARTED": str(step_started)},
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    children: list[int] = []
    try:
        give_up = time.monotonic() + 60  # a guard against a hang, not a timing assertion
        while not step_started.exists():
            if driver.poll() is not None:
                pytest.fail(f"the demo ended before its first DAG step: {driver.communicate()[0]}")
            if time.monotonic() > give_up:
                pytest.fail("the demo did not reach its first DAG step")
            time.sleep(0.1)
        children = children_of(driver.pid)
        assert len(children) == 2  # the emulator and `airflow dags test`

        driver.send_signal(signum)
        output = driver.communicate(timeout=30)[0]

        assert [pid for pid in children if is_running(pid)] == [], output
        assert driver.returncode == 128 + signum
    finally:
        for pid in children:  # each leads its own process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        driver.kill()
        driver.wait()


def test_two_thirds_of_the_demo_contacts_match_its_segment(demo: ModuleType) -> None:
    contacts = demo.demo_contacts(3000)
    assert len({c["email"] for c in contacts}) == 3000
    assert sum(c["email"].endswith("@example.com") for c in contacts) == 2000
