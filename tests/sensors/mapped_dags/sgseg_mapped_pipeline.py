"""Test DAG for `airflow dags test`: create, refresh and wait for two segments as mapped tasks.

Each mapped task instance has its own task state store, XCom and segment; ``report`` writes the
refresh results and the sensors' results to the file named by ``SGSEG_MAPPED_REPORT``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridRefreshSegmentOperator,
)
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

NAMES = ["mapped-a", "mapped-b"]
FAST_POLLS: dict[str, Any] = {
    "poll_floor": 0.5,
    "poll_ceiling": 5,
    "poke_interval": 1,
    "poll_slack": 0.2,
    "timeout": 120,
}

with DAG(
    dag_id="sgseg_mapped_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    created = SendGridCreateSegmentOperator.partial(
        task_id="create", query_dsl="SELECT contact_id, updated_at FROM contact_data"
    ).expand(name=NAMES)
    refreshed = SendGridRefreshSegmentOperator.partial(task_id="refresh", user_time_zone="UTC").expand(
        segment_id=created.output.map(lambda segment: segment["id"])
    )
    waits = SendGridSegmentPopulatedSensor.partial(task_id="wait", deferrable=True, **FAST_POLLS)
    waited = waits.expand_kwargs(
        refreshed.output.map(lambda result: {"segment_id": result["segment_id"], "watermark": result})
    )

    @task
    def report(refreshes: list[dict[str, Any]], waits: list[dict[str, Any]]) -> None:
        with open(os.environ["SGSEG_MAPPED_REPORT"], "w") as out:
            json.dump({"refresh": list(refreshes), "wait": list(waits)}, out)

    report(refreshed.output, waited.output)
