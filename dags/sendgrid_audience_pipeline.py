"""The whole audience pipeline: warehouse table -> SendGrid contacts -> segment -> send, plus export.

    sync_contacts >> ensure_segment >> refresh_segment >> wait_until_populated  (segment Asset)
    wait_until_populated >> check_send_enabled >> send_single_send
    wait_until_populated >> export_members                                       (export Asset)

Safe to unpause: no schedule until ``SGSEG_AUDIENCE_SCHEDULE`` gives one, and the send is skipped
unless ``SGSEG_SEND_ENABLED=true`` (the contacts sync, refresh and export still run when triggered).

* ``sync_contacts`` upserts every row of a warehouse query (any Airflow SQL connection; the demo
  uses a SQLite file) as SendGrid contacts, custom fields by name, created if missing.
* ``ensure_segment`` / ``refresh_segment`` / ``wait_until_populated``: as in
  ``sendgrid_segment_refresh``; the sensor emits the segment's Asset event once it has populated.
* ``send_single_send`` sends to that segment; ``export_members`` downloads the segment's exact
  members (not a 50-contact sample) to a local directory and emits the export's Asset event.

Settings (environment variables, read at parse time; no connection or API call at import):

* ``SGSEG_AUDIENCE_SCHEDULE``: e.g. ``@daily`` (default: none, manual runs only).
* ``SGSEG_SEND_ENABLED``: ``true`` to create and schedule the Single Send (default ``false``).
* ``SGSEG_WAREHOUSE_CONN_ID`` (default ``sgseg_warehouse``) and ``SGSEG_WAREHOUSE_SQL``.
* ``SGSEG_AUDIENCE_SEGMENT_NAME`` / ``SGSEG_AUDIENCE_QUERY_DSL``: the segment (created if missing).
* ``SGSEG_EXPORT_DIR``: where the members are exported (a local path or an object storage URL).
* ``SGSEG_TIME_ZONE``, ``SGSEG_SENDER_ID``, ``SGSEG_UNSUBSCRIBE_URL``, ``SGSEG_POLL_FLOOR_SECONDS``,
  ``SGSEG_POLL_CEILING_SECONDS``, ``SGSEG_POLL_SLACK_SECONDS``, ``SGSEG_WAIT_TIMEOUT_SECONDS``,
  ``SGSEG_JOB_POLL_SECONDS``: as in the other example DAGs.
"""

from __future__ import annotations

import os
import re

import pendulum
from airflow.sdk import DAG, Asset, task

from airflow_provider_sgseg.operators.contacts import (
    SendGridExportContactsOperator,
    SendGridUpsertContactsOperator,
)
from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridRefreshSegmentOperator,
)
from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor
from airflow_provider_sgseg.version_compat import AirflowSkipException

WAREHOUSE_CONN_ID = os.environ.get("SGSEG_WAREHOUSE_CONN_ID", "sgseg_warehouse")
WAREHOUSE_SQL = os.environ.get(
    "SGSEG_WAREHOUSE_SQL",
    "SELECT email, first_name, last_name, country, plan, lifetime_value FROM customers ORDER BY id",
)
SEGMENT_NAME = os.environ.get("SGSEG_AUDIENCE_SEGMENT_NAME", "Airflow warehouse audience")
QUERY_DSL = os.environ.get(
    "SGSEG_AUDIENCE_QUERY_DSL",
    "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.country = 'NL'",
)
EXPORT_DIR = os.environ.get("SGSEG_EXPORT_DIR", "/tmp/sgseg-audience-export")
TIME_ZONE = os.environ.get("SGSEG_TIME_ZONE", "UTC")
SENDER_ID = os.environ.get("SGSEG_SENDER_ID", "1")
UNSUBSCRIBE_URL = os.environ.get("SGSEG_UNSUBSCRIBE_URL", "https://example.com/unsubscribe")
POLL_FLOOR_SECONDS = float(os.environ.get("SGSEG_POLL_FLOOR_SECONDS", "60"))
POLL_CEILING_SECONDS = float(os.environ.get("SGSEG_POLL_CEILING_SECONDS", "3600"))
POLL_SLACK_SECONDS = float(os.environ.get("SGSEG_POLL_SLACK_SECONDS", "30"))
WAIT_TIMEOUT_SECONDS = float(os.environ.get("SGSEG_WAIT_TIMEOUT_SECONDS", str(6 * 3600)))
JOB_POLL_SECONDS = float(os.environ.get("SGSEG_JOB_POLL_SECONDS", "15"))

