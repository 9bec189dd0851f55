"""Benchmark 9: a user's own DAG test through ``sendgrid_dag_runner``, timed as the user runs it.

``tests/user_dag_project`` is a user's repository in miniature: ``dags/weekly_readers.py`` (CRM
contacts upserted, a segment created, refreshed and waited for, its members exported), written
from the docs alone, and ``tests/test_weekly_readers.py``, which runs it with the fixture. It is
copied to a scratch directory and run with ``python -m pytest`` in a fresh process whose
environment has no Airflow variables at all (no ``AIRFLOW_HOME``, no connection): the plugin
makes the throwaway home, migrates its DB, starts the emulator and runs the DAG. Bytecode is
cached as for an installed package: a warm-up run fills a private ``PYTHONPYCACHEPREFIX``, then
the timed run. The time is the whole ``pytest`` process, start to exit.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.report import Row, Section, load_average

PROJECT = Path(__file__).resolve().parents[1] / "tests" / "user_dag_project"
TARGET_SECONDS = 30.0
# What a user's shell has none of: every Airflow setting, and the plugin's own marker.
_USER_LESS = ("AIRFLOW_", "AIRFLOW__", "SGSEG_")


def user_environment(pycache: Path | None = None) -> dict[str, str]:
    """This process's environment without any Airflow or SGSEG variable; with ``pycache``, bytecode
    is written there (as an installed package has it) instead of not at all."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(_USER_LESS)}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_project(
    work_dir: Path, *, env: dict[str, str] | None = None, timeout: float = 600
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Copy the user project into ``work_dir`` and run its tests there; returns the finished
    process, its wall time and its CPU time (user + system), in seconds."""
    project = work_dir / "user_dag_project"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(PROJECT, project)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=project,
        env=user_environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done, time.perf_counter() - started, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(work_dir: Path) -> Section:
    pycache = work_dir / "user-dag-pycache"
    env = user_environment(pycache)
    warm_up, warm_seconds, _ = run_project(work_dir, env=env)
    done, seconds, cpu_seconds = run_project(work_dir, env=env)
    passed = done.returncode == 0 and warm_up.returncode == 0
    rows = [
        Row(
            "9",
            "a user's DAG test (upsert, create, refresh, populated wait, export) with sendgrid_dag_runner: "
            "`pytest` start to exit, no Airflow set-up",
            f"{seconds:.1f} s" + ("" if passed else " (test FAILED)"),
            f"≤ {TARGET_SECONDS:.0f} s",
            "2 min by hand (issue 23: `airflow dags test`, the DAG's own poll bounds)",
            passed and seconds <= TARGET_SECONDS,
        )
    ]
    notes = [
        f"load average (1/5/15 min) after the timed run: {load_average()}",
        f"warm-up run (bytecode written): {warm_seconds:.1f} s",
        f"timed run: {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU (user + system: what an idle machine"
        f" needs, plus the waits), exit {done.returncode}: {done.stdout.strip().splitlines()[-1:]}",
    ]
    if not passed:
        notes.append("output tail: " + (done.stdout + done.stderr)[-2000:])
    return Section("9. A user's DAG test in seconds", rows, notes)
