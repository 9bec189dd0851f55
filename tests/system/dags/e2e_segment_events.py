"""DAGs for the segment-watcher system tests: two consumers of one watched segment's Asset.

``e2e_segment_events`` is unpaused from its creation; ``e2e_segment_events_paused`` stays paused. The
watcher fires when the segment's count changes (``min_change=1``), so the test decides which of
the segment's samples are events by adding members; SendGrid's own unchanged samples fire nothing.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_sgseg.segment_events import new_segment_events, segment_samples_uri
from airflow_provider_sgseg.triggers.segment_events import SendGridSegmentEventTrigger

SEGMENT_ID = os.environ.get("SGSEG_E2E_WATCHED_SEGMENT_ID") or "00000000-0000-4000-8000-000000000000"
WATCHED = Asset(
    uri=segment_samples_uri(SEGMENT_ID),
    name="e2e_watched_segment",
    watchers=[
        AssetWatcher(
            name="e2e_watched_segment_watcher",
            trigger=SendGridSegmentEventTrigger(
                segment_id=SEGMENT_ID, min_change=1, poll_floor=1, poll_ceiling=3, poll_slack=0.5
            ),
        )
    ],
)
COMMON = {"schedule": [WATCHED], "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"), "catchup": False}


@task
def take_event(**context: Any) -> dict[str, Any]:
    events = new_segment_events(context)  # type: ignore[arg-type]
    print(f"Started by the segment event: {json.dumps(events[-1], sort_keys=True)}")
    return events[-1]


# Unpaused from the start: Airflow registers an Asset's watchers when it parses the file of an
# unpaused consumer (a later unpause takes effect at the next parse, 600 s away in this stack).
with DAG(
    dag_id="e2e_segment_events", max_active_runs=1, is_paused_upon_creation=False, tags=["e2e"], **COMMON
):
    take_event()

with DAG(dag_id="e2e_segment_events_paused", tags=["e2e"], **COMMON):
    take_event()
