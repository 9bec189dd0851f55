"""``python -m benchmarks`` (``make bench``): run every benchmark, print the table, write RESULTS.md.

``python -m benchmarks 2 4`` runs only those benchmarks and prints their rows without touching
RESULTS.md (which always holds a full run).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK_DIR = HERE / ".work"  # git-ignored: bytecode cache of the import probes, scratch files

# Before anything imports Airflow: a throwaway home, no examples, quiet task logs.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="sgseg-bench-airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"


def main(argv: list[str]) -> int:
    import datetime
    import time
    from collections.abc import Callable

    from benchmarks import (
        contacts_pipeline,
        emulator_scale,
        hook_overhead,
        import_cost,
        poll_count,
        segment_watchers,
        stats_landing,
        triggerer_scale,
        user_dag_test,
    )
    from benchmarks.report import Section, format_table, load_average, results_markdown

    WORK_DIR.mkdir(exist_ok=True)
    benchmarks: dict[str, Callable[[], Section]] = {
        "1": lambda: import_cost.run(WORK_DIR),
        "2": poll_count.run,
        "3": triggerer_scale.run,
        "4": hook_overhead.run,
        "5": emulator_scale.run,
        "6": lambda: contacts_pipeline.run(WORK_DIR),
        "7": lambda: segment_watchers.run(work_dir=WORK_DIR),
        "8": lambda: stats_landing.run(WORK_DIR),
        "9": lambda: user_dag_test.run(WORK_DIR),
    }
    chosen = argv or list(benchmarks)
    unknown = [name for name in chosen if name not in benchmarks]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(benchmarks)}", file=sys.stderr)
        return 2
    when = datetime.datetime.now(datetime.timezone.utc)
    load_at_start = load_average()
    started = time.monotonic()
    sections = []
    for name in chosen:
        print(f"running benchmark {name} ...", file=sys.stderr, flush=True)
        section = benchmarks[name]()
        sections.append(section)
        print(format_table(section.rows), file=sys.stderr, flush=True)
    took = time.monotonic() - started
    rows = [row for section in sections for row in section.rows]
    print()
    print(format_table(rows))
    if not argv:
        loads = [f"load average (1/5/15 min): {load_at_start} at start, {load_average()} at end"]
        (HERE / "RESULTS.md").write_text(results_markdown(sections, when, took, loads))
        print(f"\nwrote {HERE / 'RESULTS.md'} ({took:.0f} s)")
    missed = [row.number for row in rows if row.passed is False]
    if missed:
        print(f"MISSED: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
