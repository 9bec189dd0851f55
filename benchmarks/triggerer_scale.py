"""Benchmark 3: 5,000 concurrent segment waits in one asyncio loop, as a triggerer runs them.

The emulator runs in its own process on the real clock with short timings: every segment
samples every ``SAMPLE_SECONDS`` seconds. Each wait captures the sample it first sees and
waits for the next one, polling at most every ``POLL_CEILING`` seconds, so it completes after
a few polls. All 5,000 start at once, like a triggerer picking up deferred tasks after a
restart.

Each side runs in a fresh child process (``python -m benchmarks.triggerer_scale child ...``)
so its memory figure is its own: peak RSS (sampled every 10 ms) minus RSS after imports.
Connections are counted by the emulator as it accepts them (see ``emulator_process``).

* ours: 5,000 ``SendGridSegmentPopulatedTrigger`` instances, as Airflow builds them;
* baseline: the same schedule and verdict (``population``), but a new ``httpx.AsyncClient``
  per poll (one shared SSL context, so the baseline is not slowed by building certificates).
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx

from benchmarks.emulator_process import CONN_ENV_VAR, CONN_ID, EmulatorProcess
from benchmarks.report import Row, Section

T = TypeVar("T")

WAITS = 5000  # issue 24: was 1,000
CONTACTS = 5
SAMPLE_SECONDS = 4.0
POLL_FLOOR = 0.5
POLL_CEILING = 1.0
POLL_DEFAULT = 1.0
POLL_SLACK = 0.25
DEADLINE_SECONDS = 120  # a wait takes seconds; this only bounds a broken run
SEGMENT_PATH = "/v3/marketing/segments/2.0/"
QUERY = "SELECT contact_id, updated_at FROM contact_data"
TARGET_RSS_MB = 100
TARGET_CONNECTIONS = 20
TARGET_FEWER = 5.0
MODES = ("ours", "baseline")


# ---------------------------------------------------------------------------------- parent


def _create_segments(emulator: EmulatorProcess, count: int) -> list[str]:
    with httpx.Client(base_url=emulator.base_url, headers=emulator.headers(), timeout=60) as client:
        ids = []
        for index in range(count):
            response = client.post(
                SEGMENT_PATH.rstrip("/"), json={"name": f"wait {index}", "query_dsl": QUERY}
            )
            response.raise_for_status()
            ids.append(response.json()["id"])
    return ids


def _run_child(mode: str, emulator: EmulatorProcess, ids_file: Path) -> dict[str, Any]:
    env = {**os.environ, CONN_ENV_VAR: emulator.connection_json()}
    timeout = DEADLINE_SECONDS + 120
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.triggerer_scale",
                "child",
                mode,
                str(ids_file),
                emulator.base_url,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        if mode == "ours":
            raise
        # At 5,000 waits the client-per-poll baseline may not finish at all: a figure, not a failure.
        return {
            "statuses": {"unfinished": 1},
            "wall": float(timeout),
            "rss_before": 0,
            "rss_peak": 0,
            "rss_growth": 0,
        }
    if done.returncode != 0:
        raise RuntimeError(f"triggerer_scale child ({mode}) failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(waits: int = WAITS, work_dir: Path | None = None) -> Section:
    work_dir = work_dir or Path(__file__).resolve().parent / ".work"
    work_dir.mkdir(exist_ok=True)
    config = {
        "clock": "real",
        "contacts_populate_delay": 1,
        "membership_check_interval": SAMPLE_SECONDS,
        "sample_interval": SAMPLE_SECONDS,
        "sample_max_interval": SAMPLE_SECONDS,
    }
    results: dict[str, dict[str, Any]] = {}
    with EmulatorProcess(**config) as emulator:
        emulator.admin.seed_contacts([{"email": f"member{i}@example.com"} for i in range(CONTACTS)])
        ids = _create_segments(emulator, waits)
        ids_file = work_dir / "triggerer_scale_segments.json"
        ids_file.write_text(json.dumps(ids))
        gets_so_far = 0
        for mode in MODES:
            accepted_before = emulator.connections_accepted()
            result = _run_child(mode, emulator, ids_file)
            # The second count's own connection is one of those accepted in between.
            result["connections"] = emulator.connections_accepted() - accepted_before - 1
            gets = len(emulator.admin.requests(method="GET", path_prefix=SEGMENT_PATH))
            result["gets"], gets_so_far = gets - gets_so_far, gets
            results[mode] = result
    return _section(results, waits)


def _section(results: dict[str, dict[str, Any]], waits: int) -> Section:
    ours, base = results["ours"], results["baseline"]
    ours_mb, base_mb = ours["rss_growth"] / 2**20, base["rss_growth"] / 2**20
    fewer = base["connections"] / max(ours["connections"], 1)
    ours_done = ours["statuses"].get("success", 0)
    base_done = base["statuses"].get("success", 0)
    rows = [
        Row(
            "3a",
            f"Triggerer scale: {waits:,} concurrent triggers complete (wall time)",
            f"{ours_done:,}/{waits:,} in {ours['wall']:.1f} s",
            f"all {waits:,}",
            f"{base_done:,}/{waits:,} in {base['wall']:.1f} s",
            ours_done == waits,
        ),
        Row(
            "3b",
            "Triggerer scale: peak RSS growth",
            f"{ours_mb:.1f} MB",
            f"≤ {TARGET_RSS_MB} MB",
            "did not finish" if "unfinished" in base["statuses"] else f"{base_mb:.1f} MB",
            ours_mb <= TARGET_RSS_MB,
        ),
        Row(
            "3c",
            "Triggerer scale: TCP connections accepted by the emulator",
            str(ours["connections"]),
            f"≤ {TARGET_CONNECTIONS}",
            f"{base['connections']:,} (client per poll)",
            ours["connections"] <= TARGET_CONNECTIONS,
        ),
        Row(
            "3d",
            "Triggerer scale: connections, baseline ÷ ours",
            f"{fewer:,.0f}x fewer",
            f"≥ {TARGET_FEWER:.0f}x fewer",
            "1x",
            fewer >= TARGET_FEWER,
        ),
    ]
    notes = [
        f"{name}: statuses {mode['statuses']}, {mode['gets']:,} GETs "
        f"({mode['gets'] / waits:.2f} per wait), {mode['connections']:,} connections, "
        f"wall {mode['wall']:.2f} s, RSS {mode['rss_before'] / 2**20:.1f} MB after imports, "
        f"peak {mode['rss_peak'] / 2**20:.1f} MB"
        for name, mode in results.items()
    ]
    notes.append(
        f"Emulator: real clock, a sample every {SAMPLE_SECONDS:g} s per segment; waits poll every "
        f"{POLL_FLOOR:g}..{POLL_CEILING:g} s (+{POLL_SLACK:g} s slack after next_sample_update)."
    )
    notes.append(
        "Wall time: ours keeps at most MAX_CONCURRENT_ASYNC_REQUESTS polls in flight and queues the "
        "rest, so a burst of 5,000 drains at that many round trips at a time; the baseline opens a "
        "connection per poll and sends them all at once."
    )
    return Section("3. Triggerer scale", rows, notes)


# ----------------------------------------------------------------------------------- child


class PeakRss(threading.Thread):
    """Samples this process's RSS every 10 ms until stopped; keeps the highest value."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        import psutil

        self._process = psutil.Process()
        self.peak = self.current()
        self._stop_event = threading.Event()

    def current(self) -> int:
        return int(self._process.memory_info().rss)

    def run(self) -> None:
        while not self._stop_event.wait(0.01):
            self.peak = max(self.peak, self.current())

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, self.current())
        return self.peak


