"""A deferred wait whose connection lives only in the metadata DB (tests/test_production_shape.py):
under `airflow dags test` its trigger runs in that process, not in a triggerer."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

with DAG(
    dag_id="sgseg_stored_connection_wait",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    # The segment never samples (the emulator's clock stands still): the trigger polls until the
    # timeout, and soft_fail makes that a skip.
    SendGridSegmentPopulatedSensor(
        task_id="wait",
        sendgrid_conn_id="sendgrid_stored",
        segment_id="{{ dag_run.conf['segment_id'] }}",
        deferrable=True,
        poll_floor=5,
        poll_ceiling=5,
        timeout=15,
        soft_fail=True,
    )
