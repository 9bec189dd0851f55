"""A worker task and a deferred wait whose connection exists only in the metadata DB (encrypted
with the stack's Fernet key): tests/system/test_stored_connection.py."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_sgseg.operators.segments import SendGridListSegmentsOperator
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

CONN_ID = "sendgrid_stored"

with DAG(
    dag_id="e2e_stored_connection",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["e2e"],
):
    listed = SendGridListSegmentsOperator(task_id="list_segments", sendgrid_conn_id=CONN_ID)
    wait = SendGridSegmentPopulatedSensor(
        task_id="wait_until_populated",
        sendgrid_conn_id=CONN_ID,
        segment_id="{{ dag_run.conf['segment_id'] }}",
        deferrable=True,
        poll_floor=1,
        poll_ceiling=5,
        poll_slack=0.5,
        timeout=300,
    )
    listed >> wait
