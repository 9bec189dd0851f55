"""Benchmark 7: land the stats of 1,000 Single Sends (per day over 30 days, plus links) in SQLite.

The emulator runs in its own process on its manual clock: 1,000 Single Sends (three links each)
go out at once, then the clock moves 29 days on, so each has 30 day rows. A child process
(``python -m benchmarks.stats_landing child ...``) runs ``SendGridSingleSendStatsOperator`` once
and samples its own RSS every 10 ms while ``execute`` runs.

The fewest requests the API allows with its page sizes: ``send_at`` for the date range from the
Single Sends list (100 per page), the all-time totals from the stats list (25 ids per request),
then per Single Send one by-id page (30 day rows ≤ 50) and one links page (3 links ≤ 50).
"""

from __future__ import annotations

import gc
import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.emulator_process import CONN_ENV_VAR, EmulatorProcess
from benchmarks.report import Row, Section

SINGLE_SENDS = 1000
DAYS = 30
LINKS = 3
TARGET_RSS_MB = 150.0
TARGET_REQUESTS_RATIO = 1.10  # within 10% of the fewest
WAREHOUSE_CONN_ENV = "AIRFLOW_CONN_SGSEG_BENCH_RESULTS"
CONTENT = (
    "<p>"
    + " ".join(f'<a href="https://example.com/{n}">{n}</a>' for n in range(LINKS))
    + " {{{unsubscribe}}}</p>"
)


def fewest_requests(single_sends: int, days: int, links: int) -> int:
    """The fewest requests that read every total, day row and link of ``single_sends`` sends."""
    return (
        math.ceil(single_sends / 100)  # GET /v3/marketing/singlesends (send_at for the date range)
        + math.ceil(single_sends / 25)  # GET /v3/marketing/stats/singlesends?singlesend_ids=
        + single_sends * math.ceil(days / 50)  # GET .../{id}?aggregated_by=day
        + single_sends * math.ceil(links / 50)  # GET .../{id}/links
    )


def send_all(emulator: EmulatorProcess, count: int) -> None:
    import httpx

    emulator.admin.seed_contacts([{"email": f"reader{n}@example.com"} for n in range(100)])
    config = {"subject": "Digest", "html_content": CONTENT, "sender_id": 1, "suppression_group_id": 2}
    with httpx.Client(base_url=emulator.base_url, headers=emulator.headers(), timeout=60) as api:
        for n in range(count):
            body = {"name": f"digest {n}", "send_to": {"all": True}, "email_config": config}
            single_send_id = api.post("/v3/marketing/singlesends", json=body).raise_for_status().json()["id"]
            api.put(
                f"/v3/marketing/singlesends/{single_send_id}/schedule", json={"send_at": "now"}
            ).raise_for_status()


def run(work_dir: Path, count: int = SINGLE_SENDS, days: int = DAYS) -> Section:
    database = work_dir / "results.db"
    database.unlink(missing_ok=True)
    with EmulatorProcess(clock="manual", start_time="2026-03-01T00:30:00Z") as emulator:
        started = time.perf_counter()
        send_all(emulator, count)
        setup_seconds = time.perf_counter() - started
        emulator.admin.advance_clock((days - 1) * 86400)
        before = len(emulator.admin.requests(path_prefix="/v3/"))
        env = {WAREHOUSE_CONN_ENV: json.dumps({"conn_type": "sqlite", "host": str(database)})}
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.stats_landing", "child", emulator.base_url],
            env={**os.environ, CONN_ENV_VAR: emulator.connection_json(), **env},
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"benchmark child failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        requests = len(emulator.admin.requests(path_prefix="/v3/")) - before
    with sqlite3.connect(database) as db:
        stats_rows = db.execute("SELECT COUNT(*) FROM sendgrid_single_send_stats").fetchone()[0]
        link_rows = db.execute("SELECT COUNT(*) FROM sendgrid_single_send_links").fetchone()[0]
    fewest = fewest_requests(count, days, LINKS)
    growth = result["rss_growth"] / 2**20
    expected_rows = count * (days + 1)
    rows = [
        Row(
            "8a",
            f"Stats of {count:,} Single Sends (per day over {days} days, plus links): API requests",
            f"{requests:,} ({requests / fewest:.2f}x the fewest)",
            f"≤ {TARGET_REQUESTS_RATIO:.2f}x {fewest:,}",
            "—",
            requests <= fewest * TARGET_REQUESTS_RATIO,
        ),
        Row(
            "8b",
            "Stats landing in SQLite: peak RSS growth",
            f"{growth:.1f} MB; {result['wall']:.1f} s",
            f"≤ {TARGET_RSS_MB:.0f} MB",
            "—",
            growth <= TARGET_RSS_MB,
        ),
        Row(
            "8c",
            "Stats landing: rows written (stats + links)",
            f"{stats_rows:,} + {link_rows:,}",
            f"{expected_rows:,} + {count * LINKS:,}",
            "—",
            stats_rows == expected_rows and link_rows == count * LINKS,
        ),
    ]
    notes = [
        f"{count:,} Single Sends created and sent in {setup_seconds:.1f} s; {days} day rows + 1 total each",
        f"RSS {result['rss_before'] / 2**20:.1f} MB before, peak {result['rss_peak'] / 2**20:.1f} MB; "
        f"wall {result['wall']:.1f} s (emulator included)",
    ]
    return Section("8. Single Send stats landing", rows, notes)


# ----------------------------------------------------------------------------------- child


def child(base_url: str) -> None:
    from sgseg_emulator.client import EmulatorAdmin

    from airflow_provider_sgseg.operators.stats import SendGridSingleSendStatsOperator
    from benchmarks.triggerer_scale import PeakRss

    admin = EmulatorAdmin(base_url, json.loads(os.environ[CONN_ENV_VAR])["password"], timeout=3600)
    SendGridSingleSendStatsOperator.now = lambda self: admin.now()  # type: ignore[method-assign]
    operator = SendGridSingleSendStatsOperator(
        task_id="stats",
        name="digest *",
        sendgrid_conn_id="sendgrid_bench",
        destination_conn_id="sgseg_bench_results",
        outlets=[],
    )
    gc.collect()
    sampler = PeakRss()
    rss_before = sampler.current()
    sampler.start()
    started = time.perf_counter()
    result = dict(operator.execute({}))  # type: ignore[arg-type]
    wall = time.perf_counter() - started
    peak = sampler.stop()
    summary = {"stats_rows": result["stats_rows"], "link_rows": result["link_rows"]}
    print(
        json.dumps(
            {
                **summary,
                "wall": wall,
                "rss_before": rss_before,
                "rss_peak": peak,
                "rss_growth": peak - rss_before,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "child":
        sys.exit("usage: python -m benchmarks.stats_landing child BASE_URL")
    child(sys.argv[2])
