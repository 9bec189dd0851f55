"""Send a Single Send to the segment that ``sendgrid_segment_refresh`` just saw populated, then
bring its results back: wait until its stats settle and land them in the warehouse.

    check_sending_enabled >> pick_segment >> send_single_send >> wait_for_results >> land_results

Scheduled on the segment's Asset: each Asset event (emitted once the segment has populated)
starts a run, and the segment id comes from that event's ``extra``. Run by hand (or with
``airflow dags test``, which does not attach Asset events), give the id as the ``segment_id``
param: ``airflow dags test sendgrid_single_send --conf '{"segment_id": "<uuid>"}'``.

Sending is opt-in: unless ``SGSEG_SEND_ENABLED=true``, a run skips the send (its first task
says how to turn it on), so unpausing this example against a real account sends nothing.

Settings (environment variables, read at parse time, so they must be the same on the
dag-processor and every worker):

* ``SGSEG_SEND_ENABLED``: ``true`` to create and schedule the Single Send (default ``false``).
* ``SGSEG_SEGMENT_NAME``: must match the refresh DAG's (it names the Asset).
* ``SGSEG_SENDER_ID``: id of a verified sender in your SendGrid account.
* ``SGSEG_SUPPRESSION_GROUP_ID`` or ``SGSEG_UNSUBSCRIBE_URL``: how recipients unsubscribe.
* ``SGSEG_REQUIRE_MIN_CONTACTS``: refuse to send if the segment has fewer contacts right
  before scheduling (default 1: never send to an empty audience).
* ``SGSEG_RESULTS_CONN_ID``: the SQL connection the results land in (default
  ``sgseg_warehouse``), tables ``sendgrid_single_send_stats`` and ``sendgrid_single_send_links``.
* ``SGSEG_STATS_SETTLE_SECONDS`` (default 4 h) / ``SGSEG_STATS_MAX_WAIT_SECONDS`` (default 3
  days): results are final once unchanged that long, provisional that long after the send.
* ``SGSEG_POLL_FLOOR_SECONDS`` / ``SGSEG_POLL_CEILING_SECONDS``: the results wait's pacing.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, Param, task

from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from airflow_provider_sgseg.operators.stats import SendGridSingleSendStatsOperator
from airflow_provider_sgseg.sensors.stats import SendGridSingleSendStatsSensor
from airflow_provider_sgseg.version_compat import AirflowFailException, AirflowSkipException

SEGMENT_NAME = os.environ.get("SGSEG_SEGMENT_NAME", "Airflow weekly digest audience")
SENDER_ID = os.environ.get("SGSEG_SENDER_ID", "1")
SUPPRESSION_GROUP_ID = os.environ.get("SGSEG_SUPPRESSION_GROUP_ID") or None
UNSUBSCRIBE_URL = os.environ.get("SGSEG_UNSUBSCRIBE_URL", "https://example.com/unsubscribe")
REQUIRE_MIN_CONTACTS = int(os.environ.get("SGSEG_REQUIRE_MIN_CONTACTS", "1"))
_SEND_ENABLED = os.environ.get("SGSEG_SEND_ENABLED", "false").strip().lower()
if _SEND_ENABLED not in ("true", "false"):
    raise ValueError(f"SGSEG_SEND_ENABLED must be 'true' or 'false', got {_SEND_ENABLED!r}")
SEND_ENABLED = _SEND_ENABLED == "true"
RESULTS_CONN_ID = os.environ.get("SGSEG_RESULTS_CONN_ID", "sgseg_warehouse")
SETTLE_SECONDS = float(os.environ.get("SGSEG_STATS_SETTLE_SECONDS", str(4 * 3600)))
MAX_WAIT_SECONDS = float(os.environ.get("SGSEG_STATS_MAX_WAIT_SECONDS", str(3 * 24 * 3600)))
POLL_FLOOR_SECONDS = float(os.environ.get("SGSEG_POLL_FLOOR_SECONDS", "60"))
POLL_CEILING_SECONDS = float(os.environ.get("SGSEG_POLL_CEILING_SECONDS", "3600"))

# The same two lines are in sendgrid_segment_refresh.py: the Asset is how the two DAGs meet.
SEGMENT_SLUG = re.sub(r"[^a-z0-9]+", "-", SEGMENT_NAME.lower()).strip("-")
SEGMENT_ASSET = Asset(uri=f"x-sendgrid://segments/{SEGMENT_SLUG}", name=f"sendgrid_segment_{SEGMENT_SLUG}")

with DAG(
    dag_id="sendgrid_single_send",
    description="Send a Single Send to the segment announced by sendgrid_segment_refresh.",
    schedule=[SEGMENT_ASSET],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "segment_id": Param(
            None,
            type=["null", "string"],
            description="Segment to send to when the run was not started by an Asset event.",
        )
    },
    tags=["sendgrid", "example"],
) as dag:

    @task
    def check_sending_enabled() -> None:
        """Skip the run's send unless sending was switched on for this example."""
        if not SEND_ENABLED:
            raise AirflowSkipException(
                "Sending is off for this example DAG: set SGSEG_SEND_ENABLED=true (on the "
                "dag-processor and every worker) to create and schedule a real Single Send."
            )

    @task
    def pick_segment(**context: Any) -> str:
        """The segment id from the newest triggering Asset event, else from the ``segment_id`` param."""
        events = context["triggering_asset_events"].get(SEGMENT_ASSET) or []
        if events:
            # The events come in no promised order: the newest is the one with the latest timestamp.
            extra = max(events, key=lambda event: event.timestamp).extra
            print(f"Triggered by an Asset event: {extra}")
            return str(extra["segment_id"])
        segment_id = context["params"].get("segment_id")
        if not segment_id:
            raise AirflowFailException(
                "No Asset event started this run and no segment_id param was given: "
                'pass --conf \'{"segment_id": "<uuid>"}\' when running it by hand.'
            )
        return str(segment_id)

    segment_id = pick_segment()
    check_sending_enabled() >> segment_id
    send = SendGridSingleSendOperator(
        task_id="send_single_send",
        # The name identifies the send across retries and re-runs: one digest per day, even if
        # the segment is announced more than once that day.
        name="Segment digest {{ dag_run.run_after | ds }}",
        segment_ids=segment_id,
        subject="Your digest for {{ dag_run.run_after | ds }}",
        # SendGrid's {{{unsubscribe}}} tag would be read as Jinja: keep it raw.
        html_content=(
            "<html><body><p>Hello! Here is what happened this week.</p>"
            '<p><a href="https://example.com/digest">Read the digest</a></p>'
            '<p>{% raw %}<a href="{{{unsubscribe}}}">Unsubscribe</a>{% endraw %}</p></body></html>'
        ),
        sender_id=SENDER_ID,
        suppression_group_id=SUPPRESSION_GROUP_ID,
        custom_unsubscribe_url=None if SUPPRESSION_GROUP_ID else UNSUBSCRIBE_URL,
        send_at="now",
        min_contacts=REQUIRE_MIN_CONTACTS,
    )
    # The results leg: final once the counts stop changing, provisional if they still change
    # MAX_WAIT_SECONDS after the send; then the rows land (a rerun replaces them).
    wait_for_results = SendGridSingleSendStatsSensor(
        task_id="wait_for_results",
        single_send_id="{{ ti.xcom_pull(task_ids='send_single_send', key='single_send_id') }}",
        settle_for=SETTLE_SECONDS,
        max_wait=MAX_WAIT_SECONDS,
        poke_interval=POLL_CEILING_SECONDS,
        poll_floor=POLL_FLOOR_SECONDS,
        poll_ceiling=POLL_CEILING_SECONDS,
        timeout=MAX_WAIT_SECONDS + 24 * 3600,
        deferrable=True,
    )
    land_results = SendGridSingleSendStatsOperator(
        task_id="land_results",
        single_send_ids=["{{ ti.xcom_pull(task_ids='wait_for_results')['single_send_id'] }}"],
        provisional="{{ ti.xcom_pull(task_ids='wait_for_results')['provisional'] }}",
        destination_conn_id=RESULTS_CONN_ID,
    )
    send >> wait_for_results >> land_results
