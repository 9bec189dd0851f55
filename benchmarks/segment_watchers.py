"""Benchmark 7: 5,000 watched segments of one account in one triggerer process (Airflow 3.3).

5,000 ``SendGridSegmentEventTrigger`` watchers subscribe to Airflow's own
``SharedStreamManager``, exactly as the triggerer runs them (``shared_stream_key`` ->
``subscribe`` -> ``filter_shared_stream``), so they share one poll of the segment list.

The emulator runs in its own process. Its clock is manual while the segments are created (so
all 5,000 are created in the same second and sample in step, as one account's segments on one
schedule), then a ticker keeps it on the wall clock: every segment samples every
``SAMPLE_SECONDS``. The watchers run in a child process (its memory figure is its own: peak RSS
sampled every 10 ms, minus RSS after imports) until each has seen ``CYCLES`` new samples.

* requests per sample cycle: list requests while the watchers fired ``CYCLES`` events each,
  divided by ``CYCLES`` (baseline: one read per segment per cycle, as before 3.3);
* delay: from a sample's ``sample_updated_at`` to the moment its watcher yielded the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.emulator_process import CONN_ENV_VAR, CONN_ID, EmulatorProcess
from benchmarks.report import Row, Section
from benchmarks.triggerer_scale import run_measured

WATCHERS = 5000
SAMPLE_SECONDS = 30.0
CYCLES = 3
POLL_FLOOR = 1.0
POLL_CEILING = 30.0
POLL_SLACK = 0.5
DEADLINE_SECONDS = 300.0
SEGMENTS_PATH = "/v3/marketing/segments/2.0"
QUERY = "SELECT contact_id, updated_at FROM contact_data"
TARGET_REQUESTS = 1.0
TARGET_RSS_MB = 100
TARGET_DELAY = 2.0


# ---------------------------------------------------------------------------------- parent


def _create_segments(emulator: EmulatorProcess, count: int) -> list[str]:
    with httpx.Client(base_url=emulator.base_url, headers=emulator.headers(), timeout=60) as client:
        ids = []
        for index in range(count):
            response = client.post(SEGMENTS_PATH, json={"name": f"watched {index}", "query_dsl": QUERY})
            response.raise_for_status()
            ids.append(response.json()["id"])
    return ids


class WallClockTicker(threading.Thread):
    """Keeps the emulator's manual clock on the wall clock (advanced every 50 ms)."""

    def __init__(self, emulator: EmulatorProcess) -> None:
        super().__init__(daemon=True)
        self.emulator = emulator
        self._stop_event = threading.Event()

    def catch_up(self, client: httpx.Client) -> None:
        now = self.emulator.admin.now()
        behind = (datetime.datetime.now(datetime.timezone.utc) - now).total_seconds()
        if behind > 0:
            client.post("/__emulator__/clock/advance", json={"seconds": behind}).raise_for_status()

    def run(self) -> None:
        with httpx.Client(
            base_url=self.emulator.base_url, headers=self.emulator.headers(), timeout=30
        ) as client:
            while not self._stop_event.wait(0.05):
                try:
                    self.catch_up(client)
                except httpx.HTTPError:  # the emulator is busy (sampling 5,000 segments): next tick
                    continue

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run(watchers: int = WATCHERS, work_dir: Path | None = None) -> Section:
    work_dir = work_dir or Path(__file__).resolve().parent / ".work"
    work_dir.mkdir(exist_ok=True)
    config = {
        "clock": "manual",
        "start_time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "contacts_populate_delay": 1,
        "membership_check_interval": SAMPLE_SECONDS,
        "sample_interval": SAMPLE_SECONDS,
        "sample_max_interval": SAMPLE_SECONDS,
    }
    with EmulatorProcess(**config) as emulator:
        emulator.admin.seed_contacts([{"email": f"member{i}@example.com"} for i in range(5)])
        ids = _create_segments(emulator, watchers)
        ids_file = work_dir / "segment_watchers.json"
        ids_file.write_text(json.dumps(ids))
        ticker = WallClockTicker(emulator)
        with httpx.Client(base_url=emulator.base_url, headers=emulator.headers(), timeout=30) as client:
            ticker.catch_up(client)
        ticker.start()
        try:
            result = _run_child(emulator, ids_file)
        finally:
            ticker.stop()
        requests = emulator.admin.requests(method="GET", path_prefix=SEGMENTS_PATH)
    lists = [r for r in requests if r["path"] == SEGMENTS_PATH]
    result["reads"] = len(requests) - len(lists)
    result["lists_in_window"] = len([r for r in lists if _in_window(r, result)])
    result["lists"] = len(lists)
    return _section(result, watchers)


