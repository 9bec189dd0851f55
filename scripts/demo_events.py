"""The segment-watcher part of `make demo` (dags/sendgrid_segment_events.py).

``scripts/demo.py`` creates the watched segment with :func:`create_watched_segment` before the
Airflow components start (the DAG file reads its id from the environment, :func:`dag_settings`),
waits with :func:`wait_for_run` for the run the watcher's event starts, and prints
:func:`summary_lines`: the event that started the run, as its first task took it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

DAG_ID = "sendgrid_segment_events"
FIRST_TASK_ID = "take_event"
SEGMENT_NAME = "Demo watched segment"
SEGMENTS = "/v3/marketing/segments/2.0"


def create_watched_segment(base_url: str, api_key: str, query_dsl: str) -> str:
    """Create the segment the example DAG watches; returns its id."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        answer = client.post(SEGMENTS, json={"name": SEGMENT_NAME, "query_dsl": query_dsl})
        answer.raise_for_status()
        return str(answer.json()["id"])


def dag_settings(segment_id: str) -> dict[str, str]:
    """The example DAG's environment: the segment, and a watcher that looks every few seconds."""
    return {
        "SGSEG_WATCHED_SEGMENT_ID": segment_id,
        "SGSEG_EVENT_POLL_FLOOR_SECONDS": "1",
        "SGSEG_EVENT_POLL_CEILING_SECONDS": "5",
    }


def wait_for_run(
    asset_triggered_run: Callable[[], str | None],
    run_state: Callable[[str], str | None],
    check: Callable[[str], None],
    timeout: float,
    poll: float = 0.5,
) -> str | None:
    """The run id of the first watcher-started run once it has finished; ``None`` after
    ``timeout`` seconds. ``check(run_id)`` raises when the run failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_id = asset_triggered_run()
        if run_id is not None:
            check(run_id)
            if run_state(run_id) == "success":
                return run_id
        time.sleep(poll)
    return None


def summary_lines(run_id: str, seconds: float, event: dict[str, Any]) -> list[str]:
    """The run and the event that started it (the payload its first task returned)."""
    return [
        f"{DAG_ID:<26} success in {seconds:.0f} s: {run_id}",
        f"  started by the event     segment {event.get('segment_id')} ({event.get('name')}): "
        f"{event.get('contacts_count')} contacts, sample {event.get('sample_updated_at')} "
        f"(previous {event.get('previous_sample_updated_at')})",
    ]
