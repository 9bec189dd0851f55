"""``sendgrid_dag_runner``'s parts: the throwaway Airflow home, the metadata DB check, the test
timings, and (one small in-process run) the DAG's params kept across runs (a user's DAG run
through it: tests/dags/test_user_dag_project.py)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from sgseg_emulator.dag_runner import (
    HOME_MARKER,
    isolated_airflow_environment,
    metadata_db_problem,
    shrunk_timings,
)

from airflow_provider_sgseg.hooks.marketing import RetryPolicy
from airflow_provider_sgseg.operators.contacts import SendGridExportContactsOperator
from airflow_provider_sgseg.operators.segments import SendGridCreateSegmentOperator
from airflow_provider_sgseg.rules.pacing import WaitBounds
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor


def test_no_airflow_home_gets_a_throwaway_one_with_its_dags_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"

    variables = isolated_airflow_environment({}, lambda: str(home), airflow_imported=False)

    assert variables["AIRFLOW_HOME"] == variables[HOME_MARKER] == str(home)
    assert variables["AIRFLOW__CORE__DAGS_FOLDER"] == str(home / "dags") and (home / "dags").is_dir()
    assert variables["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert len(variables["AIRFLOW__CORE__FERNET_KEY"]) == 44  # 32 bytes, URL-safe base64


def test_a_users_own_home_and_fernet_key_are_kept(tmp_path: Path) -> None:
    def make_home() -> str:
        raise AssertionError("no home should be made")

    assert (
        isolated_airflow_environment({"AIRFLOW_HOME": "/srv/airflow"}, make_home, airflow_imported=False)
        == {}
    )
    assert isolated_airflow_environment({}, make_home, airflow_imported=True) == {}  # too late to move it
    kept = isolated_airflow_environment(
        {"AIRFLOW__CORE__FERNET_KEY": "mine"}, lambda: str(tmp_path), airflow_imported=False
    )
    assert "AIRFLOW__CORE__FERNET_KEY" not in kept


def test_a_users_own_dags_folder_is_kept(tmp_path: Path) -> None:
    """A DAG integrity test (``DagBag()``) in the same session would otherwise read the throwaway
    home's empty folder, find no DAGs and no import errors, and pass."""
    variables = isolated_airflow_environment(
        {"AIRFLOW__CORE__DAGS_FOLDER": "/srv/project/dags"}, lambda: str(tmp_path), airflow_imported=False
    )

    assert variables["AIRFLOW_HOME"] == str(tmp_path)
    assert "AIRFLOW__CORE__DAGS_FOLDER" not in variables


def test_an_xdist_worker_does_not_share_the_controllers_home(tmp_path: Path) -> None:
    inherited = {"AIRFLOW_HOME": "/tmp/controller", HOME_MARKER: "/tmp/controller"}

    variables = isolated_airflow_environment(
        inherited, lambda: str(tmp_path / "worker"), airflow_imported=False
    )

    assert variables["AIRFLOW_HOME"] == str(tmp_path / "worker")


def test_a_metadata_db_without_tables_fails_saying_why_and_what_to_do() -> None:
    """Not SQLite's "no such table: dag_bundle" halfway through the first run."""
    import sqlalchemy

    empty = sqlalchemy.create_engine("sqlite://")

    imported_early = metadata_db_problem({}, empty)  # a conftest.py imported Airflow
    assert imported_early is not None
    assert "imported before sgseg-emulator" in imported_early
    assert "Import Airflow inside fixtures and tests" in imported_early

    own_home = metadata_db_problem({"AIRFLOW_HOME": "/srv/airflow"}, empty)
    assert own_home is not None
    assert "AIRFLOW_HOME=/srv/airflow" in own_home and "airflow db migrate" in own_home

    with empty.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE dag_run (id INTEGER)"))
    assert metadata_db_problem({"AIRFLOW_HOME": "/srv/airflow"}, empty) is None  # migrated