def _in_window(request: dict[str, Any], result: dict[str, Any]) -> bool:
    """Whether a logged request falls between the first and the last cycle's events."""
    at = datetime.datetime.fromisoformat(str(request["time"]).replace("Z", "+00:00"))
    return bool(result["window_start"] < at.timestamp() <= result["window_end"])


def _run_child(emulator: EmulatorProcess, ids_file: Path) -> dict[str, Any]:
    env = {**os.environ, CONN_ENV_VAR: emulator.connection_json()}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.segment_watchers", "child", str(ids_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS + 120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"segment_watchers child failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _section(result: dict[str, Any], watchers: int) -> Section:
    cycles = CYCLES - 1  # the window runs from the first cycle's events to the last's
    per_cycle = result["lists_in_window"] / cycles
    growth_mb = result["rss_growth"] / 2**20
    complete = result["complete"]
    rows = [
        Row(
            "7a",
            f"Segment watchers: {watchers:,} watched segments, API requests per sample cycle",
            f"{per_cycle:.1f} ({complete:,}/{watchers:,} saw {CYCLES} samples)",
            f"≤ {TARGET_REQUESTS:.0f}",
            f"{watchers:,} (one read per segment)",
            per_cycle <= TARGET_REQUESTS and complete == watchers and result["reads"] == 0,
        ),
        Row(
            "7b",
            "Segment watchers: peak RSS growth",
            f"{growth_mb:.1f} MB",
            f"≤ {TARGET_RSS_MB} MB",
            "",
            growth_mb <= TARGET_RSS_MB,
        ),
        Row(
            "7c",
            "Segment watchers: delay from a new sample to its event, beyond the list request's round trip",
            f"{result['own_delay_max']:.2f} s max (median {result['own_delay_median']:.2f} s)",
            f"≤ {TARGET_DELAY:.0f} s",
            "",
            result["own_delay_max"] <= TARGET_DELAY,
        ),
        Row(
            "7d",
            "Segment watchers: delay from a new sample to its event, all included",
            f"{result['delay_max']:.2f} s max (median {result['delay_median']:.2f} s; the emulator's "
            f"list answer took up to {result['round_trip_max']:.1f} s)",
            "—",
            "",
            None,
        ),
    ]
    notes = [
        f"{watchers:,} watchers, one shared poll (Airflow's SharedStreamManager): {result['lists']} list "
        f"requests in all ({result['lists_in_window']} between the first and the last of {CYCLES} "
        f"sample cycles), {result['reads']} per-segment reads; {result['events']:,} events in "
        f"{result['wall']:.1f} s; RSS {result['rss_before'] / 2**20:.1f} MB after imports, peak "
        f"{result['rss_peak'] / 2**20:.1f} MB.",
        f"Emulator: every segment samples every {SAMPLE_SECONDS:g} s, all in step; watchers poll at "
        f"next_sample_update + {POLL_SLACK:g} s within {POLL_FLOOR:g}..{POLL_CEILING:g} s. Delay: the "
        "event's wall time minus sample_updated_at (SendGrid's whole seconds: up to 1 s of it is "
        "rounding), over every event; 7c leaves out the list request's round trip, which on the "
        "emulator includes computing 5,000 samples at once (its SQLite evaluates each segment's "
        "query), work SendGrid does ahead of time.",
    ]
    return Section("7. Segment watchers (shared poll)", rows, notes)


