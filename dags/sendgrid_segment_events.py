"""Send a Single Send whenever a SendGrid segment has a new sample: no refresh DAG, no polling task.

The DAG is scheduled on an Asset watched by ``SendGridSegmentEventTrigger``: the triggerer
polls SendGrid (on Airflow 3.3, one list request per account for every watched segment, when
the soonest is due) and each new sample of the segment that meets the conditions becomes one
Asset event, which starts one run. The run's first task takes the event (dropping one an
earlier run already handled, see docs/events.md) and prints it; the send follows.

Sending is opt-in: unless ``SGSEG_SEND_ENABLED=true``, a run skips the send.

Settings (environment variables, read at parse time, so they must be the same on the
dag-processor, the triggerers and every worker):

* ``SGSEG_WATCHED_SEGMENT_ID``: the segment to watch (a placeholder id otherwise: the watcher
  then logs, once, that SendGrid does not know it).
* ``SGSEG_WATCHED_MIN_CONTACTS``: fire only when the count rises to at least this (optional).
* ``SGSEG_EVENT_POLL_FLOOR_SECONDS`` / ``SGSEG_EVENT_POLL_CEILING_SECONDS``: the watcher's pace
  (defaults 60 and 3600).
* ``SGSEG_SEND_ENABLED``, ``SGSEG_SENDER_ID``, ``SGSEG_SUPPRESSION_GROUP_ID`` or
  ``SGSEG_UNSUBSCRIBE_URL``: as in ``sendgrid_single_send``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from airflow_provider_sgseg.segment_events import new_segment_events, segment_samples_uri
from airflow_provider_sgseg.triggers.segment_events import SendGridSegmentEventTrigger
from airflow_provider_sgseg.version_compat import AirflowSkipException

PLACEHOLDER_SEGMENT_ID = "00000000-0000-4000-8000-000000000000"
SEGMENT_ID = os.environ.get("SGSEG_WATCHED_SEGMENT_ID") or PLACEHOLDER_SEGMENT_ID
MIN_CONTACTS = (
    int(os.environ["SGSEG_WATCHED_MIN_CONTACTS"]) if os.environ.get("SGSEG_WATCHED_MIN_CONTACTS") else None
)
POLL_FLOOR = float(os.environ.get("SGSEG_EVENT_POLL_FLOOR_SECONDS", "60"))
POLL_CEILING = float(os.environ.get("SGSEG_EVENT_POLL_CEILING_SECONDS", "3600"))
SENDER_ID = os.environ.get("SGSEG_SENDER_ID", "1")
SUPPRESSION_GROUP_ID = os.environ.get("SGSEG_SUPPRESSION_GROUP_ID") or None
UNSUBSCRIBE_URL = os.environ.get("SGSEG_UNSUBSCRIBE_URL", "https://example.com/unsubscribe")
SEND_ENABLED = os.environ.get("SGSEG_SEND_ENABLED", "false").strip().lower() == "true"

# Built at parse time: the trigger only checks its arguments here (no connection, no request).
SEGMENT_SAMPLES = Asset(
    uri=segment_samples_uri(SEGMENT_ID),
    name=f"sendgrid_segment_samples_{SEGMENT_ID}",
    watchers=[
        AssetWatcher(
            name=f"sendgrid_segment_{SEGMENT_ID}",
            trigger=SendGridSegmentEventTrigger(
                segment_id=SEGMENT_ID,
                sendgrid_conn_id="sendgrid_default",
                min_contacts=MIN_CONTACTS,
                poll_floor=POLL_FLOOR,
                poll_ceiling=POLL_CEILING,
            ),
        )
    ],
)

with DAG(
    dag_id="sendgrid_segment_events",
    description="Send a Single Send each time a watched SendGrid segment has a new sample.",
    schedule=[SEGMENT_SAMPLES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["sendgrid", "example"],
) as dag:

    @task
    def take_event(**context: Any) -> dict[str, Any]:
        """The newest segment event of this run (skips the run when an earlier one handled it)."""
        events = new_segment_events(context)  # type: ignore[arg-type]
        newest = max(events, key=lambda payload: str(payload["sample_updated_at"]))
        print(f"Started by the segment event: {json.dumps(newest, sort_keys=True)}")
        return newest

    @task
    def check_sending_enabled() -> None:
        """Skip the send unless sending was switched on for this example."""
        if not SEND_ENABLED:
            raise AirflowSkipException("Sending is off for this example DAG: set SGSEG_SEND_ENABLED=true")

    event = take_event()
    send = SendGridSingleSendOperator(
        task_id="send_single_send",
        # One send per sample, also across retries: the name carries the sample's time.
        name="Segment update {{ ti.xcom_pull(task_ids='take_event')['sample_updated_at'] }}",
        segment_ids=event["segment_id"],
        subject="What is new this week",
        # SendGrid's {{{unsubscribe}}} tag would be read as Jinja: keep it raw.
        html_content=(
            "<html><body><p>Hello! Here is what is new.</p>"
            '<p>{% raw %}<a href="{{{unsubscribe}}}">Unsubscribe</a>{% endraw %}</p></body></html>'
        ),
        sender_id=SENDER_ID,
        suppression_group_id=SUPPRESSION_GROUP_ID,
        custom_unsubscribe_url=None if SUPPRESSION_GROUP_ID else UNSUBSCRIBE_URL,
        send_at="now",
    )
    event >> check_sending_enabled() >> send
