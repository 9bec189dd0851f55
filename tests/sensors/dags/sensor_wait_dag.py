"""Test DAG for `airflow dags test`: refresh a segment and wait for it in two modes.

The segment id comes from ``dag_run.conf``; poll bounds are short because the emulator behind
it runs on the real clock with second-long timings. ``report`` writes both sensors' results to
the file named by ``SGSEG_SENSOR_REPORT`` so the test can compare them.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, task

from airflow_provider_sgseg.operators.segments import SendGridRefreshSegmentOperator
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

SEGMENT_ID = "{{ dag_run.conf['segment_id'] }}"
FAST_POLLS: dict[str, Any] = {
    "poll_floor": 0.5,
    "poll_ceiling": 5,
    "poke_interval": 1,
    "poll_slack": 0.2,
    "timeout": 120,
    "min_contacts": int(os.environ.get("SGSEG_MIN_CONTACTS", "1")),
}

with DAG(
    dag_id="sgseg_sensor_refresh_then_wait",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    refresh = SendGridRefreshSegmentOperator(task_id="refresh", segment_id=SEGMENT_ID, user_time_zone="UTC")
    wait_deferred = SendGridSegmentPopulatedSensor(
        task_id="wait_deferred",
        segment_id=SEGMENT_ID,
        watermark=refresh.output,
        deferrable=True,
        outlets=[Asset(uri="x-sendgrid://segments/sensor-test", name="sgseg_sensor_test_segment")],
        **FAST_POLLS,
    )
    # No watermark given and no dependency on the refresh: its first poke (before the refresh
    # sample lands) fixes the watermark, which must survive each reschedule in the task state
    # store, or a later poke would take the refresh sample itself as the watermark.
    wait_rescheduled = SendGridSegmentPopulatedSensor(
        task_id="wait_rescheduled",
        segment_id=SEGMENT_ID,
        mode="reschedule",
        deferrable=False,
        **FAST_POLLS,
    )

    @task
    def report(refreshed: dict[str, Any], deferred: dict[str, Any], rescheduled: dict[str, Any]) -> None:
        with open(os.environ["SGSEG_SENSOR_REPORT"], "w") as out:
            json.dump({"refresh": refreshed, "deferred": deferred, "rescheduled": rescheduled}, out)

    report(refresh.output, wait_deferred.output, wait_rescheduled.output)
