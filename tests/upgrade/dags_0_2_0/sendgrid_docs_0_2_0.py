"""A DAG as a user wrote it for 0.2.0 from that release's docs (and 0.1.0's: the same snippets).

Each task is a snippet of README.md, docs/operators.md, docs/sensor.md, docs/pipeline.md or
docs/hook.md at 0.2.0, with its placeholders filled in (ids, sender, poll bounds short enough
for a test, under their 0.2.0 names).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridDeleteSegmentOperator,
    SendGridGetSegmentOperator,
    SendGridListSegmentsOperator,
    SendGridRefreshSegmentOperator,
    SendGridUpdateSegmentOperator,
)
from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

SEGMENT_ID = "{{ ti.xcom_pull(task_ids='create_segment', key='segment_id') }}"
# Poll bounds in seconds, as the example DAG reads them from SGSEG_POLL_*_SECONDS.
POLLS = {"poll_floor": 1, "poll_ceiling": 5, "poll_slack": 0.5, "poll_default": 2}

with DAG(
    dag_id="sendgrid_docs_0_2_0",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    create = SendGridCreateSegmentOperator(
        task_id="create_segment",
        name="active-nl-{{ ds }}",
        query_dsl="SELECT contact_id, updated_at FROM contact_data WHERE country = 'NL'",
        parent_list_ids=None,  # at most one list id
        if_exists="reuse",  # "reuse" | "update" | "fail"
        wait_for_validation=True,  # poll until status.query_validation == "VALID"
        validation_poll_interval=10,
        validation_timeout=600,
    )
    get = SendGridGetSegmentOperator(
        task_id="get_segment",
        segment_id="{{ ti.xcom_pull(task_ids='create_segment', key='segment_id') }}",
        contacts_sample=False,
    )
    by_id = SendGridListSegmentsOperator(task_id="by_id", ids=[SEGMENT_ID])
    update = SendGridUpdateSegmentOperator(
        task_id="tighten_query",
        segment_id="{{ ti.xcom_pull(task_ids='create_segment', key='segment_id') }}",
        query_dsl="SELECT contact_id, updated_at FROM contact_data WHERE country = 'NL' AND city = 'Utrecht'",
        # name="new name",   # only the fields given are sent
    )
    restore = SendGridUpdateSegmentOperator(
        task_id="restore_query",
        segment_id=SEGMENT_ID,
        query_dsl="SELECT contact_id, updated_at FROM contact_data WHERE country = 'NL'",
    )
    refresh = SendGridRefreshSegmentOperator(
        task_id="refresh",
        segment_id=SEGMENT_ID,
        user_time_zone="Europe/Berlin",
        on_quota_exhausted="wait",  # "fail" | "skip" | "wait"
        retries=2,
    )
    populated = SendGridSegmentPopulatedSensor(
        task_id="wait_until_populated",
        segment_id=SEGMENT_ID,
        refreshed_after=refresh.output,  # the refresh operator's XCom
        min_contacts=100,
        timeout=6 * 3600,
        deferrable=True,
        **POLLS,
    )
    send = SendGridSingleSendOperator(
        task_id="send_digest",
        name="Weekly digest {{ ds }}",  # unique per send: it makes retries safe
        segment_ids=[SEGMENT_ID],  # up to 10; and/or list_ids (up to 50) or send_to_all=True
        subject="Your weekly digest",
        html_content="<p>Hi!</p> {% raw %}<a href='{{{unsubscribe}}}'>Unsubscribe</a>{% endraw %}",
        sender_id=123456,  # a verified sender
        suppression_group_id=42,  # or custom_unsubscribe_url="https://..."
        send_at="now",  # or an aware datetime / ISO 8601 string with offset
        require_min_contacts=1,  # optional: re-check the segments just before sending
    )

    @task
    def with_the_hook(segment_id: str) -> int:
        from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook

        hook = SendGridMarketingHook(
            retry=RetryPolicy(max_attempts=5, initial_wait=1.0, max_wait=60.0, jitter=1.0)
        )
        return int(hook.get_segment(segment_id, contacts_sample=False)["contacts_count"])

    delete = SendGridDeleteSegmentOperator(
        task_id="drop_segment",
        segment_id="{{ ti.xcom_pull(task_ids='create_segment', key='segment_id') }}",
        missing_ok=True,
    )

    create >> get >> by_id >> update >> restore >> refresh >> populated >> send
    send >> with_the_hook(SEGMENT_ID) >> delete
