"""The issue's user DAG for 0.2.0: the sensor reads the refresh result's key by name.

``sample_updated_at_before`` is what 0.2.0's refresh operator returned (docs/operators.md at
0.2.0: "hand it to the sensor as the watermark"); 0.3.0 calls it ``watermark`` and keeps the old
key until 1.0.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridRefreshSegmentOperator,
)
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

with DAG(
    dag_id="sendgrid_xcom_key_0_2_0",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    segment = SendGridCreateSegmentOperator(
        task_id="ensure_segment",
        name="Dutch readers",
        query_dsl="SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.country = 'NL'",
        if_exists="reuse",
    )
    refresh = SendGridRefreshSegmentOperator(
        task_id="refresh",
        segment_id=segment.output["segment_id"],
        user_time_zone="Europe/Amsterdam",
    )
    populated = SendGridSegmentPopulatedSensor(
        task_id="wait_until_populated",
        segment_id=segment.output["segment_id"],
        refreshed_after="{{ ti.xcom_pull(task_ids='refresh')['sample_updated_at_before'] }}",
        min_contacts=100,
        poll_floor=1,
        poll_ceiling=5,
        poll_slack=0.5,
        timeout=120,
    )
    segment >> refresh >> populated