SCHEDULE = os.environ.get("SGSEG_AUDIENCE_SCHEDULE") or None
_SEND_ENABLED = os.environ.get("SGSEG_SEND_ENABLED", "false").strip().lower()
if _SEND_ENABLED not in ("true", "false"):
    raise ValueError(f"SGSEG_SEND_ENABLED must be 'true' or 'false', got {_SEND_ENABLED!r}")
SEND_ENABLED = _SEND_ENABLED == "true"

SEGMENT_SLUG = re.sub(r"[^a-z0-9]+", "-", SEGMENT_NAME.lower()).strip("-")
SEGMENT_ASSET = Asset(uri=f"x-sendgrid://segments/{SEGMENT_SLUG}", name=f"sendgrid_segment_{SEGMENT_SLUG}")
EXPORT_ASSET = Asset(uri=f"x-sendgrid://exports/{SEGMENT_SLUG}", name=f"sendgrid_export_{SEGMENT_SLUG}")
SEGMENT_ID = "{{ ti.xcom_pull(task_ids='ensure_segment', key='segment_id') }}"

with DAG(
    dag_id="sendgrid_audience_pipeline",
    description="Warehouse -> SendGrid contacts -> segment refresh -> populated -> Single Send, plus export.",
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sendgrid", "example"],
) as dag:
    sync_contacts = SendGridUpsertContactsOperator(
        task_id="sync_contacts",
        sql=WAREHOUSE_SQL,
        sql_conn_id=WAREHOUSE_CONN_ID,
        create_missing_fields=True,
        custom_field_types={"plan": "Text", "lifetime_value": "Number"},
        poll_interval=JOB_POLL_SECONDS,
        deferrable=True,
        retries=2,
    )
    ensure_segment = SendGridCreateSegmentOperator(
        task_id="ensure_segment", name=SEGMENT_NAME, query_dsl=QUERY_DSL, if_exists="reuse"
    )
    # "skip": a spent refresh quota only means waiting for SendGrid's own next sample.
    refresh_segment = SendGridRefreshSegmentOperator(
        task_id="refresh_segment", segment_id=SEGMENT_ID, user_time_zone=TIME_ZONE, on_quota_exhausted="skip"
    )
    wait_until_populated = SendGridSegmentPopulatedSensor(
        task_id="wait_until_populated",
        segment_id=SEGMENT_ID,
        watermark="{{ ti.xcom_pull(task_ids='refresh_segment') }}",
        poll_floor=POLL_FLOOR_SECONDS,
        poll_ceiling=POLL_CEILING_SECONDS,
        poll_slack=POLL_SLACK_SECONDS,
        timeout=WAIT_TIMEOUT_SECONDS,
        deferrable=True,
        trigger_rule="none_failed",  # also after a skipped refresh
        outlets=[SEGMENT_ASSET],
    )

    @task
    def check_send_enabled() -> None:
        """Skip the send (only) unless sending is switched on."""
        if not SEND_ENABLED:
            raise AirflowSkipException(
                "Sending is off for this example DAG: set SGSEG_SEND_ENABLED=true (on the "
                "dag-processor and every worker) to create and schedule a real Single Send."
            )

    send_single_send = SendGridSingleSendOperator(
        task_id="send_single_send",
        name="Warehouse audience digest {{ dag_run.run_after | ds }}",
        segment_ids=[SEGMENT_ID],
        subject="Your digest for {{ dag_run.run_after | ds }}",
        html_content=(
            "<html><body><p>Hello! Here is what happened this week.</p>"
            '<p>{% raw %}<a href="{{{unsubscribe}}}">Unsubscribe</a>{% endraw %}</p></body></html>'
        ),
        sender_id=SENDER_ID,
        custom_unsubscribe_url=UNSUBSCRIBE_URL,
        send_at="now",
    )
    export_members = SendGridExportContactsOperator(
        task_id="export_members",
        segment_ids=[SEGMENT_ID],
        destination=EXPORT_DIR + "/{{ dag_run.run_id | replace(':', '_') | replace('+', '_') }}",
        poll_interval=JOB_POLL_SECONDS,
        deferrable=True,
        retries=2,
        outlets=[EXPORT_ASSET],
    )

    sync_contacts >> ensure_segment >> refresh_segment >> wait_until_populated
    wait_until_populated >> check_send_enabled() >> send_single_send
    wait_until_populated >> export_members