# ----------------------------------------------------------------------------------- child


async def _watch(ids: list[str]) -> dict[str, Any]:
    from airflow.triggers.shared_stream import SharedStreamManager

    from airflow_provider_sgseg.hooks.marketing import aclose_shared_clients
    from airflow_provider_sgseg.rules.instants import parse_instant
    from airflow_provider_sgseg.triggers.segment_events import SendGridSegmentEventTrigger

    manager = SharedStreamManager(max_subscriber_queue=64)
    triggers = [
        SendGridSegmentEventTrigger(
            segment_id=segment_id,
            sendgrid_conn_id=CONN_ID,
            poll_floor=POLL_FLOOR,
            poll_ceiling=POLL_CEILING,
            poll_slack=POLL_SLACK,
        )
        for segment_id in ids
    ]
    delays: list[float] = []
    own_delays: list[float] = []  # the same, less the list request's round trip
    round_trips: list[float] = []
    fired_at: list[list[float]] = [[] for _ in triggers]
    all_done = asyncio.Event()
    complete = 0

    answers: list[tuple[float, float]] = []  # (poll started, answer received) of each shared poll

    async def timed(stream: Any) -> Any:
        async for snapshot in stream:
            answers.append((snapshot.polled_at.timestamp(), time.time()))
            yield snapshot

    async def watch(trigger_id: int, trigger: SendGridSegmentEventTrigger) -> None:
        nonlocal complete
        key = trigger.shared_stream_key()
        stream = manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=key)
        if trigger_id == 0:
            stream = timed(stream)
        try:
            async for event in trigger.filter_shared_stream(stream):
                now = time.time()
                sampled = parse_instant(event.payload["sample_updated_at"])
                assert sampled is not None
                delays.append(now - sampled.timestamp())
                # The poll that brought the sample: the last one answered before this event.
                polled, received = max((a for a in answers if a[1] <= now), default=(now, now))
                own_delays.append((polled - sampled.timestamp()) + (now - received))
                round_trips.append(received - polled)
                fired_at[trigger_id].append(now)
                if len(fired_at[trigger_id]) == CYCLES:
                    complete += 1
                    if complete == len(triggers):
                        all_done.set()
                    return
        finally:
            await manager.unsubscribe(trigger_id, key)

    tasks = [asyncio.ensure_future(watch(n, trigger)) for n, trigger in enumerate(triggers)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_done.wait(), DEADLINE_SECONDS)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await manager.stop_all()
    await aclose_shared_clients()
    firsts = [times[0] for times in fired_at if times]
    lasts = [times[-1] for times in fired_at if len(times) == CYCLES]
    delays.sort()
    own_delays.sort()
    round_trips.sort()
    return {
        "own_delay_max": own_delays[-1] if own_delays else float("inf"),
        "own_delay_median": own_delays[len(own_delays) // 2] if own_delays else float("inf"),
        "round_trip_max": round_trips[-1] if round_trips else float("inf"),
        "complete": complete,
        "events": len(delays),
        "delay_max": delays[-1] if delays else float("inf"),
        "delay_median": delays[len(delays) // 2] if delays else float("inf"),
        # From just after the first cycle's last event to the last cycle's last event.
        "window_start": max(firsts) if firsts else 0.0,
        "window_end": max(lasts) if lasts else 0.0,
    }


def child(ids_file: str) -> None:
    import psutil  # noqa: F401
    from airflow.triggers import shared_stream  # noqa: F401

    import airflow_provider_sgseg.hooks.marketing
    import airflow_provider_sgseg.triggers.segment_events  # noqa: F401

    ids = json.loads(Path(ids_file).read_text())
    result, measured = run_measured(_watch(ids))
    print(json.dumps({**result, **measured}))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "child":
        sys.exit("usage: python -m benchmarks.segment_watchers child SEGMENT_IDS_FILE")
    child(sys.argv[2])
