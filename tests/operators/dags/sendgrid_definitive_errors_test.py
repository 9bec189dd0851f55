"""Test DAG run by tests/operators/test_definitive_errors_dags.py under `airflow dags test`.

Every task has retries. ``past_send_at`` (a Single Send whose ``send_at`` has passed, with
``if_past="fail"``) and ``no_api_key`` (a connection without an API key) meet a definitive error:
they must fail on their first try. ``control`` raises a plain error: its retry proves that this
run does retry what is not definitive.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from airflow_provider_sgseg.operators.segments import SendGridGetSegmentOperator
from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator

SEGMENT_ID = "0b6c47c3-3ae5-4b3e-8bff-3c9f1b0d6e1a"

with DAG(
    dag_id="sendgrid_definitive_errors_test",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    default_args={"retries": 2, "retry_delay": datetime.timedelta(seconds=0)},
):
    SendGridSingleSendOperator(
        task_id="past_send_at",
        name="definitive-past-send-at",
        segment_ids=[SEGMENT_ID],
        sender_id=1,
        suppression_group_id=1,
        subject="Hello",
        html_content="<p>Hello</p>",
        send_at="2020-01-01T00:00:00Z",
        if_past="fail",
    )
    SendGridGetSegmentOperator(
        task_id="no_api_key", segment_id=SEGMENT_ID, sendgrid_conn_id="sendgrid_no_key"
    )

    @task(retries=1)
    def control() -> None:
        raise RuntimeError("a plain error: the task's retries apply")

    control()
