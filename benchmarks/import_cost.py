"""Benchmark 1: what our operators and sensor add to DAG parsing, next to HttpOperator and dbt Cloud.

Each sample is a fresh interpreter that first does what every Airflow 3 DAG file does,
``from airflow.sdk import BaseOperator, BaseHook, BaseSensorOperator, DAG``, and then times
(``time.perf_counter``) importing only the modules under test. Candidates take turns, one
sample each per round, so drift on the machine hits them alike.

Bytecode is cached as in an installed provider (pip compiles ``.pyc``): ``PYTHONDONTWRITEBYTECODE``
is cleared for the probes, which write their cache under a private ``PYTHONPYCACHEPREFIX``, and
one unmeasured warm-up run per candidate fills it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.report import Row, Section, median, ms

SAMPLES = 9
OURS = (
    "airflow_provider_sgseg.operators.segments",
    "airflow_provider_sgseg.operators.single_sends",
    "airflow_provider_sgseg.sensors.segments",
)
HTTP = ("airflow.providers.http.operators.http",)
DBT = ("airflow.providers.dbt.cloud.operators.dbt",)
TARGET_SECONDS = 0.010
TARGET_RATIO = 0.1

PROBE = """
import importlib, json, sys, time
from airflow.sdk import BaseOperator, BaseHook, BaseSensorOperator, DAG
started = time.perf_counter()
for name in sys.argv[1:]:
    importlib.import_module(name)
elapsed = time.perf_counter() - started
hook_imported = "airflow_provider_sgseg.hooks.marketing" in sys.modules
print(json.dumps({"seconds": elapsed, "hook_imported": hook_imported}))
"""


def probe(modules: tuple[str, ...], env: dict[str, str]) -> dict[str, float | bool]:
    """Import cost of ``modules`` in a fresh interpreter, after the Airflow SDK is loaded."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *modules], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float | bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def probe_env(work_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work_dir / "pycache")
    return env


def run(work_dir: Path, samples: int = SAMPLES) -> Section:
    env = probe_env(work_dir)
    candidates = {"ours": OURS, "HttpOperator": HTTP, "DbtCloudRunJobOperator": DBT}
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    hook_imported = False
    for modules in candidates.values():
        probe(modules, env)  # warm-up: fills the bytecode cache
    for _ in range(samples):
        for name, modules in candidates.items():
            result = probe(modules, env)
            seconds[name].append(float(result["seconds"]))
            hook_imported = hook_imported or bool(result["hook_imported"])
    ours, http, dbt = (median(seconds[name]) for name in candidates)
    ratio = ours / http
    baseline = f"HttpOperator {ms(http)}; DbtCloudRunJobOperator {ms(dbt)}"
    rows = [
        Row(
            "1a",
            f"DAG-parse import cost: our 2 operator modules + sensor (median of {samples})",
            ms(ours),
            f"≤ {ms(TARGET_SECONDS)}",
            baseline,
            ours <= TARGET_SECONDS and not hook_imported,
        ),
        Row(
            "1b",
            "DAG-parse import cost: ours ÷ HttpOperator",
            f"{ratio:.3f}x",
            f"≤ {TARGET_RATIO}x",
            "1x",
            ratio <= TARGET_RATIO,
        ),
    ]
    notes = [
        f"Samples (ms), {name}: " + ", ".join(f"{value * 1000:.1f}" for value in values)
        for name, values in seconds.items()
    ]
    notes.append(
        f"Our modules: {', '.join(OURS)}; hook (and httpx via it) imported at parse time: "
        f"{'yes (a MISS)' if hook_imported else 'no'}."
    )
    notes.append(f"DbtCloudRunJobOperator ÷ HttpOperator: {dbt / http:.2f}x.")
    return Section("1. DAG-parse import cost", rows, notes)
