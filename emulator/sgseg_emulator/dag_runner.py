"""Run an Airflow DAG against the emulator as ``dag.test()`` does, with test timings (pytest fixture
``sendgrid_dag_runner``).

Test timings shrink both sides of a wait: the emulator runs ``EmulatorConfig.short_timings()``
(SendGrid's minutes as seconds) and, for the length of one run, the provider's own poll bounds
(``poll_floor``, ``poll_ceiling``, ``poke_interval``, ``poll_slack``, a contacts job's
``poll_interval``, ``validation_poll_interval``) and every task's ``retry_delay`` are divided by
:data:`TIME_SCALE`. The DAG file is not changed and its task objects get their values back after
the run. Airflow is imported only inside the functions that need it.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import datetime
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import EmulatorAdmin
    from .pytest_plugin import EmulatorHandle

# A minute of the provider's waiting becomes a second, as SendGrid's minutes do in the emulator.
TIME_SCALE = 60.0
# No scaled poll comes sooner than this (seconds): a wait polls a local emulator, not a busy loop.
MIN_POLL_SECONDS = 0.25
# Set to the AIRFLOW_HOME this plugin made, so an xdist worker (which inherits it) makes its own.
HOME_MARKER = "SGSEG_EMULATOR_AIRFLOW_HOME"
_WAIT_BOUNDS = ("floor", "ceiling", "interval", "slack")
# A mapped task's provider operators are built from these arguments when it runs: they become the
# ``bounds``, ``poke_interval`` and ``validation_poll_interval`` scaled on an unmapped task.
_WAIT_ARGUMENTS = (
    "poke_interval",
    "poll_floor",
    "poll_ceiling",
    "poll_slack",
    "poll_interval",
    "validation_poll_interval",
)


def isolated_airflow_environment(
    environ: Mapping[str, str], make_home: Callable[[], str], *, airflow_imported: bool
) -> dict[str, str]:
    """The variables that give Airflow a throwaway home, or ``{}`` when the user has an ``AIRFLOW_HOME``
    or Airflow is already imported (it has read its home then: a ``conftest.py`` that imports it).

    The home (from ``make_home()``) gets ``dags/`` and the marker; examples are off; the DAGs
    folder is the home's ``dags/`` and a Fernet key is made, unless the user set their own. A
    home this plugin made in a parent process (pytest-xdist's controller) counts as none: each
    process gets its own SQLite metadata DB.
    """
    home = environ.get("AIRFLOW_HOME")
    if airflow_imported or (home and environ.get(HOME_MARKER) != home):
        return {}
    home = make_home()
    (Path(home) / "dags").mkdir(parents=True, exist_ok=True)
    variables = {"AIRFLOW_HOME": home, HOME_MARKER: home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    if not environ.get("AIRFLOW__CORE__DAGS_FOLDER"):  # the user's own: their DagBag() tests read it
        variables["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(home) / "dags")
    if not environ.get("AIRFLOW__CORE__FERNET_KEY"):
        variables["AIRFLOW__CORE__FERNET_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return variables


def owns_airflow_home(environ: Mapping[str, str]) -> bool:
    """Whether ``AIRFLOW_HOME`` is the throwaway home this plugin made (its DB is ours to migrate)."""
    home = environ.get("AIRFLOW_HOME")
    return bool(home) and environ.get(HOME_MARKER) == home


def metadata_db_problem(environ: Mapping[str, str], engine: Any = None) -> str | None:
    """Why the metadata DB (``engine``: Airflow's) cannot hold a run, and what to do; ``None`` when it
    has its tables. Said before a run, instead of SQLite's "no such table" halfway through it."""
    import sqlalchemy

    if engine is None:
        from airflow import settings

        engine = settings.engine
    if sqlalchemy.inspect(engine).has_table("dag_run"):
        return None
    home = environ.get("AIRFLOW_HOME")
    if not home:
        return (
            "Airflow was imported before sgseg-emulator could give this pytest session a throwaway "
            "AIRFLOW_HOME (does a conftest.py import Airflow at module level?), so it uses "
            "~/airflow, whose metadata DB has no tables. Import Airflow inside fixtures and tests "
            "instead, or set AIRFLOW_HOME and run `airflow db migrate` there."
        )
    return f"The metadata DB of AIRFLOW_HOME={home} has no tables: run `airflow db migrate` there first."


def migrate_metadata_db() -> None:
    """Create the metadata DB's tables, as ``airflow db migrate`` does on a new DB."""
    from airflow.utils.db import initdb

    initdb()


def scaled(seconds: float, scale: float, *, floor: float = MIN_POLL_SECONDS) -> float:
    """``seconds / scale``, never below ``floor``."""
    return max(seconds / scale, floor)


@contextlib.contextmanager
def shrunk_timings(dag: Any, scale: float = TIME_SCALE) -> Iterator[None]:
    """For the ``with`` block, divide the poll bounds and retry delays of ``dag``'s tasks by ``scale``.

    A task's ``bounds`` (the provider's ``WaitBounds``), a sensor's ``poke_interval`` next to
    them, ``validation_poll_interval``, ``retry_delay`` / ``max_retry_delay`` and the backoff of
    the hook's own retries (``hook_params["retry"]``: its ``initial_wait`` and ``jitter``; a wait
    SendGrid names is not shortened); for a mapped provider task, the ``partial()`` arguments
    they are built from. Every value is put back afterwards, also when the run fails.
    """
    saved: list[tuple[Any, str, Any]] = []
    added: list[tuple[dict[str, Any], str]] = []

    def change(task: Any, name: str, value: Any) -> None:
        saved.append((task, name, getattr(task, name)))
        setattr(task, name, value)

    def change_partial(partial: dict[str, Any], name: str, value: Any) -> None:
        if name in partial:
            saved.append((partial, name, partial[name]))
        else:
            added.append((partial, name))
        partial[name] = value

    try:
        for task in dag.tasks:
            partial = getattr(task, "partial_kwargs", None)
            if isinstance(partial, dict) and _is_provider_task(task.operator_class):
                for name, value in _wait_arguments(task.operator_class, partial).items():
                    floor = 0.0 if name == "poll_slack" else MIN_POLL_SECONDS
                    change_partial(partial, name, scaled(value, scale, floor=floor))
                hook_params = _scaled_hook_params(task.operator_class, partial.get("hook_params"), scale)
                if hook_params is not None:
                    change_partial(partial, "hook_params", hook_params)
            bounds = getattr(task, "bounds", None)
            if dataclasses.is_dataclass(bounds) and all(hasattr(bounds, name) for name in _WAIT_BOUNDS):
                change(task, "bounds", _scaled_bounds(bounds, scale))
                if isinstance(getattr(task, "poke_interval", None), (int, float)):
                    change(task, "poke_interval", scaled(task.poke_interval, scale))
            hook_params = _scaled_hook_params(type(task), getattr(task, "hook_params", None), scale)
            if hook_params is not None:
                change(task, "hook_params", hook_params)
            if isinstance(getattr(task, "validation_poll_interval", None), (int, float)):
                change(task, "validation_poll_interval", scaled(task.validation_poll_interval, scale))
            for name in ("retry_delay", "max_retry_delay"):
                delay = getattr(task, name, None)
                if isinstance(delay, datetime.timedelta):
                    change(task, name, datetime.timedelta(seconds=delay.total_seconds() / scale))
        yield
    finally:
        for task, name, value in reversed(saved):
            if isinstance(task, dict):
                task[name] = value
            else:
                setattr(task, name, value)
        for partial, name in added:
            partial.pop(name, None)


def _scaled_hook_params(operator_class: Any, hook_params: Any, scale: float) -> dict[str, Any] | None:
    """``hook_params`` with the hook's retry backoff divided by ``scale`` (``None``: nothing to
    scale). A task that tries each request once (a sensor) keeps doing so unless it names a
    ``retry`` policy; any other provider task gets the hook's default policy, scaled."""
    if not _is_provider_task(operator_class):
        return None
    params = dict(hook_params or {})
    policy = params.get("retry")
    if policy is None:
        if getattr(operator_class, "single_attempt_hook", False):
            return None
        from airflow_provider_sgseg.hooks.marketing import RetryPolicy

        policy = RetryPolicy()
    if not dataclasses.is_dataclass(policy) or isinstance(policy, type):
        return None
    initial_wait, jitter = getattr(policy, "initial_wait", None), getattr(policy, "jitter", None)
    if not isinstance(initial_wait, (int, float)) or not isinstance(jitter, (int, float)):
        return None
    params["retry"] = dataclasses.replace(policy, initial_wait=initial_wait / scale, jitter=jitter / scale)
    return params


def _is_provider_task(operator_class: Any) -> bool:
    return str(getattr(operator_class, "__module__", "")).startswith("airflow_provider_sgseg.")


def _wait_arguments(operator_class: type, partial: Mapping[str, Any]) -> dict[str, float]:
    """The wait arguments (:data:`_WAIT_ARGUMENTS`) ``operator_class`` takes, as given in
    ``partial`` or else its defaults, in seconds."""
    values: dict[str, float] = {}
    for klass in operator_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, parameter in inspect.signature(init).parameters.items():
            if name in _WAIT_ARGUMENTS and name not in values:
                value = partial.get(name, parameter.default)
                if isinstance(value, datetime.timedelta):
                    value = value.total_seconds()
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    values[name] = float(value)
    return values


@contextlib.contextmanager
def kept_params(dag: Any) -> Iterator[None]:
    """Give ``dag``'s tasks their own ``params`` back after the ``with`` block.

    Airflow's in-process ``dag.test()`` sets a run's ``conf`` on the ``Param`` objects of the
    task it runs: without this, a run with ``conf={"dry_run": True}`` made every later run of
    the DAG in the session a dry run too.
    """
    saved = [(task, copy.deepcopy(task.params)) for task in dag.tasks]
    try:
        yield
    finally:
        for task, params in saved:
            task.params = params


def _scaled_bounds(bounds: Any, scale: float) -> Any:
    return dataclasses.replace(
        bounds,
        floor=scaled(bounds.floor, scale),
        ceiling=scaled(bounds.ceiling, scale),
        interval=scaled(bounds.interval, scale),
        slack=scaled(bounds.slack, scale, floor=0.0),
    )


def sync_dag_to_db(dag: Any) -> None:
    """Write ``dag`` to the metadata DB as the DAG processor would (``dag.test()`` needs it
    serialized; on Airflow 3.0 this also activates its Assets, as ``airflow dags reserialize``)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    manager = DagBundlesManager()  # type: ignore[no-untyped-call]
    manager.sync_bundles_to_db()
    names = [bundle.name for bundle in manager.get_all_dag_bundles()]
    bundle = "dags-folder" if "dags-folder" in names else names[0]
    folder = Path(dag.fileloc).parent
    if getattr(dag, "relative_fileloc", None) is None:  # what a DagBag sets when it parses the file
        dag.relative_fileloc = Path(dag.fileloc).name
    module: Any
    try:  # Airflow 3.2+
        from airflow.dag_processing import dagbag as module
    except ImportError:  # 3.0 and 3.1
        from airflow.models import dagbag as module
    bag = module.DagBag(collect_dags=False, bundle_path=folder)
    bag.bag_dag(dag)
    sync_bag_to_db = getattr(module, "sync_bag_to_db", None)
    if sync_bag_to_db is None:  # 3.0: the bag writes itself
        bag.sync_to_db(bundle, None)
    else:
        sync_bag_to_db(bag, bundle, None)


@dataclasses.dataclass(frozen=True)
class DagRunResult:
    """One finished run: ``state`` (``"success"`` or ``"failed"``), ``task_states`` by task id
    (``None`` for a task that never ran) and :meth:`xcom`."""

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str | None]

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """The XCom ``key`` that ``task_id`` pushed in this run (``None`` when it pushed none)."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        query = select(XComModel).where(
            XComModel.dag_id == self.dag_id,
            XComModel.run_id == self.run_id,
            XComModel.task_id == task_id,
            XComModel.key == key,
            XComModel.map_index == map_index,
        )
        with create_session() as session:
            row = session.scalars(query).first()
            return None if row is None else XComModel.deserialize_value(row)


@dataclasses.dataclass(frozen=True)
class SendGridDagRunner:
    """What ``sendgrid_dag_runner`` yields: :meth:`run` and the ``emulator`` (its handle: ``base_url``,
    ``api_key``, ``admin``, ``conn_env()``) that ``sendgrid_default`` points at."""

    emulator: EmulatorHandle

    @property
    def admin(self) -> EmulatorAdmin:
        """The emulator's admin client: ``seed_contacts``, ``requests``, ``add_fault``, ``sends``..."""
        return self.emulator.admin

    def run(
        self,
        dag: Any,
        *,
        conf: dict[str, Any] | None = None,
        logical_date: datetime.datetime | None = None,
        timings: bool = True,
    ) -> DagRunResult:
        """Run ``dag`` once, in this process, as ``dag.test()`` does: every task in dependency order,
        deferred tasks' triggers inline. ``conf`` is the run's ``dag_run.conf``; ``logical_date``
        defaults to now. ``timings=False`` keeps the DAG's own poll bounds and retry delays.
        Returns when the run has finished; a failed task fails the run, not this call.
        """
        sync_dag_to_db(dag)
        with kept_params(dag), shrunk_timings(dag) if timings else contextlib.nullcontext():
            kwargs: dict[str, Any] = {"run_conf": conf}
            if logical_date is not None:
                kwargs["logical_date"] = logical_date
            dag_run = dag.test(**kwargs)
        return _result(dag.dag_id, dag_run.run_id)


def _result(dag_id: str, run_id: str) -> DagRunResult:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        state = session.scalars(
            select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        ).one()
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
    return DagRunResult(
        dag_id=dag_id,
        run_id=run_id,
        state=str(state),
        task_states={task_id: None if ti_state is None else str(ti_state) for task_id, ti_state in rows},
    )
