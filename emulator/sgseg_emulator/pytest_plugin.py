"""pytest fixtures that run the offline SendGrid emulator (a ``pytest11`` plugin of this package).

``sendgrid_emulator_server`` (session): one emulator with a manual clock on a free loopback port.
``sendgrid_emulator`` (function): resets it, points ``AIRFLOW_CONN_SENDGRID_DEFAULT`` at it and
yields an :class:`EmulatorHandle`. ``sendgrid_emulator_real_clock`` (function): a fresh emulator
on a real clock with SendGrid's minutes shrunk to seconds, for whole-DAG runs; the same handle.
``running_emulator(config)`` starts one with any settings, e.g. for a module-scoped fixture.
``sendgrid_dag_runner`` (function): a fresh real-clock emulator with test timings that
``sendgrid_default`` points at, and ``.run(dag)``, which runs a DAG in-process as ``dag.test()``
does (see :mod:`sgseg_emulator.dag_runner`).

When ``AIRFLOW_HOME`` is not set as the session starts, the session gets a throwaway one (SQLite
metadata DB migrated once, when ``sendgrid_dag_runner`` is first used; no examples; a Fernet
key), before any test module imports Airflow. This module loads in every pytest run, so it
imports nothing heavy (no Airflow, FastAPI or uvicorn) until a fixture is used.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .client import EmulatorAdmin
    from .config import EmulatorConfig
    from .dag_runner import SendGridDagRunner
    from .server import EmulatorServer

CONN_ENV_VAR = "AIRFLOW_CONN_SENDGRID_DEFAULT"


def connection_json(base_url: str, api_key: str) -> str:
    """An Airflow connection (JSON form) of type ``sendgrid_marketing`` pointing at ``base_url``."""
    return json.dumps({"conn_type": "sendgrid_marketing", "host": base_url, "password": api_key})


@dataclass(frozen=True)
class EmulatorHandle:
    """What the emulator fixtures yield: ``base_url``, ``api_key``, ``admin`` (an ``EmulatorAdmin``) and the
    running ``server``."""

    base_url: str
    api_key: str
    admin: EmulatorAdmin
    server: EmulatorServer

    def conn_env(self) -> dict[str, str]:
        """Environment for subprocesses (e.g. ``airflow dags test``) to use this emulator."""
        return {CONN_ENV_VAR: connection_json(self.base_url, self.api_key)}


@contextlib.contextmanager
def running_emulator(config: EmulatorConfig) -> Iterator[EmulatorHandle]:
    """A new emulator with ``config`` for the ``with`` block; the connection variable is untouched."""
    from .client import EmulatorAdmin
    from .server import EmulatorServer

    with EmulatorServer(config) as server:
        admin = EmulatorAdmin(server.base_url, server.api_key)
        try:
            yield EmulatorHandle(base_url=server.base_url, api_key=server.api_key, admin=admin, server=server)
        finally:
            admin.close()


def _point_connection_at(handle: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in handle.conn_env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def sendgrid_emulator_server() -> Iterator[EmulatorServer]:
    """One emulator for the session, manual clock; prefer ``sendgrid_emulator`` in tests."""
    from .config import EmulatorConfig
    from .server import EmulatorServer

    with EmulatorServer(EmulatorConfig(clock="manual")) as server:
        yield server


@pytest.fixture
def sendgrid_emulator(
    sendgrid_emulator_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmulatorHandle]:
    """A clean emulator (data, faults, log, settings and clock reset) for one test."""
    from .client import EmulatorAdmin

    server = sendgrid_emulator_server
    admin = EmulatorAdmin(server.base_url, server.api_key)
    admin.reset()
    handle = EmulatorHandle(base_url=server.base_url, api_key=server.api_key, admin=admin, server=server)
    _point_connection_at(handle, monkeypatch)
    try:
        yield handle
    finally:
        admin.close()


@pytest.fixture
def sendgrid_emulator_real_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorHandle]:
    """A fresh emulator for one test: real clock, ``EmulatorConfig.short_timings()``, connection set."""
    from .config import EmulatorConfig

    with running_emulator(EmulatorConfig.short_timings()) as handle:
        _point_connection_at(handle, monkeypatch)
        yield handle


# The throwaway AIRFLOW_HOME this session made ("" when the user has one), removed at the end.
_MADE_HOME = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Give the session a throwaway ``AIRFLOW_HOME`` when the user has none (see the module docstring)."""
    from .dag_runner import isolated_airflow_environment

    variables = isolated_airflow_environment(
        os.environ,
        lambda: tempfile.mkdtemp(prefix="sgseg-emulator-airflow-home-"),
        airflow_imported="airflow" in sys.modules,
    )
    os.environ.update(variables)
    config.stash[_MADE_HOME] = variables.get("AIRFLOW_HOME", "")


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_MADE_HOME, "")
    if home:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def sendgrid_airflow_db() -> None:
    """The throwaway home's metadata DB, migrated once per session; with your own ``AIRFLOW_HOME``,
    its DB is used as it is (run ``airflow db migrate`` there first). A DB without tables fails
    the tests that use it, saying why."""
    from .dag_runner import metadata_db_problem, migrate_metadata_db, owns_airflow_home

    if owns_airflow_home(os.environ):
        migrate_metadata_db()
    elif problem := metadata_db_problem(os.environ):
        pytest.fail(problem, pytrace=False)


@pytest.fixture
def sendgrid_dag_runner(
    sendgrid_airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SendGridDagRunner]:
    """Run your DAG against a fresh emulator in seconds: ``result = sendgrid_dag_runner.run(dag)``.

    The emulator runs on a real clock with ``EmulatorConfig.short_timings()`` (SendGrid's minutes
    as seconds) and ``AIRFLOW_CONN_SENDGRID_DEFAULT`` points at it. ``run(dag, conf=None,
    logical_date=None, timings=True)`` runs every task in this process as ``dag.test()`` does,
    with the provider's poll bounds and the tasks' retry delays divided by 60 for that run, and
    returns a ``DagRunResult`` (``.state``, ``.task_states``, ``.xcom(task_id, key)``). Seed data
    and read the request log through ``sendgrid_dag_runner.admin``.
    """
    from .config import EmulatorConfig
    from .dag_runner import SendGridDagRunner

    with running_emulator(EmulatorConfig.short_timings()) as handle:
        _point_connection_at(handle, monkeypatch)
        yield SendGridDagRunner(handle)
