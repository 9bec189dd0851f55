"""The production shape, started once per session: PostgreSQL metadata DB, CeleryExecutor on Redis,
a Celery worker with concurrency 2, two triggerers, api-server, scheduler and dag-processor as
separate processes, and the emulator standing in for SendGrid. The timings the kill tests wait on
(task heartbeat timeout, triggerer health check) are shortened.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

from airflow_stack import AirflowStack, Component, StackConfig, free_port  # noqa: E402
from services import (  # noqa: E402
    create_database,
    kill_group,
    start_emulator,
    start_postgres,
    start_redis,
    wait_for,
)
from sgseg_emulator.client import EmulatorAdmin  # noqa: E402

BIN = Path(sys.executable).parent
SYSTEM_DAGS = Path(__file__).resolve().parent / "dags"
SEGMENTS = "/v3/marketing/segments/2.0"

# The example DAGs' settings, identical for every component (each task re-parses its DAG file).
EXAMPLE_SETTINGS = {
    "SGSEG_SEGMENT_NAME": "E2E digest audience",
    "SGSEG_SEND_ENABLED": "true",
    "SGSEG_TIME_ZONE": "America/Chicago",
    "SGSEG_POLL_FLOOR_SECONDS": "1",
    "SGSEG_POLL_CEILING_SECONDS": "5",
    "SGSEG_POLL_SLACK_SECONDS": "0.5",
    "SGSEG_WAIT_TIMEOUT_SECONDS": "300",
    # The Single Send DAG's results leg (issue 25): the emulator's stats settle 20 s after a send.
    "SGSEG_STATS_SETTLE_SECONDS": "3",
    # The audience DAG (sendgrid_audience_pipeline); its warehouse connection is set in System.
    "SGSEG_AUDIENCE_SEGMENT_NAME": "E2E warehouse audience",
    "SGSEG_AUDIENCE_QUERY_DSL": (
        "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.country = 'NL'"
    ),
    "SGSEG_JOB_POLL_SECONDS": "1",
}
WAREHOUSE_DB = "warehouse"  # the audience DAG's warehouse: a database of the metadata DB's server

# Real clock with SendGrid's minutes as seconds, except that a new segment's first sample and a
# refresh's sample land 25 s later: long enough for a sensor to defer, and for a triggerer to be
# killed while it holds the wait. The refresh quotas are opened up so the tests can share one
# emulator; each test counts the requests for its own segments.
EMULATOR_ARGS = [
    "--short-timings", "--contacts-populate-delay", "25", "--refresh-delay", "25",
    "--refresh-min-spacing", "0", "--refreshes-per-segment-per-day", "100",
    "--refreshes-per-account-per-day", "1000",
    # Contacts jobs that last long enough to see the upsert and export tasks deferred.
    "--upsert-delay", "5", "--export-delay", "5",
]  # fmt: skip

CONTACTS = 300
# The watched segment's members: addresses no other test's segment counts.
WATCHED_DOMAIN = "watched.example.net"
WATCHED_QUERY_DSL = (
    f"SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.email LIKE '%@{WATCHED_DOMAIN}'"
)
TASK_HEARTBEAT_TIMEOUT = 20  # seconds without a task heartbeat before the scheduler fails it
TRIGGERER_HEALTH_CHECK_THRESHOLD = 8  # seconds of silence before a triggerer's triggers move on

SHORT_TIMINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
    "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",  # the example DAGs' retries keep the default delay
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_CHECK_THRESHOLD),
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    # Parse each file once, not every 30 s: the CPU is shared.
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
}


@dataclass
class Deferral:
    """What the metadata DB showed of one task while it was watched."""

    seen: bool = False
    seconds: float = 0.0  # how long it was seen deferred
    triggerer_ids: list[int] = field(default_factory=list)  # triggerer jobs seen holding its trigger
    states: list[str] = field(default_factory=list)  # distinct states, in the order seen


class System:
    """The running stack, the emulator's admin client, and helpers the tests share."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg_port, redis_port = free_port(), free_port()
        db_url = f"postgresql+psycopg2://airflow@127.0.0.1:{self.pg_port}/airflow"
        dags = root / "dags"
        dags.mkdir()
        for source in [*sorted((REPO / "dags").glob("*.py")), *sorted(SYSTEM_DAGS.glob("*.py"))]:
            shutil.copy(source, dags / source.name)
        self.export_dir = root / "exports"
        warehouse = {
            "conn_type": "postgres", "host": "127.0.0.1", "port": self.pg_port, "login": "airflow",
            "schema": WAREHOUSE_DB,
        }  # fmt: skip
        self.emulator_url = ""
        self.api_key = ""
        self.airflow = AirflowStack(
            StackConfig(
                home=root / "airflow_home",
                dags_folder=dags,
                db_url=db_url,
                executor="CeleryExecutor",
                triggerers=2,
                parallelism=32,
                env={
                    "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
                    "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://airflow@127.0.0.1:{self.pg_port}/airflow",
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                    "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                    **SHORT_TIMINGS,
                    **EXAMPLE_SETTINGS,
                    "AIRFLOW_CONN_SGSEG_WAREHOUSE": json.dumps(warehouse),
                    "SGSEG_EXPORT_DIR": str(self.export_dir),
                },
                airflow_bin=BIN / "airflow",
            )
        )
        self.redis_port = redis_port
        self.admin: EmulatorAdmin | None = None
        self.workers = 0

    @property
    def logs(self) -> Path:
        return self.airflow.log_dir

    def start(self) -> None:
        stack = self.airflow
        stack.home.mkdir(parents=True)
        stack.log_dir.mkdir()
        self.root.chmod(0o755)  # PostgreSQL runs as its own user under root
        start_postgres(stack, self.root / "postgres", self.pg_port)
        # The warehouse database exists from the start: the Single Send DAG's results leg lands there
        # whichever test runs first (the audience tests fill its customers table themselves).
        create_database(self.pg_port, WAREHOUSE_DB)
        start_redis(stack, self.root / "redis", self.redis_port)
        _, self.emulator_url, self.api_key = start_emulator(
            stack, [str(BIN / "sgseg-emulator"), *EMULATOR_ARGS]
        )
        self.admin = EmulatorAdmin(self.emulator_url, self.api_key)
        # Every test's segment (any @example.com address) counts these.
        self.admin.seed_contacts([{"email": f"reader{n}@example.com"} for n in range(CONTACTS)])
        connection = {"conn_type": "sendgrid_marketing", "host": self.emulator_url, "password": self.api_key}
        stack.env["AIRFLOW_CONN_SENDGRID_DEFAULT"] = json.dumps(connection)
        # The segment tests/system/test_segment_watchers.py watches: its DAG file reads the id at parse time.
        watched = self.admin_post(SEGMENTS, {"name": "E2E watched segment", "query_dsl": WATCHED_QUERY_DSL})
        stack.env["SGSEG_E2E_WATCHED_SEGMENT_ID"] = watched["id"]
        stack.migrate()
        stack.start_components()
        self.start_worker()
        stack.wait_until_healthy(timeout=240)

    def admin_post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to the emulator's SendGrid API (as a SendGrid client would)."""
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"}
        answer = httpx.post(self.emulator_url + path, json=dict(body), headers=headers, timeout=30)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def start_worker(self) -> Component:
        self.workers += 1
        return self.airflow.start_airflow(
            "celery worker", "--concurrency", "2", "--without-gossip", "--without-mingle",
            "--celery-hostname", f"e2e-worker-{self.workers}@%h", name=f"celery-worker-{self.workers}",
        )  # fmt: skip

    @property
    def worker(self) -> Component:
        return self.airflow.components[f"celery-worker-{self.workers}"]

    def triggerers(self) -> list[Component]:
        """The triggerers the stack expects up (one a test killed is not among them)."""
        return [
            c
            for c in self.airflow.components.values()
            if c.job_type == "TriggererJob" and c.ready is not None
        ]

    def ensure_triggerers(self, count: int = 2) -> list[Component]:
        """Start triggerers until ``count`` are up: a test before may have killed one."""
        while len(self.triggerers()) < count:
            name = f"triggerer-{len(self.airflow.components) + 1}"
            self.airflow.start_airflow("triggerer", name=name)
            self.airflow.wait_until_healthy(names=[name], timeout=240)
        return self.triggerers()

    # --- DAG runs --------------------------------------------------------------------------

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has serialized ``dag_id``."""
        sql = "SELECT 1 FROM serialized_dag WHERE dag_id = :dag_id"

        def parsed() -> bool:
            errors = self.airflow.query("SELECT filename, stacktrace FROM import_error")
            assert not errors, f"the dag-processor could not import a DAG file: {errors}"
            return bool(self.airflow.query(sql, dag_id=dag_id))

        wait_for(f"DAG {dag_id} to be parsed", parsed, timeout)

    def unpause(self, dag_id: str) -> None:
        self.wait_for_dag(dag_id)
        self.airflow.run(["dags", "unpause", dag_id], f"unpause-{dag_id}")

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Unpause and trigger ``dag_id``; returns the run id."""
        self.unpause(dag_id)
        run_id = f"e2e__{dag_id}__{int(time.time() * 1000)}"
        args = ["dags", "trigger", dag_id, "--run-id", run_id]
        if conf is not None:
            args += ["--conf", json.dumps(conf)]
        self.airflow.run(args, f"trigger-{run_id}")
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        sql = "SELECT state FROM dag_run WHERE dag_id = :dag_id AND run_id = :run_id"
        found = self.airflow.query(sql, dag_id=dag_id, run_id=run_id)
        return str(found[0][0]) if found else None

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        def finished() -> str | None:
            self.airflow.check_running()
            state = self.run_state(dag_id, run_id)
            return state if state in ("success", "failed") else None

        return wait_for(f"{dag_id} run {run_id} to finish", finished, timeout, interval=1)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, tuple[str | None, int]]:
        """``task_id`` -> (state, try_number) for every task instance of the run."""
        sql = (
            "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = :dag_id AND run_id = :run_id"
        )
        return {
            task: (state, tries)
            for task, state, tries in self.airflow.query(sql, dag_id=dag_id, run_id=run_id)
        }

    def start_example_refresh_run(self, dag_id: str) -> str:
        """A run of an example DAG: the one its schedule creates on unpausing, else a triggered one."""
        self.wait_for_dag(dag_id)
        summary = self.airflow.query("SELECT timetable_summary FROM dag WHERE dag_id = :d", d=dag_id)
        if not summary or summary[0][0] in (None, "None"):
            return self.trigger(dag_id)
        self.unpause(dag_id)
        sql = "SELECT run_id FROM dag_run WHERE dag_id = :d ORDER BY id"
        found = wait_for(f"the scheduler to start {dag_id}", lambda: self.airflow.query(sql, d=dag_id), 60)
        return str(found[0][0])

    def watch_deferral(self, dag_id: str, run_id: str, task_id: str, timeout: float) -> Deferral:
        """Poll the task instance until it finishes; record whether, how long and where it was deferred."""
        sql = (
            "SELECT ti.state, t.triggerer_id FROM task_instance ti "
            "LEFT JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE ti.dag_id = :dag_id AND ti.run_id = :run_id AND ti.task_id = :task_id"
        )
        seen = Deferral()
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            self.airflow.check_running()
            found = self.airflow.query(sql, dag_id=dag_id, run_id=run_id, task_id=task_id)
            now = time.monotonic()
            state, triggerer = found[0] if found else (None, None)
            if state and state not in seen.states:
                seen.states.append(state)
            if state == "deferred":
                seen.seen = True
                seen.seconds += now - last
                if triggerer is not None and triggerer not in seen.triggerer_ids:
                    seen.triggerer_ids.append(triggerer)
            if state in ("success", "failed", "upstream_failed", "skipped"):
                return seen
            last = now
            time.sleep(0.25)
        raise AssertionError(f"{dag_id}.{task_id} did not finish within {timeout:.0f} s: {seen}")

    def trigger_holder(self, dag_id: str, run_id: str, task_id: str) -> int | None:
        """The triggerer job id holding the deferred task's trigger, once one does."""
        sql = (
            "SELECT t.triggerer_id FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE ti.dag_id = :dag_id AND ti.run_id = :run_id AND ti.task_id = :task_id "
            "AND ti.state = 'deferred'"
        )
        found = self.airflow.query(sql, dag_id=dag_id, run_id=run_id, task_id=task_id)
        return int(found[0][0]) if found and found[0][0] is not None else None

    def trigger_log_count(self, dag_id: str, run_id: str, task_id: str, text: str) -> dict[int, int]:
        """Triggerer job id -> how often ``text`` occurs in its log of the task's trigger.

        Each triggerer writes the trigger's log to ``attempt=N.log.trigger.<job id>.log``.
        """
        folder = self.logs / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        counts = {}
        for path in folder.glob("*.log.trigger.*.log"):
            job_id = int(path.name.rsplit(".", 2)[-2])
            counts[job_id] = path.read_text(errors="replace").count(text)
        return {job_id: count for job_id, count in counts.items() if count}

    def kill(self, component: Component) -> None:
        """``kill -9`` the component and its children; the stack no longer expects it to be up."""
        component.ready = None
        kill_group(component)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        sql = (
            "SELECT value FROM xcom WHERE dag_id = :dag_id AND run_id = :run_id AND task_id = :task_id "
            "AND key = :key"
        )
        found = self.airflow.query(sql, dag_id=dag_id, run_id=run_id, task_id=task_id, key=key)
        assert found, f"no XCom {key!r} from {dag_id}.{task_id} in {run_id}"
        return found[0][0]

    def wait_gets(self, segment_id: str) -> int:
        """GETs of the segment after its (single) refresh POST: what the wait cost.

        The emulator logs times to the second; the sensor's first look comes seconds after the
        refresh task ended, so "later than the POST's second" leaves out only the refresh's own.
        """
        (refresh,) = self.requests("POST", f"{SEGMENTS}/refresh/{segment_id}")
        gets = self.requests("GET", f"{SEGMENTS}/{segment_id}")
        return sum(1 for get in gets if get["time"] > refresh["time"])

    def requests(self, method: str, path_prefix: str) -> list[dict[str, Any]]:
        assert self.admin is not None
        return self.admin.requests(method=method, path_prefix=path_prefix)


@contextlib.contextmanager
def warehouse(system: System, database: str = WAREHOUSE_DB) -> Iterator[Any]:
    """A cursor (autocommit) on a database of the stack's PostgreSQL server: by default the
    examples' warehouse, where the audience DAG reads and the Single Send DAG's results land."""
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=system.pg_port, user="airflow", dbname=database)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()
