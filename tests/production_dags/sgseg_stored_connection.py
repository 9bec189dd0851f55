"""One task whose connection lives only in the metadata DB (tests/test_production_shape.py)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_sgseg.operators.segments import SendGridListSegmentsOperator

with DAG(
    dag_id="sgseg_stored_connection",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    SendGridListSegmentsOperator(task_id="list_segments", sendgrid_conn_id="sendgrid_stored")
