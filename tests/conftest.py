"""Suite-wide set-up: a throwaway AIRFLOW_HOME in the production shape, and `airflow dags test`.

Production shape: a Fernet key is set (every real deployment has one), so connections stored in
the metadata DB are encrypted there and decrypted on every read; tests use connections both from
``AIRFLOW_CONN_*`` variables (the emulator fixtures) and from the metadata DB
(``metadata_connection``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

# Must happen before anything imports airflow: Airflow reads its home at import time.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="sgseg-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_AIRFLOW_HOME / "dags"))
# A Fernet key is 32 random bytes, URL-safe base64: what `airflow config` would generate.
FERNET_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
os.environ["AIRFLOW__CORE__FERNET_KEY"] = FERNET_KEY

# Imports Airflow: only now that its home is set.
from tests.airflow_compat import sync_dags_for_dags_test  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent

# tests/system needs the production-shape stack and its own venv: `make e2e` runs it, `make test` not.
# tests/user_dag_project is a user's repository in miniature, run by its own pytest process
# (tests/dags/test_user_dag_project.py).
collect_ignore = ["system", "user_dag_project"]
AIRFLOW_BIN = Path(sys.executable).parent / "airflow"

DagsTest = Callable[..., subprocess.CompletedProcess[str]]
StoreConnection = Callable[[str, Mapping[str, object]], None]

# Tests that run Airflow itself (`airflow dags test`, the demo's components) share one xdist worker
# (`make test` runs `--dist loadgroup`): two of them at once on 2 cores starve each other past
# their time limits, while the rest of the suite fills the other worker.
AIRFLOW_PROCESS_MODULES = {"test_demo_driver.py", "test_dags_under_faults.py", "test_user_dag_project.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "dags_test" in getattr(item, "fixturenames", ()) or item.path.name in AIRFLOW_PROCESS_MODULES:
            item.add_marker(pytest.mark.xdist_group("airflow-processes"))


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
        sync_dags_for_dags_test(AIRFLOW_BIN, full_env)
        cmd = [str(AIRFLOW_BIN), "dags", "test", dag_id]
        if conf is not None:
            cmd += ["--conf", conf]
        return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture
def metadata_connection(airflow_db: Path) -> Iterator[StoreConnection]:
    """Store connections in the metadata DB as a user does (``airflow connections add``, encrypted
    with the suite's Fernet key); each is deleted again after the test.

    Call it with a connection ID and the connection as a dict (Airflow's JSON form). Use an ID no
    ``AIRFLOW_CONN_*`` variable names: those win over the DB.
    """
    stored: list[str] = []

    def store(conn_id: str, connection: Mapping[str, object]) -> None:
        cli = [str(AIRFLOW_BIN), "connections", "add", conn_id, "--conn-json", json.dumps(connection)]
        added = subprocess.run(cli, capture_output=True, text=True, timeout=120)
        assert added.returncode == 0, added.stdout[-2000:] + added.stderr[-2000:]
        stored.append(conn_id)

    yield store
    for conn_id in stored:
        subprocess.run(
            [str(AIRFLOW_BIN), "connections", "delete", conn_id], capture_output=True, text=True, timeout=120
        )
