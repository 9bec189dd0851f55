"""Real Airflow components as separate processes, on loopback, for the demo and the system tests.

    stack = AirflowStack(StackConfig(home=Path(".demo/airflow_home"), dags_folder=REPO / "dags"))
    with stack:                          # leaving the block stops every process it started, always
        stack.migrate()                  # `airflow db migrate`, log tail in the error on failure
        stack.start_components()         # api-server, scheduler, dag-processor, N triggerers
        stack.wait_until_healthy()       # api-server answers, each job heartbeats with its own pid
        token = stack.api_token()        # a JWT for the REST API (SimpleAuthManager user/password)

Every component is ``airflow <component>`` in a session of its own, with its output in
``<home>/logs/<name>.log``. Stopping one sends SIGTERM to it, then SIGKILL to its process group
and to every descendant still alive (recorded by pid, so children that left the group go too).
A component that exits early or never gets healthy raises :class:`ComponentError` carrying the
tail of its log. Nothing listens beyond 127.0.0.1: the api-server binds there, and the log servers
of the scheduler, triggerers and Celery workers are skipped (``--skip-serve-logs``); every
component shares the same log folder, so the api-server reads task and trigger logs from disk.

The metadata DB URL, the executor, the number of triggerers and any extra ``AIRFLOW__*`` settings
are parameters, so the same module runs SQLite + LocalExecutor (the demo) and PostgreSQL +
CeleryExecutor with two triggerers (``tests/system``). Processes that are not Airflow components
(PostgreSQL, Redis, a Celery worker with its own flags) go through :meth:`AirflowStack.start`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
# Components that run an Airflow job and heartbeat it in the metadata DB's ``job`` table.
JOB_TYPES = {"scheduler": "SchedulerJob", "dag-processor": "DagProcessorJob", "triggerer": "TriggererJob"}
# A job counts as alive when its heartbeat is younger than this (Airflow's own thresholds are 30 s).
HEARTBEAT_FRESH = timedelta(seconds=30)


class ComponentError(RuntimeError):
    """A component exited, failed to start or did not get healthy in time; the message has its log tail."""

    def __init__(self, name: str, reason: str, log_path: Path | None, tail: str = "") -> None:
        self.name, self.reason, self.log_path, self.tail = name, reason, log_path, tail
        where = f"; full log: {log_path}" if log_path else ""
        shown = f"\n--- last lines of {name} ---\n{tail}" if tail else ""
        super().__init__(f"{name} {reason}{where}{shown}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


@dataclass
class StackConfig:
    """What differs between stacks. Paths are made absolute; ``home`` is created if missing."""

    home: Path  # AIRFLOW_HOME: airflow.cfg, the SQLite DB (default), logs/
    dags_folder: Path
    db_url: str | None = None  # default: SQLite file <home>/airflow.db
    executor: str = "LocalExecutor"
    triggerers: int = 1
    api_port: int = 0  # 0: a free loopback port
    username: str = "admin"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    paused_at_creation: bool = True
    stop_grace: float = 10.0  # seconds each component gets to exit after SIGTERM, then SIGKILL
    parallelism: int = 8  # task slots per scheduler (Airflow's 32 starts 32 LocalExecutor workers)
    env: Mapping[str, str] = field(default_factory=dict)  # extra variables, e.g. AIRFLOW__CELERY__*
    airflow_bin: Path = field(default_factory=lambda: Path(sys.executable).parent / "airflow")


@dataclass
class Component:
    """One process the stack started."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path
    ready: Callable[[], bool] | None = None
    job_type: str | None = None  # for Airflow jobs: the ``job.job_type`` it heartbeats
    job_id: int | None = None  # ``job.id`` once seen (e.g. ``trigger.triggerer_id`` points at it)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    # Kept as psutil handles: they refuse to signal a pid that has since been reused.
    descendants: dict[int, psutil.Process] = field(default_factory=dict)
    terminating: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def error(self, reason: str) -> ComponentError:
        return ComponentError(self.name, reason, self.log_path, self.tail())

    def remember_descendants(self) -> None:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.pid).children(recursive=True):
                self.descendants[child.pid] = child  # a reused pid: the live process wins

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the component's main process only (e.g. SIGKILL to simulate a crash)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        """SIGTERM once (Airflow components force-exit on a second one)."""
        self.remember_descendants()
        if self.alive() and not self.terminating:
            self.terminating = True
            self.signal(signal.SIGTERM)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, up to ``grace`` seconds to exit, then SIGKILL its group and every descendant left."""
        self.terminate()
        if self.alive():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        self.remember_descendants()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # its own session: the group id is its pid
        for descendant in self.descendants.values():
            with contextlib.suppress(psutil.Error):
                descendant.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        psutil.wait_procs(list(self.descendants.values()), timeout=5)


class AirflowStack:
    """Starts, watches and stops the processes of one Airflow installation (one AIRFLOW_HOME)."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.home = config.home.resolve()
        self.log_dir = self.home / "logs"
        self.api_port = config.api_port or free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.db_url = config.db_url or f"sqlite:///{self.home / 'airflow.db'}"
        self.components: dict[str, Component] = {}
        self.env = self._environment()
        self._engine: Any = None

    def _environment(self) -> dict[str, str]:
        config = self.config
        passwords = self.home / "simple_auth_manager_passwords.json"
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(config.dags_folder.resolve()),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": config.executor,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(config.paused_at_creation),
            "AIRFLOW__CORE__PARALLELISM": str(config.parallelism),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__WORKERS": "1",  # Airflow 3.0 defaults to 4 uvicorn workers
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            # One secret for every component: the scheduler signs the tokens the api-server checks.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            # Airflow 3.0 leaves the issuer unset, which PyJWT >= 2.10 refuses to sign.
            "AIRFLOW__API_AUTH__JWT_ISSUER": "airflow-stack",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            # As in production: connections stored in the metadata DB are encrypted with it.
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{config.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Unused (the log servers are skipped) but never the shared defaults 8793/8794.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.log_dir),
            **config.env,
        }
        return env

    # -- processes ---------------------------------------------------------------------------

    def start(
        self,
        name: str,
        argv: Sequence[str],
        ready: Callable[[], bool] | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> Component:
        """Start any command in a session of its own, output to ``logs/<name>.log``.

        ``ready`` is polled by :meth:`wait_until_healthy`. ``env`` defaults to the stack's.
        ``user``: run it as this user (PostgreSQL refuses to run as root).
        """
        if name in self.components and self.components[name].alive():
            raise ValueError(f"{name!r} is already running (pid {self.components[name].pid})")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                env=dict(env if env is not None else self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.home,
                user=user,
            )
        component = Component(name, list(argv), process, log_path, ready)
        self.components[name] = component
        return component

    def start_airflow(
        self, component: str, *args: str, name: str | None = None, ready: Callable[[], bool] | None = None
    ) -> Component:
        """``airflow <component> [args]``, e.g. ``start_airflow("celery worker", "--concurrency", "2")``.

        The api-server and the jobs (scheduler, dag-processor, triggerer) get their health check;
        ``ready`` gives one to anything else (a Celery worker: e.g. ``celery inspect ping``).
        """
        name = name or component
        argv = [str(self.config.airflow_bin), *component.split(), *args]
        if component in ("scheduler", "triggerer", "celery worker"):
            argv.append("--skip-serve-logs")
        if component == "api-server":
            ready = ready or self.api_server_healthy
        started = self.start(name, argv, ready)
        if component in JOB_TYPES:
            started.job_type = JOB_TYPES[component]
            started.ready = ready or (lambda: self.job_heartbeating(started))
        return started

    def start_components(self) -> list[Component]:
        """api-server, scheduler, dag-processor, then triggerers named triggerer, triggerer-2, ..."""
        started = [self.start_airflow("api-server"), self.start_airflow("scheduler")]
        started.append(self.start_airflow("dag-processor"))
        for n in range(1, self.config.triggerers + 1):
            if n > 1:  # one at a time, so each triggerer is paired with its own job row
                self.wait_until_healthy(names=[started[-1].name])
            started.append(self.start_airflow("triggerer", name="triggerer" if n == 1 else f"triggerer-{n}"))
        return started

    def run(self, args: Sequence[str], name: str, timeout: float = 300) -> None:
        """Run ``airflow <args>`` to completion (e.g. ``db migrate``); ComponentError with its log tail."""
        component = self.start(name, [str(self.config.airflow_bin), *args])
        try:
            returncode = component.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise component.error(f"did not finish within {timeout:.0f} s") from None
        finally:
            component.stop(grace=5)
        if returncode != 0:
            raise component.error(f"failed with exit status {returncode}")

    def migrate(self, timeout: float = 300) -> None:
        """Create or upgrade the metadata DB, and the SimpleAuthManager password file for the user."""
        self.home.mkdir(parents=True, exist_ok=True)
        passwords = Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        passwords.write_text(json.dumps({self.config.username: self.config.password}) + "\n")
        passwords.chmod(0o600)
        self.run(["db", "migrate"], "db-migrate", timeout)

    def check_running(self) -> None:
        """Raise ComponentError (with its log tail) for the first long-running component that exited."""
        for component in self.components.values():
            if component.ready is not None and not component.alive():
                raise component.error(f"exited with status {component.process.returncode}")

    def wait_until_healthy(self, timeout: float = 90, names: Sequence[str] | None = None) -> None:
        """Poll the health checks until all pass; ComponentError names the first that does not."""
        pending = [
            c for c in self.components.values() if c.ready is not None and (names is None or c.name in names)
        ]
        deadline = time.monotonic() + timeout
        while pending:
            self.check_running()
            pending = [c for c in pending if c.ready is not None and not c.ready()]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise pending[0].error(f"not healthy after {timeout:.0f} s")
            time.sleep(0.5)

    def stop(self, name: str, grace: float | None = None) -> None:
        self.components[name].stop(self.config.stop_grace if grace is None else grace)

    def stop_all(self, grace: float | None = None) -> None:
        """Stop every component: SIGTERM to all at once, then each is waited for (``grace``, default
        ``config.stop_grace``) and SIGKILLed with its descendants."""
        components = list(reversed(self.components.values()))
        for component in components:
            component.terminate()
        deadline = time.monotonic() + (self.config.stop_grace if grace is None else grace)
        for component in components:
            component.stop(max(0.0, deadline - time.monotonic()))
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> AirflowStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()

    # -- health and the metadata DB -------------------------------------------------------------

    def api_server_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/api/v2/monitor/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only SQL statement against the metadata DB (SQLAlchemy ``:name`` params)."""
        import sqlalchemy

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self.db_url)
        try:
            with self._engine.connect() as connection:
                return [tuple(row) for row in connection.execute(sqlalchemy.text(sql), params)]
        except sqlalchemy.exc.OperationalError:  # not migrated yet, or SQLite busy: not healthy now
            return []

    def job_heartbeating(self, component: Component) -> bool:
        """The component's job is running and heartbeat within HEARTBEAT_FRESH.

        The ``job`` table has no pid: a component's job is the first running job of its type that
        started after it and that no other component has claimed. Components of one type started
        together could swap jobs, so :meth:`start_components` starts triggerers one at a time.
        """
        if component.job_id is None:
            claimed = {c.job_id for c in self.components.values()}
            rows = self.query(
                "SELECT id, start_date FROM job WHERE job_type = :job_type AND state = 'running' ORDER BY id",
                job_type=component.job_type,
            )
            since = component.started_at - timedelta(seconds=1)
            fresh = [job_id for job_id, start in rows if job_id not in claimed and as_utc(start) >= since]
            if not fresh:
                return False
            component.job_id = int(fresh[0])
        rows = self.query("SELECT state, latest_heartbeat FROM job WHERE id = :id", id=component.job_id)
        oldest = datetime.now(timezone.utc) - HEARTBEAT_FRESH
        return any(state == "running" and beat and as_utc(beat) > oldest for state, beat in rows)

    def api_token(self) -> str:
        """A JWT for ``Authorization: Bearer`` on the REST API, for the configured user."""
        body = json.dumps({"username": self.config.username, "password": self.config.password}).encode()
        request = urllib.request.Request(
            f"{self.api_url}/auth/token", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            token: str = json.load(answer)["access_token"]
            return token

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """Call the REST API (``path`` under /api/v2) and decode its JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token or self.api_token()}"}
        url = f"{self.api_url}/api/v2{path}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                payload = answer.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path} answered {error.code}: {error.read()[:500]!r}") from None
        return json.loads(payload) if payload else None


def as_utc(value: Any) -> datetime:
    """A DB timestamp as an aware UTC datetime (SQLite gives text, PostgreSQL a datetime)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