def _bounds() -> dict[str, Any]:
    return {
        "poll_floor": POLL_FLOOR,
        "poll_ceiling": POLL_CEILING,
        "poke_interval": POLL_DEFAULT,
        "poll_slack": POLL_SLACK,
    }


async def _ours(ids: list[str]) -> list[str]:
    from airflow_provider_sgseg.hooks.marketing import aclose_shared_clients
    from airflow_provider_sgseg.triggers.segments import SendGridSegmentPopulatedTrigger

    started = datetime.datetime.now(datetime.timezone.utc)
    deadline = started + datetime.timedelta(seconds=DEADLINE_SECONDS)
    triggers = [
        SendGridSegmentPopulatedTrigger(
            sendgrid_conn_id=CONN_ID,
            segment_id=segment_id,
            watermark=started.isoformat(),
            deadline=deadline.isoformat(),
            **_bounds(),
        )
        for segment_id in ids
    ]

    async def status(trigger: SendGridSegmentPopulatedTrigger) -> str:
        async for event in trigger.run():
            return str(event.payload["status"])
        return "no event"

    try:
        return list(await asyncio.gather(*(status(trigger) for trigger in triggers)))
    finally:
        await aclose_shared_clients()


async def _baseline(ids: list[str], base_url: str, api_key: str) -> list[str]:
    import ssl

    from airflow_provider_sgseg.rules.instants import parse_instant
    from airflow_provider_sgseg.rules.pacing import WaitBounds, poll_delay
    from airflow_provider_sgseg.rules.population import verdict

    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    context = ssl.create_default_context()
    bounds = WaitBounds.from_arguments(_bounds())

    async def wait(segment_id: str) -> str:
        watermark: datetime.datetime | None = None
        captured = False
        failures = 0
        while True:
            try:
                async with httpx.AsyncClient(
                    base_url=base_url, headers=headers, verify=context, timeout=30
                ) as client:
                    response = await client.get(
                        SEGMENT_PATH + segment_id, params={"contacts_sample": "false"}
                    )
                response.raise_for_status()
            except httpx.HTTPError:
                failures += 1
                if failures > 5:
                    return "error"
                await asyncio.sleep(POLL_FLOOR)
                continue
            failures = 0
            segment = response.json()
            if not captured:
                watermark, captured = parse_instant(segment.get("sample_updated_at")), True
            result = verdict(segment, watermark, 1)
            if result.status == "populated":
                return "success"
            if result.status == "invalid":
                return "invalid"
            now = datetime.datetime.now(datetime.timezone.utc)
            await asyncio.sleep(poll_delay(parse_instant(segment.get("next_sample_update")), now, bounds))

    return list(await asyncio.gather(*(wait(segment_id) for segment_id in ids)))


