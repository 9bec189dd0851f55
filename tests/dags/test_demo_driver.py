"""scripts/demo.py leaves no process behind, whether a step succeeds, fails or hangs."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
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


def test_two_thirds_of_the_demo_contacts_match_its_segment(demo: ModuleType) -> None:
    contacts = demo.demo_contacts(3000)
    assert len({c["email"] for c in contacts}) == 3000
    assert sum(c["email"].endswith("@example.com") for c in contacts) == 2000
