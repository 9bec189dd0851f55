"""Benchmark 6: the audience pipeline at scale: upsert 100,000 and 1,000,000 contacts from a SQLite
table, then export a 1,000,000-member segment to a local file; then the same upserts from a
PostgreSQL table (a throwaway cluster of Debian's postgresql), read through a server-side cursor.

The emulator runs in its own process on its manual clock. Each operator run is a child process
(``python -m benchmarks.contacts_pipeline child ...``) that imports everything first, then samples
its own RSS every 10 ms while ``execute`` runs in poke mode (its waits advance the emulator's
clock). Peak RSS growth = peak during ``execute`` - RSS before it: what the run itself holds.
Streaming means the growth is bounded (≤ 150 MB) and the same for 100,000 and 1,000,000 rows.

Both sizes first go out the same way, as ``PUT /v3/marketing/contacts`` batches (``import_threshold``
raised above 1,000,000), so their growths compare like with like; then the 1,000,000 rows again
with the default ``import_threshold`` (200,000), i.e. as a CSV import.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.emulator_process import CONN_ENV_VAR, EmulatorProcess
from benchmarks.report import Row, Section

SIZES = (100_000, 1_000_000)
DEFAULT_THRESHOLD = 200_000  # the operator's default import_threshold
TARGET_RSS_MB = 150.0
SAME_RSS_MB = 25.0  # "the same for both sizes": the two growths differ by at most this
WAREHOUSE_CONN_ENV = "AIRFLOW_CONN_SGSEG_BENCH_WAREHOUSE"
COUNTRIES = ("NL", "DE", "FR", "US")


def build_warehouse(path: Path, rows: int) -> None:
    """``customers``: ``rows`` contacts with reserved fields only (no custom field set-up needed)."""
    path.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT,"
            " city TEXT, country TEXT)"
        )
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
            (
                (n, f"customer{n}@example.com", f"First{n}", f"Last{n}", f"City{n % 97}", COUNTRIES[n % 4])
                for n in range(rows)
            ),
        )


def _child(emulator: EmulatorProcess, env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.contacts_pipeline", "child", *args],
        env={**os.environ, CONN_ENV_VAR: emulator.connection_json(), **env},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(work_dir: Path, sizes: tuple[int, ...] = SIZES) -> Section:
    database = work_dir / "warehouse.db"
    started = time.perf_counter()
    build_warehouse(database, max(sizes))
    build_seconds = time.perf_counter() - started
    env = {WAREHOUSE_CONN_ENV: json.dumps({"conn_type": "sqlite", "host": str(database)})}
    upserts: dict[int, dict[str, Any]] = {}
    with EmulatorProcess(clock="manual") as emulator:

        def measured(*args: str) -> dict[str, Any]:
            before = len(emulator.admin.requests())
            result = _child(emulator, env, *args)
            result["requests"] = len(emulator.admin.requests()) - before
            return result

        for size in sizes:
            upserts[size] = measured("upsert", emulator.base_url, str(size), str(max(sizes) + 1))
        threshold = min(DEFAULT_THRESHOLD, max(sizes) - 1)  # the default, unless sizes are tiny
        imported = measured("upsert", emulator.base_url, str(max(sizes)), str(threshold))
        export = measured("export", emulator.base_url, str(work_dir / "export"))
    from_postgres = _postgres_upserts(sizes)

    rows = []
    growth = {size: result["rss_growth"] / 2**20 for size, result in upserts.items()}
    for letter, (size, result) in zip("ab", upserts.items(), strict=False):
        rows.append(
            Row(
                f"6{letter}",
                f"Upsert {size:,} contacts from SQLite ({result['method']}): peak RSS growth",
                f"{growth[size]:.1f} MB; {result['wall']:.1f} s; {result['requests']} requests",
                f"≤ {TARGET_RSS_MB:.0f} MB",
                "—",
                growth[size] <= TARGET_RSS_MB and result["rows_read"] == size,
            )
        )
    if len(growth) == 2:
        rows.append(_same_growth("6c", "Upsert RSS growth", "(streaming)", sizes, growth))
    import_mb = imported["rss_growth"] / 2**20
    rows.append(
        Row(
            "6d",
            f"Upsert {max(sizes):,} contacts from SQLite as a CSV import: peak RSS growth",
            f"{import_mb:.1f} MB; {imported['wall']:.1f} s; {imported['requests']} requests",
            f"≤ {TARGET_RSS_MB:.0f} MB",
            "—",
            import_mb <= TARGET_RSS_MB
            and imported["method"] == "import"
            and imported["rows_read"] == max(sizes),
        )
    )
    export_mb = export["rss_growth"] / 2**20
    rows.append(
        Row(
            "6e",
            f"Export a {export['contact_count']:,}-member segment to a local file: peak RSS growth",
            f"{export_mb:.1f} MB; {export['wall']:.1f} s; {export['requests']} requests",
            f"≤ {TARGET_RSS_MB:.0f} MB",
            "—",
            export_mb <= TARGET_RSS_MB and export["row_count"] == export["contact_count"] == max(sizes),
        )
    )
    rows.extend(_postgres_rows(sizes, from_postgres))
    notes = [f"warehouse table of {max(sizes):,} rows built in {build_seconds:.1f} s"]
    for size, result in [*upserts.items(), (max(sizes), imported)]:
        notes.append(
            f"upsert {size:,}: {result['method']}, {result['batches']} batch(es)/file(s), "
            f"created {result['created_count']:,}, updated {result['updated_count']:,}; "
            f"RSS {result['rss_before'] / 2**20:.1f} MB before, peak {result['rss_peak'] / 2**20:.1f} MB; "
            f"wall {result['wall']:.1f} s (includes the emulator applying the jobs)"
        )
    notes.append(
        f"export: {export['row_count']:,} rows in {export['files']} file(s), "
        f"{export['bytes'] / 2**20:.1f} MB; "
        f"RSS {export['rss_before'] / 2**20:.1f} MB before, peak {export['rss_peak'] / 2**20:.1f} MB; "
        f"wall {export['wall']:.1f} s"
    )
    for size, result in from_postgres.items():
        notes.append(
            f"PostgreSQL upsert {size:,}: {result['method']}, {result['batches']} batch(es); "
            f"RSS {result['rss_before'] / 2**20:.1f} MB before, peak {result['rss_peak'] / 2**20:.1f} MB; "
            f"wall {result['wall']:.1f} s (server-side cursor: rows fetched "
            "5,000 at a time)"
        )
    return Section("6. Audience pipeline at scale", rows, notes)


def _postgres_upserts(sizes: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    """The same batch upserts from a throwaway PostgreSQL cluster (Debian's package), each size
    against a fresh emulator: {size: child result}; empty when PostgreSQL is not installed."""
    from benchmarks import postgres_warehouse

    if not postgres_warehouse.available():
        return {}
    results = {}
    with postgres_warehouse.postgres(max(sizes)) as connection:
        env = {WAREHOUSE_CONN_ENV: json.dumps(connection)}
        for size in sizes:
            with EmulatorProcess(clock="manual") as emulator:
                results[size] = _child(
                    emulator, env, "upsert", emulator.base_url, str(size), str(max(sizes) + 1)
                )
    return results


def _postgres_rows(sizes: tuple[int, ...], results: dict[int, dict[str, Any]]) -> list[Row]:
    if not results:
        missing = "Debian's postgresql is not installed (make bench installs it)"
        return [Row("6f", "Upsert contacts from PostgreSQL: peak RSS growth", missing, "—", "—", False)]
    growth = {size: result["rss_growth"] / 2**20 for size, result in results.items()}
    rows = [
        Row(
            f"6{letter}",
            f"Upsert {size:,} contacts from PostgreSQL ({result['method']}): peak RSS growth",
            f"{growth[size]:.1f} MB; {result['wall']:.1f} s",
            f"≤ {TARGET_RSS_MB:.0f} MB",
            "—",
            growth[size] <= TARGET_RSS_MB and result["rows_read"] == size,
        )
        for letter, (size, result) in zip("fg", results.items(), strict=False)
    ]
    if len(growth) == 2:
        rows.append(_same_growth("6h", "PostgreSQL upsert RSS growth", "(server-side cursor)", sizes, growth))
    return rows


def _same_growth(number: str, what: str, how: str, sizes: tuple[int, ...], growth: dict[int, float]) -> Row:
    """The row judging that two sizes' RSS growths (MB) are the same, within ±SAME_RSS_MB."""
    small, large = (growth[size] for size in sizes)
    return Row(
        number,
        f"{what}, {sizes[1]:,} vs {sizes[0]:,} rows {how}",
        f"{large - small:+.1f} MB",
        f"within ±{SAME_RSS_MB:.0f} MB",
        "—",
        abs(large - small) <= SAME_RSS_MB,
    )


# ----------------------------------------------------------------------------------- child


def _wire_clock(admin: Any, *classes: type) -> None:
    for cls in classes:
        cls.now = lambda self: admin.now()  # type: ignore[attr-defined]
        cls.sleep = lambda self, seconds: admin.advance_clock(seconds)  # type: ignore[attr-defined]


def child(action: str, base_url: str, argument: str, threshold: str = str(DEFAULT_THRESHOLD)) -> None:
    import psutil  # noqa: F401
    from sgseg_emulator.client import EmulatorAdmin

    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
    from airflow_provider_sgseg.operators.contacts import (
        SendGridExportContactsOperator,
        SendGridUpsertContactsOperator,
    )
    from benchmarks.triggerer_scale import PeakRss

    conn_id = "sendgrid_bench"
    # Advancing the clock applies the due jobs (a 1M-row import) before it answers.
    admin = EmulatorAdmin(base_url, json.loads(os.environ[CONN_ENV_VAR])["password"], timeout=3600)
    _wire_clock(admin, SendGridUpsertContactsOperator, SendGridExportContactsOperator)
    operator: Any
    if action == "upsert":
        operator = SendGridUpsertContactsOperator(
            task_id="upsert",
            sql="SELECT email, first_name, last_name, city, country FROM customers"
            f" WHERE id < {int(argument)} ORDER BY id",
            sql_conn_id="sgseg_bench_warehouse",
            sendgrid_conn_id=conn_id,
            import_threshold=int(threshold),
            poll_interval=30,
        )
    else:
        hook = SendGridMarketingHook(conn_id)
        segment = hook.create_segment("everyone", "SELECT contact_id, updated_at FROM contact_data")
        admin.advance_clock(3600)  # SendGrid's first sample of a new segment
        operator = SendGridExportContactsOperator(
            task_id="export",
            segment_ids=[segment["id"]],
            destination=argument,
            sendgrid_conn_id=conn_id,
            poll_interval=30,
        )
    operator.hook.get_field_definitions()  # connection and client built before measuring
    gc.collect()
    sampler = PeakRss()
    rss_before = sampler.current()
    sampler.start()
    started = time.perf_counter()
    result = dict(operator.execute({"task_state_store": None}))
    wall = time.perf_counter() - started
    peak = sampler.stop()
    result.update(wall=wall, rss_before=rss_before, rss_peak=peak, rss_growth=peak - rss_before)
    if action == "export":
        result.update(files=len(result["paths"]), bytes=sum(Path(p).stat().st_size for p in result["paths"]))
    for bulky in ("refused", "jobs"):
        result.pop(bulky, None)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6) or sys.argv[1] != "child":
        sys.exit(
            "usage: python -m benchmarks.contacts_pipeline child upsert|export BASE_URL ROWS|DEST [THRESHOLD]"
        )
    child(*sys.argv[2:])
