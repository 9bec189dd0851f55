"""Suite-wide set-up: a throwaway AIRFLOW_HOME and a way to run `airflow dags test`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

# Must happen before anything imports airflow: Airflow reads its home at import time.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="sgseg-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_AIRFLOW_HOME / "dags"))

REPO_ROOT = Path(__file__).resolve().parent.parent

# tests/system needs the production-shape stack and its own venv: `make e2e` runs it, `make test` not.
collect_ignore = ["system"]
AIRFLOW_BIN = Path(sys.executable).parent / "airflow"

DagsTest = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB in the throwaway AIRFLOW_HOME (once per session)."""
    subprocess.run([str(AIRFLOW_BIN), "db", "migrate"], check=True, capture_output=True, text=True)
    return _AIRFLOW_HOME


@pytest.fixture
def dags_test(airflow_db: Path) -> DagsTest:
    """Run ``airflow dags test DAG_ID`` in a subprocess; returns the completed process.

    ``dags_folder`` defaults to the repo's ``dags/``; ``env`` adds variables such as
    ``AIRFLOW_CONN_SENDGRID_DEFAULT``. The caller asserts on returncode and output.
    """

    def run(
        dag_id: str,
        *,
        dags_folder: Path | str = REPO_ROOT / "dags",
        env: Mapping[str, str] | None = None,
        conf: str | None = None,
        timeout: float = 240,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder), **(env or {})}
        cmd = [str(AIRFLOW_BIN), "dags", "test", dag_id]
        if conf is not None:
            cmd += ["--conf", conf]
        return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)

    return run
