"""Benchmark 4: what ``SendGridMarketingHook.get_segment`` costs per request over a bare httpx GET.

Both read the same segment (a 10-contact sample included) from the same loopback emulator
(its own process), with keep-alive: the hook's ``httpx.Client`` and a bare ``httpx.Client``
with the same base URL and key, each answer parsed from JSON. The hook adds input validation,
its retry wrapper, logging and error mapping. The two take turns in short batches so a busy
machine slows both alike: each iteration times one request of each, in random order.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

from benchmarks.emulator_process import CONN_ENV_VAR, CONN_ID, EmulatorProcess
from benchmarks.report import Row, Section, us

SEGMENT_PATH = "/v3/marketing/segments/2.0/"
QUERY = "SELECT contact_id, updated_at FROM contact_data"
TARGET_RATIO = 1.3
WARMUP = 200
ITERATIONS = 2000


def _time_pairs(
    first: Callable[[], Any], second: Callable[[], Any], iterations: int
) -> tuple[list[float], list[float]]:
    """Per-request times of ``first`` and ``second``, one of each per iteration in random order."""
    order = random.Random(4)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(iterations):
        pair = [(0, first), (1, second)]
        order.shuffle(pair)
        for index, call in pair:
            started = time.perf_counter()
            call()
            times[index].append(time.perf_counter() - started)
    return times


def run(iterations: int = ITERATIONS) -> Section:
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

    with EmulatorProcess(clock="manual") as emulator:
        os.environ[CONN_ENV_VAR] = emulator.connection_json()
        emulator.admin.seed_contacts([{"email": f"reader{i}@example.com"} for i in range(10)])
        hook = SendGridMarketingHook(CONN_ID)
        segment_id = hook.create_segment("hook overhead", QUERY)["id"]
        emulator.admin.advance_clock(900 + 1)
        assert hook.get_segment(segment_id)["contacts_count"] == 10

        bare = httpx.Client(base_url=emulator.base_url, headers=emulator.headers())
        params = {"contacts_sample": "true"}

        def bare_get() -> Any:
            response = bare.get(SEGMENT_PATH + segment_id, params=params)
            response.raise_for_status()
            return response.json()

        def hook_get() -> Any:
            return hook.get_segment(segment_id)

        assert bare_get() == hook_get()
        _time_pairs(hook_get, bare_get, WARMUP)
        hook_times, bare_times = _time_pairs(hook_get, bare_get, iterations)
        bare.close()
        hook.close()

    hook_median, bare_median = statistics.median(hook_times), statistics.median(bare_times)
    ratio = hook_median / bare_median
    mean_ratio = statistics.fmean(hook_times) / statistics.fmean(bare_times)
    rows = [
        Row(
            "4",
            f"Hook overhead: get_segment per request (median of {len(hook_times)})",
            f"{us(hook_median)} = {ratio:.2f}x bare",
            f"≤ {TARGET_RATIO}x",
            f"bare httpx.Client.get {us(bare_median)}",
            ratio <= TARGET_RATIO,
        )
    ]
    notes = [
        f"Median: hook {us(hook_median)}, bare {us(bare_median)}, ratio {ratio:.3f}; "
        f"mean: hook {us(statistics.fmean(hook_times))}, bare {us(statistics.fmean(bare_times))}, "
        f"ratio {mean_ratio:.3f}.",
        f"Hook extra per request (median): {us(hook_median - bare_median)}.",
        f"{len(hook_times)} timed requests each, after {WARMUP} warm-up requests each, "
        "one of each per iteration in random order.",
    ]
    return Section("4. Hook overhead", rows, notes)
