"""Test DAG run by tests/operators/test_links_dags.py under `airflow dags test`.

Each kind of task runs against the emulator (a loopback host, so its links go to the emulator's
inspection page) and the real task runner computes and stores its extra links. Two tasks fail on
purpose: ``missing`` (a segment SendGrid does not have, before anything is pushed) and
``unschedulable`` (a Single Send created, then refused at scheduling by a fault the test arms:
no stats link). ``check``
reads what the runner stored for every task's links and prints ``SGSEG-LINKS`` lines.
"""

from __future__ import annotations

import datetime
import json
import tempfile
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_sgseg.links import SendGridContactsLink, SendGridSegmentLink, SendGridSingleSendLink
from airflow_provider_sgseg.operators.contacts_export import SendGridExportContactsOperator
from airflow_provider_sgseg.operators.contacts_upsert import SendGridUpsertContactsOperator
from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridGetSegmentOperator,
)
from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

SEGMENT_ID = "{{ ti.xcom_pull(task_ids='create', key='segment_id') }}"
QUERY = "SELECT contact_id, updated_at FROM contact_data WHERE email LIKE '%@example.com'"
MISSING_SEGMENT = "0b0e1a2f-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
SINGLE_SEND = {
    "subject": "Your digest",
    "html_content": "<p>Hello</p>",
    "custom_unsubscribe_url": "https://example.com/unsubscribe",
    "send_at": "now",
}
LINKS = {
    "create": SendGridSegmentLink,
    "populated": SendGridSegmentLink,
    "upsert": SendGridContactsLink,
    "export": SendGridContactsLink,
    "send": SendGridSingleSendLink,
    "unschedulable": SendGridSingleSendLink,
    "missing": SendGridSegmentLink,
}

with DAG(
    dag_id="sendgrid_links_test",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
):
    upsert = SendGridUpsertContactsOperator(
        task_id="upsert", contacts=[{"email": f"reader{n}@example.com"} for n in range(3)], poll_interval=1
    )
    create = SendGridCreateSegmentOperator(task_id="create", name="links-test", query_dsl=QUERY)
    populated = SendGridSegmentPopulatedSensor(task_id="populated", segment_id=SEGMENT_ID, poke_interval=1)
    export = SendGridExportContactsOperator(
        task_id="export", segment_ids=[SEGMENT_ID], destination=tempfile.mkdtemp(), poll_interval=1
    )
    unschedulable = SendGridSingleSendOperator(
        task_id="unschedulable", name="links-test draft", segment_ids=[SEGMENT_ID], sender_id=1, **SINGLE_SEND
    )
    send = SendGridSingleSendOperator(
        task_id="send",
        name="links-test send",
        segment_ids=[SEGMENT_ID],
        sender_id=1,
        trigger_rule="all_done",
        **SINGLE_SEND,
    )
    missing = SendGridGetSegmentOperator(
        task_id="missing", segment_id=MISSING_SEGMENT, trigger_rule="all_done"
    )

    @task(trigger_rule="all_done")
    def check(ti: Any = None) -> None:
        found = {
            task_id: ti.xcom_pull(task_ids=task_id, key=link().xcom_key) for task_id, link in LINKS.items()
        }
        ids = {
            "segment": ti.xcom_pull(task_ids="create", key="segment_id"),
            "single_send": ti.xcom_pull(task_ids="send", key="single_send_id"),
            "draft": ti.xcom_pull(task_ids="unschedulable", key="single_send_id"),
            "upsert_job": ti.xcom_pull(task_ids="upsert")["job_ids"][0],
            "export_job": ti.xcom_pull(task_ids="export")["export_id"],
        }
        print("SGSEG-LINKS " + json.dumps({"links": found, "ids": ids}, sort_keys=True))

    upsert >> create >> populated >> export >> unschedulable >> send >> missing >> check()
