"""Every segment operator once: create, read, list, rename, refresh, delete.

A manual-only DAG to try the operators against a sandbox account (or the emulator). The segment
it creates is deleted at the end, even when a step in between failed.

``SGSEG_LIFECYCLE_SEGMENT_NAME`` names the throwaway segment; ``SGSEG_QUERY_DSL`` and
``SGSEG_TIME_ZONE`` are shared with the refresh DAG.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridDeleteSegmentOperator,
    SendGridGetSegmentOperator,
    SendGridListSegmentsOperator,
    SendGridRefreshSegmentOperator,
    SendGridUpdateSegmentOperator,
)

SEGMENT_NAME = os.environ.get("SGSEG_LIFECYCLE_SEGMENT_NAME", "Airflow lifecycle example")
QUERY_DSL = os.environ.get(
    "SGSEG_QUERY_DSL",
    "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.email LIKE '%@example.com'",
)
TIME_ZONE = os.environ.get("SGSEG_TIME_ZONE", "UTC")
SEGMENT_ID = "{{ ti.xcom_pull(task_ids='create_segment', key='segment_id') }}"

with DAG(
    dag_id="sendgrid_segment_lifecycle",
    description="Create, read, list, update, refresh and delete a SendGrid segment.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sendgrid", "example"],
) as dag:
    create_segment = SendGridCreateSegmentOperator(
        task_id="create_segment",
        name=SEGMENT_NAME,
        query_dsl=QUERY_DSL,
        if_exists="reuse",
    )
    get_segment = SendGridGetSegmentOperator(task_id="get_segment", segment_id=SEGMENT_ID)
    list_segments = SendGridListSegmentsOperator(task_id="list_segments")
    rename_segment = SendGridUpdateSegmentOperator(
        task_id="rename_segment",
        segment_id=SEGMENT_ID,
        name=f"{SEGMENT_NAME} (renamed)",
    )
    # "skip": this DAG only shows the call; a spent quota is not worth failing it for.
    refresh_segment = SendGridRefreshSegmentOperator(
        task_id="refresh_segment",
        segment_id=SEGMENT_ID,
        user_time_zone=TIME_ZONE,
        on_quota_exhausted="skip",
    )
    delete_segment = SendGridDeleteSegmentOperator(
        task_id="delete_segment",
        segment_id=SEGMENT_ID,
        missing_ok=True,
        trigger_rule="all_done",  # clean up even when a step above failed
    )

    create_segment >> get_segment >> list_segments >> rename_segment >> refresh_segment >> delete_segment
