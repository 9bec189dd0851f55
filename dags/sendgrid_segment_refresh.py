"""Keep a SendGrid segment fresh, wait until it has really populated, then announce it as an Asset.

ensure_segment -> refresh_segment -> wait_until_populated --(Asset event)--> sendgrid_single_send

The Asset event's ``extra`` carries ``segment_id``, ``contacts_count`` and ``sample_updated_at``,
so the downstream DAG sends to exactly the segment this run counted.

Safe to unpause: it has no schedule until you give one (``SGSEG_REFRESH_SCHEDULE``), so
unpausing it starts nothing; trigger it by hand, or set a schedule once the settings below are
yours. (A refresh spends SendGrid's refresh quota; the downstream Single Send DAG sends only
when ``SGSEG_SEND_ENABLED=true``.)

Settings come from environment variables read at parse time (cheap: no connection, no API call):

* ``SGSEG_REFRESH_SCHEDULE``: when to run, e.g. ``@daily`` or a cron expression (default: none,
  manual runs only).
* ``SGSEG_SEGMENT_NAME`` / ``SGSEG_QUERY_DSL``: the segment to keep (created if missing).
* ``SGSEG_TIME_ZONE``: IANA zone SendGrid uses to reset the daily refresh quota.
* ``SGSEG_MIN_CONTACTS``: the segment counts as populated at this many contacts.
* ``SGSEG_POLL_FLOOR_SECONDS`` / ``SGSEG_POLL_CEILING_SECONDS`` / ``SGSEG_POLL_SLACK_SECONDS`` /
  ``SGSEG_WAIT_TIMEOUT_SECONDS``: how the sensor paces its polls (it follows SendGrid's
  ``next_sample_update``, plus the slack) and when it gives up.
"""

from __future__ import annotations

import os
import re

import pendulum
from airflow.sdk import DAG, Asset

from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridRefreshSegmentOperator,
)
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

SEGMENT_NAME = os.environ.get("SGSEG_SEGMENT_NAME", "Airflow weekly digest audience")
QUERY_DSL = os.environ.get(
    "SGSEG_QUERY_DSL",
    "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.email LIKE '%@example.com'",
)
TIME_ZONE = os.environ.get("SGSEG_TIME_ZONE", "UTC")
SCHEDULE = os.environ.get("SGSEG_REFRESH_SCHEDULE", "").strip() or None
MIN_CONTACTS = int(os.environ.get("SGSEG_MIN_CONTACTS", "1"))
POLL_FLOOR_SECONDS = float(os.environ.get("SGSEG_POLL_FLOOR_SECONDS", "60"))
POLL_CEILING_SECONDS = float(os.environ.get("SGSEG_POLL_CEILING_SECONDS", "3600"))
POLL_SLACK_SECONDS = float(os.environ.get("SGSEG_POLL_SLACK_SECONDS", "30"))
WAIT_TIMEOUT_SECONDS = float(os.environ.get("SGSEG_WAIT_TIMEOUT_SECONDS", str(6 * 3600)))

# The same two lines are in sendgrid_single_send.py: the Asset is how the two DAGs meet.
SEGMENT_SLUG = re.sub(r"[^a-z0-9]+", "-", SEGMENT_NAME.lower()).strip("-")
SEGMENT_ASSET = Asset(uri=f"x-sendgrid://segments/{SEGMENT_SLUG}", name=f"sendgrid_segment_{SEGMENT_SLUG}")

# The create operator pushes the segment's id to this XCom key (found or created).
SEGMENT_ID = "{{ ti.xcom_pull(task_ids='ensure_segment', key='segment_id') }}"

with DAG(
    dag_id="sendgrid_segment_refresh",
    description="Refresh a SendGrid segment and wait until it has populated; emits an Asset event.",
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sendgrid", "example"],
) as dag:
    # Reuse: SendGrid segment names are unique, so every run (and every retry) finds the same
    # segment instead of failing or creating a duplicate.
    ensure_segment = SendGridCreateSegmentOperator(
        task_id="ensure_segment",
        name=SEGMENT_NAME,
        query_dsl=QUERY_DSL,
        if_exists="reuse",
    )

    # "skip": a manual refresh only makes SendGrid recount sooner; it is not a prerequisite.
    # When the quota is spent (2 per segment per local day, 1 per hour, 10 per account per UTC
    # day), SendGrid still recounts on its own schedule, so the sensor below (which runs after a
    # skipped refresh thanks to its trigger rule) simply waits for that next sample. "wait" could
    # hold the run until local midnight, and "fail" would fail a run for a normal condition.
    refresh_segment = SendGridRefreshSegmentOperator(
        task_id="refresh_segment",
        segment_id=SEGMENT_ID,
        user_time_zone=TIME_ZONE,
        on_quota_exhausted="skip",
    )

    wait_until_populated = SendGridSegmentPopulatedSensor(
        task_id="wait_until_populated",
        segment_id=SEGMENT_ID,
        # The refresh result holds the sample time before the refresh: only a newer sample counts.
        # A refresh skipped for quota leaves the sample time SendGrid had then, so the sensor
        # waits for SendGrid's next regular sample (docs/operators.md).
        watermark=refresh_segment.output,
        min_contacts=MIN_CONTACTS,
        deferrable=True,
        poll_floor=POLL_FLOOR_SECONDS,
        poll_ceiling=POLL_CEILING_SECONDS,
        poll_slack=POLL_SLACK_SECONDS,
        timeout=WAIT_TIMEOUT_SECONDS,
        trigger_rule="none_failed",
        outlets=[SEGMENT_ASSET],
    )

    ensure_segment >> refresh_segment >> wait_until_populated
