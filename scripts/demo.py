"""`make demo`: the example pipeline on real Airflow, offline, in about a minute.

1. The SendGrid emulator in its own process on a loopback port (``--demo``: a manual refresh
   samples 20 s after it is accepted, so the sensor really defers), seeded with 3,000 contacts.
2. A throwaway Airflow home in .demo/airflow_home: SQLite metadata DB, LocalExecutor, and
   api-server, scheduler, dag-processor and triggerer as separate processes
   (scripts/airflow_stack.py), all on 127.0.0.1.
3. Each pipeline's first DAG is triggered through the REST API; its deferrable sensor waits in
   the triggerer, and its Asset event makes the scheduler start the next DAG by itself.
4. ``sendgrid_segment_events`` is not triggered: a watcher on a segment created at the start
   (scripts/demo_events.py) starts it when SendGrid (the emulator) takes the segment's next sample.
5. A summary: the runs, how long the sensor was deferred and what the wait cost, what SendGrid
   was asked to do, the UI's URL and login. Then every process stops, also on failure, Ctrl-C or
   SIGTERM; ``--keep`` (``make demo KEEP=1``) leaves everything running until Ctrl-C.

The ``sendgrid_default`` connection is stored in the metadata DB (with the emulator's port) and
``[core] test_connection`` is enabled, so the UI lists it and its Test button works.

A failure exits non-zero with the log tail of the failing component or task; a pipeline that does
not finish in time, with each unfinished task's state, try number and log tail and the scheduler's.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import demo_audience
import demo_events
import demo_results
from airflow_stack import AirflowStack, Component, StackConfig, as_utc, free_port, log_tail
from sgseg_emulator.client import EmulatorAdmin
from sgseg_emulator.config import DEMO_API_KEY

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / ".demo"
BIN = Path(sys.executable).parent
CONTACTS = 3000
SEGMENT_NAME = "Demo digest audience"
QUERY_DSL = "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.email LIKE '%@example.com'"
DAG_SETTINGS = {
    "SGSEG_SEGMENT_NAME": SEGMENT_NAME,
    "SGSEG_QUERY_DSL": QUERY_DSL,
    "SGSEG_TIME_ZONE": "America/Chicago",
    # The default pacing shrunk: poll at SendGrid's next_sample_update plus 1 s, at most a minute apart.
    "SGSEG_POLL_FLOOR_SECONDS": "1",
    "SGSEG_POLL_CEILING_SECONDS": "60",
    "SGSEG_POLL_SLACK_SECONDS": "1",
    "SGSEG_WAIT_TIMEOUT_SECONDS": "300",  # a run triggered again from the UI may wait 2 min
    "SGSEG_SEND_ENABLED": "true",  # the emulator receives the send
    # The results leg: the emulator's stats settle 15 s after the send; 5 s unchanged is final.
    "SGSEG_STATS_SETTLE_SECONDS": "5",
}
STARTUP_TIMEOUT = 90  # seconds for the components to get healthy and the DAGs to be parsed
PIPELINE_TIMEOUT = 210  # seconds for every pipeline to finish once triggered (results settle too)
POLL = 0.5
SEGMENTS = "/v3/marketing/segments/2.0"
SINGLE_SENDS = "/v3/marketing/singlesends"


class DemoFailure(RuntimeError):
    """A DAG run failed or did not finish; the message carries the failing task's log tail."""


@dataclass
class Pipeline:
    """A DAG the demo triggers, its deferrable task, and the DAG its Asset event starts (None: the
    DAG does everything itself, and is done when its own run succeeds)."""

    start_dag_id: str
    deferred_task_id: str
    segment_name: str  # what the pipeline's SendGrid requests are counted by
    asset_dag_id: str | None = None


# Each is triggered at once and watched together; add a pipeline here to show it too.
PIPELINES = [
    Pipeline("sendgrid_segment_refresh", "wait_until_populated", SEGMENT_NAME, "sendgrid_single_send"),
    # warehouse table -> contacts -> segment -> populated -> Single Send, plus the members' export
    Pipeline(demo_audience.DAG_ID, demo_audience.DEFERRED_TASK_ID, demo_audience.SEGMENT_NAME),
]
# Contact jobs and exports: short, but every trigger fires well after its task deferred (as in
# tests/system). A trigger firing within ~2 s of the deferral races the scheduler on Airflow
# 3.3.2 (apache/airflow#72716, #71580): the task is put up for retry and its resumption 404s.
EMULATOR_CONTACT_TIMINGS = ["--upsert-delay", "5", "--import-delay", "5", "--export-delay", "5"]
# Should a task still hit that race, its retry starts after 5 s, not Airflow's default 300 s.
RETRY_DELAY_SECONDS = 5
CONNECTION_ID = "sendgrid_default"