def _dag() -> DAG:
    with DAG("timings", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        SendGridCreateSegmentOperator(task_id="create", name="n", query_dsl="SELECT 1", retries=2)
        SendGridSegmentPopulatedSensor(task_id="wait", segment_id="x", poll_floor=120, poll_slack=30)
        SendGridExportContactsOperator(task_id="export", segment_ids=["x"], destination="/tmp/x")
    return dag


def test_test_timings_divide_the_waits_by_60_for_the_block_only() -> None:
    dag = _dag()
    create, wait, export = (dag.get_task(task_id) for task_id in ("create", "wait", "export"))
    before = (
        create.validation_poll_interval,
        wait.bounds,
        wait.poke_interval,
        export.bounds,
        create.retry_delay,
    )

    with shrunk_timings(dag):
        assert wait.bounds == WaitBounds(floor=2.0, ceiling=60.0, interval=5.0, slack=0.5)
        assert wait.poke_interval == 5.0
        assert (export.bounds.floor, export.bounds.interval, export.bounds.ceiling) == (0.25, 0.25, 5.0)
        assert create.validation_poll_interval == 0.25  # 10 s / 60, never below 0.25 s
        assert create.retry_delay == datetime.timedelta(seconds=5)  # Airflow's 300 s default

    after = (
        create.validation_poll_interval,
        wait.bounds,
        wait.poke_interval,
        export.bounds,
        create.retry_delay,
    )
    assert after == before


def test_test_timings_shorten_the_hooks_own_backoff_but_not_a_sensors_single_attempt() -> None:
    """The hook's retries of a 5xx wait 1, 2, 4, 8 s plus jitter: a fault armed for a few requests
    cost a user's seconds-long test 15 s."""
    with DAG("hook_timings", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        SendGridCreateSegmentOperator(task_id="create", name="n", query_dsl="SELECT 1")
        SendGridSegmentPopulatedSensor(task_id="wait", segment_id="x")
        SendGridSegmentPopulatedSensor(
            task_id="patient",
            segment_id="x",
            hook_params={"retry": RetryPolicy(max_attempts=3, initial_wait=6)},
        )
        SendGridExportContactsOperator.partial(task_id="export", destination="/tmp/x").expand(
            segment_ids=[["a"]]
        )
    create, wait, patient, export = (dag.get_task(t) for t in ("create", "wait", "patient", "export"))
    before = [dict(task.hook_params) for task in (create, wait, patient)] + [dict(export.partial_kwargs)]

    with shrunk_timings(dag):
        default = create.hook_params["retry"]
        assert (default.initial_wait, default.jitter) == (1 / 60, 1 / 60)  # from 1 s and 1 s
        assert (default.max_attempts, default.max_wait) == (5, 60.0)  # named waits stay as named
        assert wait.hook_params == {}  # a sensor's poke tries once: its poll loop is the retry
        given = patient.hook_params["retry"]
        assert (given.max_attempts, given.initial_wait, given.jitter) == (3, 0.1, 1 / 60)
        assert export.partial_kwargs["hook_params"]["retry"].initial_wait == 1 / 60

    after = [dict(task.hook_params) for task in (create, wait, patient)] + [dict(export.partial_kwargs)]
    assert after == before


def test_test_timings_reach_mapped_tasks() -> None:
    """A mapped task's operators are built from its ``partial()`` arguments when it runs: a mapped
    sensor kept its 60 s poll floor (a one-minute wait in a seconds-long test)."""
    with DAG("mapped_timings", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        SendGridSegmentPopulatedSensor.partial(task_id="wait", poll_floor=120).expand(segment_id=["a", "b"])
        SendGridExportContactsOperator.partial(task_id="export", destination="/tmp/x").expand(
            segment_ids=[["a"]]
        )
    wait, export = dag.get_task("wait"), dag.get_task("export")
    before = (dict(wait.partial_kwargs), dict(export.partial_kwargs))

    with shrunk_timings(dag):
        built = SendGridSegmentPopulatedSensor(task_id="w", segment_id="a", **_wait_arguments(wait))
        assert built.bounds == WaitBounds(floor=2.0, ceiling=60.0, interval=5.0, slack=0.5)
        assert built.poke_interval == 5.0
        assert export.partial_kwargs["poll_interval"] == 0.25  # 15 s / 60, never below 0.25 s
        assert wait.retry_delay == datetime.timedelta(seconds=5)

    assert (wait.partial_kwargs, export.partial_kwargs) == before


def _wait_arguments(mapped: Any) -> dict[str, Any]:
    names = ("poke_interval", "poll_floor", "poll_ceiling", "poll_slack")
    return {name: mapped.partial_kwargs[name] for name in names if name in mapped.partial_kwargs}


def test_test_timings_are_put_back_when_the_run_fails() -> None:
    dag = _dag()
    wait = dag.get_task("wait")
    bounds = wait.bounds

    with pytest.raises(RuntimeError), shrunk_timings(dag):
        raise RuntimeError("the run failed")

    assert wait.bounds == bounds


def test_a_runs_conf_does_not_stay_in_the_dags_params_for_the_next_run(
    airflow_db: Path, sendgrid_dag_runner: Any
) -> None:
    """Airflow's in-process ``dag.test()`` writes a run's conf into each task's own ``Param``: a
    dry run (``conf={"dry_run": True}``) made every later run of that DAG in the session dry too."""
    from airflow.providers.standard.operators.python import PythonOperator

    start = pendulum.datetime(2026, 1, 1, tz="UTC")
    with DAG("params_kept", schedule=None, start_date=start, params={"dry_run": False}) as dag:
        PythonOperator(task_id="read", python_callable=lambda params: params["dry_run"])

    dry = sendgrid_dag_runner.run(dag, conf={"dry_run": True})
    real = sendgrid_dag_runner.run(dag)

    assert (dry.state, real.state) == ("success", "success")
    assert dry.xcom("read") is True
    assert real.xcom("read") is False
    assert dag.get_task("read").params["dry_run"] is False


def test_a_fault_the_hook_retries_does_not_slow_a_runner_test_mapped_or_not(
    airflow_db: Path, sendgrid_dag_runner: Any
) -> None:
    from airflow_provider_sgseg.operators.segments import SendGridListSegmentsOperator

    start = pendulum.datetime(2026, 1, 1, tz="UTC")
    with DAG("hook_backoff", schedule=None, start_date=start) as dag:
        SendGridListSegmentsOperator(task_id="list")
        SendGridListSegmentsOperator.partial(task_id="mapped").expand(no_parent_list_id=[True, False])
    admin = sendgrid_dag_runner.admin
    # Four 503s, whichever tasks meet them: 1+2+4+8 s of backoff (plus jitter) at the DAG's timings.
    admin.add_fault("status", method="GET", path_prefix="/v3/marketing/segments", status=503, times=4)

    result = sendgrid_dag_runner.run(dag)

    assert result.state == "success", result.task_states
    statuses = [r["status"] for r in admin.requests(method="GET", path_prefix="/v3/marketing/segments")]
    assert statuses.count(503) == 4 and statuses.count(200) == 3  # the hooks sent again
    assert (
        dag.get_task("list").hook_params == {} and "hook_params" not in dag.get_task("mapped").partial_kwargs
    )
