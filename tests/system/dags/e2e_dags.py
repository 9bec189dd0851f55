"""DAGs for the system tests: the provider's operators in the shapes the kill and load tests need.

Triggered by the tests with ``conf`` (segment names and ids), never scheduled. The tasks that the
kill tests interrupt retry twice, one second apart.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridRefreshSegmentOperator,
)
from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

QUERY_DSL = "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.email LIKE '%@example.com'"
SEGMENT_NAME = "{{ dag_run.conf['segment_name'] }}"
SEGMENT_ID = "{{ ti.xcom_pull(task_ids='ensure_segment', key='segment_id') }}"
RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=1)}
PACING = {"poll_floor": 1, "poll_ceiling": 5, "poll_slack": 0.5, "timeout": 300}
COMMON = {"schedule": None, "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"), "catchup": False}


def ensure_segment() -> SendGridCreateSegmentOperator:
    return SendGridCreateSegmentOperator(
        task_id="ensure_segment", name=SEGMENT_NAME, query_dsl=QUERY_DSL, if_exists="reuse"
    )


with DAG(dag_id="e2e_refresh_and_wait", tags=["e2e"], **COMMON):
    # The triggerer takeover and the worker kill during the refresh POST.
    refresh = SendGridRefreshSegmentOperator(
        task_id="refresh_segment",
        segment_id=SEGMENT_ID,
        user_time_zone="UTC",
        on_quota_exhausted="fail",
        **RETRIES,
    )
    wait = SendGridSegmentPopulatedSensor(
        task_id="wait_until_populated",
        segment_id=SEGMENT_ID,
        refreshed_after=refresh.output,
        deferrable=True,
        **PACING,
    )
    ensure_segment() >> refresh >> wait

with DAG(dag_id="e2e_wait_and_send", tags=["e2e"], **COMMON):
    # The worker kill during the Single Send schedule PUT.
    wait = SendGridSegmentPopulatedSensor(
        task_id="wait_until_populated", segment_id=SEGMENT_ID, deferrable=True, **PACING
    )
    send = SendGridSingleSendOperator(
        task_id="send_single_send",
        name="E2E send {{ dag_run.conf['segment_name'] }}",
        segment_ids=SEGMENT_ID,
        subject="E2E",
        html_content="<p>Hello</p>",
        sender_id="1",
        custom_unsubscribe_url="https://example.com/unsubscribe",
        send_at="now",
        **RETRIES,
    )
    ensure_segment() >> wait >> send

with DAG(dag_id="e2e_six_waits", tags=["e2e"], **COMMON):
    # Six deferrable waits at once on a worker with two slots.
    for n in range(6):
        SendGridSegmentPopulatedSensor(
            task_id=f"wait_{n}",
            segment_id=f"{{{{ dag_run.conf['segment_ids'][{n}] }}}}",
            deferrable=True,
            poll_floor=1,
            poll_ceiling=30,
            poll_slack=0.5,
            timeout=300,
        )
