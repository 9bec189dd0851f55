"""A user's weekly DAG, written from the docs alone: CRM contacts -> SendGrid -> a segment refreshed
and waited for -> its members exported. Nothing here knows about tests or the emulator."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_sgseg.operators.contacts import (
    SendGridExportContactsOperator,
    SendGridUpsertContactsOperator,
)
from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridRefreshSegmentOperator,
)
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

SEGMENT_ID = "{{ ti.xcom_pull(task_ids='ensure_segment', key='segment_id') }}"

with DAG(
    dag_id="weekly_readers",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"export_dir": "/data/exports/weekly_readers"},
) as dag:

    @task
    def crm_contacts() -> list[dict[str, str]]:
        """This week's readers from the CRM (five, for the example)."""
        return [
            {"email": f"reader{n}@example.com", "first_name": f"Reader {n}", "country": "NL"}
            for n in range(5)
        ]

    sync_contacts = SendGridUpsertContactsOperator(
        task_id="sync_contacts", contacts=crm_contacts(), deferrable=True, retries=2
    )
    ensure_segment = SendGridCreateSegmentOperator(
        task_id="ensure_segment",
        name="Dutch readers",
        query_dsl="SELECT contact_id, updated_at FROM contact_data WHERE country = 'NL'",
        if_exists="reuse",
    )
    refresh_segment = SendGridRefreshSegmentOperator(
        task_id="refresh_segment",
        segment_id=SEGMENT_ID,
        user_time_zone="Europe/Amsterdam",
        on_quota_exhausted="skip",
    )
    wait_until_populated = SendGridSegmentPopulatedSensor(
        task_id="wait_until_populated",
        segment_id=SEGMENT_ID,
        watermark=refresh_segment.output,
        min_contacts=5,
        timeout=6 * 3600,
        deferrable=True,
        trigger_rule="none_failed",
    )
    export_members = SendGridExportContactsOperator(
        task_id="export_members",
        segment_ids=[SEGMENT_ID],
        destination="{{ params.export_dir }}/{{ ds }}",
        deferrable=True,
    )
    sync_contacts >> ensure_segment >> refresh_segment >> wait_until_populated >> export_members