@dataclass
class Deferral:
    """What the demo saw of one task's deferral, polling the metadata DB."""

    first_seen: float | None = None
    last_seen: float | None = None
    triggerer_job_ids: set[int] = field(default_factory=set)

    def describe(self, triggerers: dict[int, str]) -> str:
        """E.g. "deferred 8 s in triggerer (job 2)"; ``triggerers`` names the components by job id."""
        if self.first_seen is None or self.last_seen is None:
            return "never seen deferred"
        held_by = ", ".join(
            f"{triggerers.get(job, 'triggerer')} (job {job})" for job in sorted(self.triggerer_job_ids)
        )
        return f"deferred {self.last_seen - self.first_seen:.0f} s in {held_by or 'the triggerer'}"


@dataclass
class Observed:
    """One pipeline's runs as the demo watched them."""

    pipeline: Pipeline
    start_run_id: str
    deferral: Deferral = field(default_factory=Deferral)
    asset_run_id: str | None = None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_termination_signals()
    home = fresh_airflow_home()
    emulator_port = free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    # Stored in the metadata DB (not an env var) so Admin -> Connections lists it and its Test
    # button works; the port is stored too: Airflow 3.3.0-3.3.2's button refuses a connection without.
    connection = {
        "connection_id": CONNECTION_ID,
        "conn_type": "sendgrid_marketing",
        "host": emulator_url,
        "port": emulator_port,
        "password": DEMO_API_KEY,
    }
    config = StackConfig(
        home=home,
        dags_folder=REPO / "dags",
        paused_at_creation=False,  # the refresh DAG has no schedule: nothing runs until triggered
        parallelism=4,
        stop_grace=5,  # a throwaway home: no need to wait long for a clean exit
        env={
            **DAG_SETTINGS,
            **demo_audience.dag_settings(home / "warehouse.db", home / "audience_export"),
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": str(RETRY_DELAY_SECONDS),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the UI's Test button
        },
        airflow_bin=BIN / "airflow",
    )
    admin = EmulatorAdmin(emulator_url, DEMO_API_KEY)
    try:
        with AirflowStack(config) as stack:
            step(f"Emulator at {emulator_url} (--demo timings); Airflow home {shown(home)}")
            emulator_argv = [
                *(sys.executable, "-m", "sgseg_emulator", "--port", str(emulator_port), "--demo"),
                *EMULATOR_CONTACT_TIMINGS,
            ]
            stack.start("emulator", emulator_argv, ready=lambda: answers(admin))
            stack.migrate()
            stack.wait_until_healthy(STARTUP_TIMEOUT, names=["emulator"])
            admin.seed_contacts(demo_contacts(CONTACTS))
            warehouse_rows = demo_audience.WAREHOUSE_ROWS
            demo_audience.build_warehouse(home / "warehouse.db", warehouse_rows)
            step(f"Warehouse: a SQLite table of {warehouse_rows} customers for {demo_audience.DAG_ID}")
            watched = demo_events.create_watched_segment(emulator_url, DEMO_API_KEY, QUERY_DSL)
            stack.env.update(demo_events.dag_settings(watched))
            step(f"Segment {watched} created; {demo_events.DAG_ID} runs when its watcher sees a new sample")

            step("Starting api-server, scheduler, dag-processor, triggerer (LocalExecutor, SQLite)")
            stack.start_components()
            stack.wait_until_healthy(STARTUP_TIMEOUT)
            token = stack.api_token()
            wait_until_parsed(stack, token, dag_ids_of(PIPELINES) | {demo_events.DAG_ID})
            stack.api("POST", "/connections", connection, token)

            observed = []
            for pipeline in PIPELINES:
                follows = (
                    f"; {pipeline.asset_dag_id} waits for its Asset event" if pipeline.asset_dag_id else ""
                )
                step(f"Triggering {pipeline.start_dag_id}{follows}")
                run = stack.api(
                    "POST", f"/dags/{pipeline.start_dag_id}/dagRuns", {"logical_date": None}, token
                )
                observed.append(Observed(pipeline, run["dag_run_id"]))
            watch(stack, observed)
            event_run = watch_segment_events(stack)
            step("Every pipeline finished")
            print()
            print("\n".join(summary(stack, admin, observed, keep=args.keep, event_run=event_run)))
            if args.keep:
                keep_running(stack)
    except RuntimeError as error:  # ComponentError, DemoFailure, an API call Airflow refused
        print(f"\nmake demo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        step("Interrupted; every process stopped")
        return 130
    finally:
        admin.close()
    step("Done; every process stopped")
    return 0


def dag_ids_of(pipelines: Sequence[Pipeline]) -> set[str]:
    return {p.start_dag_id for p in pipelines} | {p.asset_dag_id for p in pipelines if p.asset_dag_id}


def finished(stack: AirflowStack, seen: Observed) -> bool:
    """The pipeline's last DAG run has succeeded (the Asset-triggered one, if it has one)."""
    if seen.pipeline.asset_dag_id is None:
        return run_state(stack, seen.pipeline.start_dag_id, seen.start_run_id) == "success"
    return bool(
        seen.asset_run_id and run_state(stack, seen.pipeline.asset_dag_id, seen.asset_run_id) == "success"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="demo.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave everything running until Ctrl-C")
    return parser.parse_args(argv)


def exit_on_termination_signals() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C: the ``finally`` blocks stop every process.

    Every component runs in a session of its own; killed outright, this driver would leave them
    running, re-parented to PID 1.
    """

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, leave)
    # A shell without job control starts background commands with SIGINT ignored, and Python then
    # keeps it ignored: Ctrl-C (or a test's SIGINT) must still stop the demo.
    signal.signal(signal.SIGINT, signal.default_int_handler)


STARTED = time.monotonic()


def step(text: str) -> None:
    print(f"==> [{time.monotonic() - STARTED:3.0f} s] {text}", flush=True)


def shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def fresh_airflow_home() -> Path:
    home = DEMO_DIR / "airflow_home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    return home


def demo_contacts(count: int) -> list[dict[str, Any]]:
    """Two out of three contacts match the demo segment (an @example.com address)."""
    domains = ("example.com", "example.com", "example.org")
    return [
        {"email": f"reader{n}@{domains[n % 3]}", "first_name": f"Reader{n}", "country": "US"}
        for n in range(count)
    ]


def answers(admin: EmulatorAdmin) -> bool:
    try:
        admin.now()
    except Exception:  # not listening yet
        return False
    return True


def wait_until_parsed(stack: AirflowStack, token: str, dag_ids: set[str]) -> None:
    """Until the dag-processor has stored every DAG (the REST API knows it) without import errors."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        stack.check_running()
        errors = stack.api("GET", "/importErrors", token=token)["import_errors"]
        if errors:
            raise DemoFailure("the dag-processor could not import a DAG file:\n" + errors[0]["stack_trace"])
        known = {dag["dag_id"] for dag in stack.api("GET", "/dags?limit=100", token=token)["dags"]}
        if dag_ids <= known:
            return
        if time.monotonic() > deadline:
            raise stack.components["dag-processor"].error(f"did not parse {sorted(dag_ids - known)} in time")
        time.sleep(POLL)


def watch(stack: AirflowStack, observed: list[Observed]) -> None:
    """Poll the metadata DB until every pipeline's Asset-triggered run has succeeded.

    Records, for each deferrable task, when it was seen deferred and which triggerer ran its
    trigger. A failed run raises DemoFailure with the failed task's log tail.
    """
    deadline = time.monotonic() + PIPELINE_TIMEOUT
    while True:
        stack.check_running()
        now = time.monotonic()
        for seen in observed:
            record_deferral(stack, seen, now)
            check_not_failed(stack, seen.pipeline.start_dag_id, seen.start_run_id)
            if seen.pipeline.asset_dag_id is None:
                continue
            seen.asset_run_id = seen.asset_run_id or asset_triggered_run(stack, seen.pipeline.asset_dag_id)
            if seen.asset_run_id:
                check_not_failed(stack, seen.pipeline.asset_dag_id, seen.asset_run_id)
        if all(finished(stack, seen) for seen in observed):
            return
        if now > deadline:
            raise DemoFailure(
                f"the pipelines did not finish within {PIPELINE_TIMEOUT:.0f} s: {describe(stack, observed)}\n"
                + unfinished_tasks(stack, observed)
            )
        time.sleep(POLL)


def record_deferral(stack: AirflowStack, seen: Observed, now: float) -> None:
    rows = stack.query(
        "SELECT ti.state, t.triggerer_id FROM task_instance ti LEFT JOIN trigger t ON t.id = ti.trigger_id "
        "WHERE ti.dag_id = :dag_id AND ti.run_id = :run_id AND ti.task_id = :task_id",
        dag_id=seen.pipeline.start_dag_id,
        run_id=seen.start_run_id,
        task_id=seen.pipeline.deferred_task_id,
    )
    for state, triggerer_id in rows:
        if state == "deferred":
            deferral = seen.deferral
            deferral.first_seen = deferral.first_seen or now
            deferral.last_seen = now
            if triggerer_id is not None:
                deferral.triggerer_job_ids.add(int(triggerer_id))


def run_state(stack: AirflowStack, dag_id: str, run_id: str) -> str | None:
    rows = stack.query(
        "SELECT state FROM dag_run WHERE dag_id = :dag_id AND run_id = :run_id", dag_id=dag_id, run_id=run_id
    )
    return str(rows[0][0]) if rows else None


def asset_triggered_run(stack: AirflowStack, dag_id: str) -> str | None:
    rows = stack.query(
        "SELECT run_id FROM dag_run WHERE dag_id = :dag_id AND run_type = 'asset_triggered' ORDER BY id",
        dag_id=dag_id,
    )
    return str(rows[0][0]) if rows else None


def check_not_failed(stack: AirflowStack, dag_id: str, run_id: str) -> None:
    """DemoFailure with the log tail of the failed task when the run has failed."""
    if run_state(stack, dag_id, run_id) != "failed":
        return
    failed = stack.query(
        "SELECT task_id FROM task_instance WHERE dag_id = :dag_id AND run_id = :run_id AND state = 'failed'",
        dag_id=dag_id,
        run_id=run_id,
    )
    task_id = str(failed[0][0]) if failed else "?"
    raise DemoFailure(
        f"DAG run {dag_id} {run_id} failed at task {task_id}{task_log(stack, dag_id, run_id, task_id)}"
    )


def task_log(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> str:
    """ "; full log: <path>" and the readable tail of the task's newest log file ("" if none yet)."""
    # The newest written: of the last try, its trigger's log while deferred.
    logs = sorted(
        stack.log_dir.glob(f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/*.log"),
        key=lambda path: path.stat().st_mtime,
    )
    if not logs:
        return ""
    tail = "\n".join(readable(line) for line in log_tail(logs[-1], 12).splitlines())
    return f"; full log: {logs[-1]}\n{tail}"


def unfinished_tasks(stack: AirflowStack, observed: list[Observed]) -> str:
    """Each started run's tasks that are not done, with state, try number and log tail, then the
    scheduler log's tail (where Airflow says why it retried or stopped scheduling a task)."""
    runs = [(seen.pipeline.start_dag_id, seen.start_run_id) for seen in observed]
    runs += [
        (s.pipeline.asset_dag_id, s.asset_run_id)
        for s in observed
        if s.pipeline.asset_dag_id and s.asset_run_id
    ]
    lines = []
    for dag_id, run_id in runs:
        rows = stack.query(
            "SELECT task_id, state, try_number FROM task_instance "
            "WHERE dag_id = :dag_id AND run_id = :run_id "
            "AND (state IS NULL OR state NOT IN ('success', 'skipped')) ORDER BY task_id",
            dag_id=dag_id,
            run_id=run_id,
        )
        for task_id, state, try_number in rows:
            lines.append(
                f"task {dag_id}.{task_id} {state or 'not scheduled'} (try {try_number})"
                + task_log(stack, dag_id, run_id, str(task_id))
            )
    scheduler = stack.components.get("scheduler")
    if scheduler is not None:
        lines.append(
            f"--- last lines of scheduler; full log: {scheduler.log_path} ---\n{scheduler_tail(scheduler)}"
        )
    return "\n".join(lines)


# With LocalExecutor the scheduler's log also holds each task's output: left out of its tail.
TASK_OUTPUT = re.compile(r"\[(task|supervisor)\]|\[airflow\.task\.")


def scheduler_tail(scheduler: Component, lines: int = 20) -> str:
    own = [line for line in scheduler.tail(2000).splitlines() if not TASK_OUTPUT.search(line)]
    return "\n".join(own[-lines:])


def readable(line: str) -> str:
    """A task log line (JSON in Airflow 3) as "time level event", plus each exception's type and text."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    text = f"{record.get('timestamp', '')} {record.get('level', '')} {record.get('event', '')}"
    for error in record.get("error_detail") or []:
        text += f"\n    {error.get('exc_type')}: {error.get('exc_value')}"
    return text


def describe(stack: AirflowStack, observed: list[Observed]) -> str:
    states = []
    for seen in observed:
        states.append(
            f"{seen.pipeline.start_dag_id} {run_state(stack, seen.pipeline.start_dag_id, seen.start_run_id)}"
        )
        if seen.pipeline.asset_dag_id is None:
            continue
        asset_state = (
            run_state(stack, seen.pipeline.asset_dag_id, seen.asset_run_id)
            if seen.asset_run_id
            else "not started"
        )
        states.append(f"{seen.pipeline.asset_dag_id} {asset_state}")
    return ", ".join(states)


def keep_running(stack: AirflowStack) -> None:
    step("Everything keeps running: open the UI above. Ctrl-C stops every process.")
    try:
        while True:
            stack.check_running()
            time.sleep(1)
    except KeyboardInterrupt:
        print()


# -- the summary ----------------------------------------------------------------------------------


def run_seconds(stack: AirflowStack, dag_id: str, run_id: str | None) -> float:
    rows = stack.query(
        "SELECT start_date, end_date FROM dag_run WHERE dag_id = :dag_id AND run_id = :run_id",
        dag_id=dag_id,
        run_id=run_id,
    )
    if not rows or rows[0][0] is None or rows[0][1] is None:
        return 0.0
    return (as_utc(rows[0][1]) - as_utc(rows[0][0])).total_seconds()


def asset_event(stack: AirflowStack, dag_id: str, run_id: str, uri_prefix: str = "") -> dict[str, Any]:
    """The newest Asset event of the run (of an Asset whose URI starts with ``uri_prefix``)."""
    rows = stack.query(
        "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
        "WHERE e.source_dag_id = :dag_id AND e.source_run_id = :run_id AND a.uri LIKE :uris "
        "ORDER BY e.id DESC",
        dag_id=dag_id,
        run_id=run_id,
        uris=f"{uri_prefix}%",
    )
    if not rows:
        raise DemoFailure(f"{dag_id} {run_id} emitted no Asset event")
    extra = rows[0][0]
    return dict(json.loads(extra) if isinstance(extra, str) else extra)


def xcom(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    rows = stack.query(
        "SELECT value FROM xcom WHERE dag_id = :dag_id AND run_id = :run_id AND task_id = :task_id "
        "AND key = 'return_value'",
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
    )
    if not rows:
        raise DemoFailure(f"{dag_id} {run_id} {task_id} returned no XCom")
    value = rows[0][0]
    return dict(json.loads(value) if isinstance(value, str | bytes) else value)


def plural(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def sendgrid_work(
    requests: list[dict[str, Any]], deliveries: list[dict[str, Any]], pipeline: Pipeline, segment_id: str
) -> str:
    """What the pipeline asked SendGrid to do, e.g. "1 segment created, 1 refresh, 1 Single Send
    scheduled: sent to 2000 (triggered) recipients"; counted by its segment's name and id."""
    created = sum(
        1
        for r in requests
        if r["method"] == "POST"
        and r["path"] == SEGMENTS
        and (r.get("json") or {}).get("name") == pipeline.segment_name
    )
    refreshed = sum(
        1 for r in requests if r["method"] == "POST" and r["path"] == f"{SEGMENTS}/refresh/{segment_id}"
    )
    # Single Sends to the segment, by name: a delivery (schedule request) carries its Single Send's name.
    names = {
        (r.get("json") or {}).get("name")
        for r in requests
        if r["method"] == "POST" and r["path"] == SINGLE_SENDS and segment_id in json.dumps(r.get("json"))
    }
    sent = [d for d in deliveries if d["name"] in names and d["status"] != "cancelled"]
    recipients = ", ".join(f"{d['recipient_count']} ({d['status']})" for d in sent) or "nobody"
    return (
        f"{plural(created, 'segment')} created, {plural(refreshed, 'refresh', 'refreshes')}, "
        f"{plural(len(sent), 'Single Send')} scheduled: sent to {recipients} recipients"
    )


def wait_cost(requests: list[dict[str, Any]], segment_id: str) -> int:
    """GETs of the segment after its refresh was accepted and before a Single Send to it was created."""
    after_refresh = False
    reads = 0
    for request in requests:
        if request["method"] == "POST" and request["path"] == f"{SEGMENTS}/refresh/{segment_id}":
            after_refresh, reads = True, 0
        elif request["path"] == SINGLE_SENDS and segment_id in json.dumps(request.get("json")):
            break
        elif after_refresh and request["method"] == "GET" and request["path"] == f"{SEGMENTS}/{segment_id}":
            reads += 1
    return reads


def watch_segment_events(stack: AirflowStack) -> str:
    """The run id of the watcher-started run, once it succeeded (the segment's next sample comes
    about two minutes after it was created, at the demo's timings)."""
    dag_id = demo_events.DAG_ID
    run_id = demo_events.wait_for_run(
        lambda: asset_triggered_run(stack, dag_id),
        lambda run: run_state(stack, dag_id, run),
        lambda run: check_not_failed(stack, dag_id, run),
        PIPELINE_TIMEOUT,
    )
    if run_id is None:
        raise DemoFailure(f"no run of {dag_id} succeeded within {PIPELINE_TIMEOUT:.0f} s of the others")
    return run_id


def summary(
    stack: AirflowStack, admin: EmulatorAdmin, observed: list[Observed], keep: bool, event_run: str
) -> list[str]:
    requests = admin.requests(path_prefix="/v3/")
    deliveries = admin.sends()
    triggerers = {c.job_id: c.name for c in stack.components.values() if c.job_id is not None}
    lines = []
    for seen in observed:
        pipeline, deferral = seen.pipeline, seen.deferral
        event = asset_event(stack, pipeline.start_dag_id, seen.start_run_id, "x-sendgrid://segments/")
        segment_id = str(event.get("segment_id", ""))
        start_seconds = run_seconds(stack, pipeline.start_dag_id, seen.start_run_id)
        # A segment wait (the sensor's event names its segment) is priced in requests.
        cost = (
            f"; the wait cost {wait_cost(requests, event['segment_id'])} requests"
            if "segment_id" in event
            else ""
        )
        shown_event = (
            f"segment {event['segment_id']}: {event['contacts_count']} contacts"
            if {"segment_id", "contacts_count"} <= event.keys()
            else json.dumps(event)
        )
        lines += [
            f"{pipeline.start_dag_id:<26} success in {start_seconds:.0f} s: {seen.start_run_id}",
            f"  {pipeline.deferred_task_id:<24} {deferral.describe(triggerers)}{cost}",
            f"  Asset event              {shown_event}",
            f"  SendGrid                 {sendgrid_work(requests, deliveries, pipeline, segment_id)}",
        ]
        if pipeline.asset_dag_id is not None:
            asset_seconds = run_seconds(stack, pipeline.asset_dag_id, seen.asset_run_id)
            lines.append(f"{pipeline.asset_dag_id:<26} success in {asset_seconds:.0f} s: {seen.asset_run_id}")
            if pipeline.asset_dag_id == demo_results.DAG_ID and seen.asset_run_id:
                landed = xcom(stack, pipeline.asset_dag_id, seen.asset_run_id, demo_results.TASK_ID)
                lines += [
                    f"  {line}"
                    for line in demo_results.summary_lines(landed, stack.config.home / "warehouse.db")
                ]
        if pipeline.start_dag_id == demo_audience.DAG_ID:
            sync = xcom(stack, pipeline.start_dag_id, seen.start_run_id, "sync_contacts")
            export = asset_event(stack, pipeline.start_dag_id, seen.start_run_id, "x-sendgrid://exports/")
            lines += [f"  {line}" for line in demo_audience.summary_lines(sync, export)]
    event = xcom(stack, demo_events.DAG_ID, event_run, demo_events.FIRST_TASK_ID)
    lines += demo_events.summary_lines(event_run, run_seconds(stack, demo_events.DAG_ID, event_run), event)
    ui = "" if keep else " (stopped at the end; make demo KEEP=1 keeps it)"
    return [
        *lines,
        f"SendGrid (emulator)        {len(requests)} API requests in all",
        f"Airflow UI                 {stack.api_url}{ui}",
        f"  log in as                {stack.config.username} / {stack.config.password}",
        f"  connection               {CONNECTION_ID}: Admin -> Connections, Test checks the API key",
        f"Logs                       {shown(stack.log_dir)}/",
    ]


if __name__ == "__main__":
    sys.exit(main())
