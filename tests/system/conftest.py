"""One production-shape stack for the whole session; every process it starts is stopped at the end.

Artifacts (component logs, browser screenshots) go under ``$SGSEG_E2E_ARTIFACTS`` (default
``<repo>/.e2e-artifacts/<timestamp>``). The logs are kept when a test failed, and the folder
is printed; after a green run only the screenshots stay.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import REPO, System

_failed: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _failed.append(report.nodeid)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    default = REPO / ".e2e-artifacts" / time.strftime("%Y%m%dT%H%M%S")
    folder = Path(os.environ.get("SGSEG_E2E_ARTIFACTS", default)).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ne2e artifacts: {folder}")
    return folder


@pytest.fixture(scope="session")
def system(artifacts: Path) -> Iterator[System]:
    root = Path(tempfile.mkdtemp(prefix="sgseg-e2e-"))
    system = System(root)
    started = time.monotonic()
    try:
        system.start()
        print(f"\nstack up in {time.monotonic() - started:.0f} s (logs: {system.logs})")
        yield system
    except BaseException:
        _failed.append("stack start-up")
        raise
    finally:
        system.airflow.stop_all()
        if _failed:
            kept = artifacts / "logs"
            shutil.copytree(system.logs, kept, dirs_exist_ok=True)
            print(f"\nFAILED ({', '.join(_failed)}): component and task logs kept in {kept}")
        shutil.rmtree(root, ignore_errors=True)