def child(mode: str, ids_file: str, base_url: str) -> None:
    # What both sides need is imported before the "before" RSS, so only the waits are measured.
    import psutil  # noqa: F401

    import airflow_provider_sgseg.hooks.marketing
    import airflow_provider_sgseg.rules.population
    import airflow_provider_sgseg.triggers.segments  # noqa: F401

    ids = json.loads(Path(ids_file).read_text())
    api_key = json.loads(os.environ[CONN_ENV_VAR])["password"]
    statuses, measured = run_measured(_ours(ids) if mode == "ours" else _baseline(ids, base_url, api_key))
    print(json.dumps({"statuses": dict(collections.Counter(statuses)), **measured}))


def run_measured(work: Coroutine[Any, Any, T]) -> tuple[T, dict[str, float]]:
    """Run ``work`` in a new event loop; its result, and ``wall`` (s), ``rss_before``,
    ``rss_peak`` and ``rss_growth`` (bytes; RSS sampled every 10 ms, from after the imports)."""
    gc.collect()
    sampler = PeakRss()
    rss_before = sampler.current()
    sampler.start()
    started = time.perf_counter()
    result = asyncio.run(work)
    wall = time.perf_counter() - started
    peak = sampler.stop()
    return result, {"wall": wall, "rss_before": rss_before, "rss_peak": peak, "rss_growth": peak - rss_before}


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "child":
        sys.exit("usage: python -m benchmarks.triggerer_scale child ours|baseline SEGMENT_IDS_FILE BASE_URL")
    child(*sys.argv[2:])
