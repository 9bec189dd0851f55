"""Test DAG run by tests/operators/test_segments_dags.py under `airflow dags test`.

It exercises every segment operator against the emulator, in a real task runner: templates,
XCom, the extra link, task retries and Airflow's task state store.

``refresh`` simulates a worker that dies right after SendGrid accepted the refresh (before the
result could be recorded): its first try raises after the POST returned. The retry must find the
evidence and return without posting again; the test counts the POSTs in the emulator's log.

``refresh_wait`` (another segment, ``on_quota_exhausted="wait"``) meets a 429 with
``Retry-After: 3`` that the test arms: it must defer on a DateTimeTrigger, let the triggerer fire,
resume on a worker and refresh.
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.sdk import DAG, Asset, chain, task

from airflow_provider_sgseg.links import SendGridSegmentLink, segment_url
from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridDeleteSegmentOperator,
    SendGridGetSegmentOperator,
    SendGridListSegmentsOperator,
    SendGridRefreshSegmentOperator,
    SendGridUpdateSegmentOperator,
)
from airflow_provider_sgseg.rules.requests import RefreshSegment

SEGMENT_ID = "{{ ti.xcom_pull(task_ids='create', key='segment_id') }}"
OTHER_SEGMENT_ID = "{{ ti.xcom_pull(task_ids='create_other', key='segment_id') }}"
QUERY = "SELECT contact_id, updated_at FROM contact_data WHERE country = '{{ params.country }}'"


class RefreshThenCrashOnFirstTry(SendGridRefreshSegmentOperator):
    """Lets the first try's POST reach SendGrid, then dies before anything records the answer."""

    def execute(self, context: Any) -> dict[str, Any]:
        if context["ti"].try_number == 1:
            real_run = self.hook.run

            def run_then_crash(request: Any) -> Any:
                answer = real_run(request)
                if isinstance(request, RefreshSegment):
                    raise RuntimeError("simulated worker crash after SendGrid accepted the refresh")
                return answer

            self.hook.run = run_then_crash  # type: ignore[method-assign]
        return super().execute(context)


with DAG(
    dag_id="sendgrid_segment_operators_test",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    params={"country": "DE", "segment_name": "dags-test-segment"},
):
    create = SendGridCreateSegmentOperator(
        task_id="create",
        name="{{ params.segment_name }}",
        query_dsl=QUERY,
        outlets=[Asset("sendgrid://segments/dags-test-segment")],
    )
    create_again = SendGridCreateSegmentOperator(
        task_id="create_again", name="{{ params.segment_name }}", query_dsl=QUERY
    )
    create_other = SendGridCreateSegmentOperator(
        task_id="create_other", name="{{ params.segment_name }}-other", query_dsl=QUERY
    )
    refresh_wait = SendGridRefreshSegmentOperator(
        task_id="refresh_wait",
        segment_id=OTHER_SEGMENT_ID,
        user_time_zone="Europe/Berlin",
        on_quota_exhausted="wait",
        quota_wait_margin=1,
    )
    get = SendGridGetSegmentOperator(task_id="get", segment_id=SEGMENT_ID, contacts_sample=False)
    listed = SendGridListSegmentsOperator(task_id="list", ids=SEGMENT_ID)
    refresh = RefreshThenCrashOnFirstTry(
        task_id="refresh",
        segment_id=SEGMENT_ID,
        user_time_zone="America/Chicago",
        retries=1,
        retry_delay=datetime.timedelta(seconds=1),
    )
    update = SendGridUpdateSegmentOperator(
        task_id="update", segment_id=SEGMENT_ID, name="{{ params.segment_name }}-renamed"
    )

    @task
    def check(ti: Any = None) -> None:
        created = ti.xcom_pull(task_ids="create")
        assert created["status"]["query_validation"] == "VALID", created
        assert created["query_dsl"].endswith("country = 'DE'"), created
        assert ti.xcom_pull(task_ids="create_again")["id"] == created["id"]
        assert ti.xcom_pull(task_ids="get")["id"] == created["id"]
        assert [s["id"] for s in ti.xcom_pull(task_ids="list")] == [created["id"]]
        refreshed = ti.xcom_pull(task_ids="refresh")
        assert refreshed["segment_id"] == created["id"], refreshed
        assert refreshed["job_id"] is None, refreshed  # adopted from the crashed first try
        assert refreshed["watermark"] == created["sample_updated_at"], refreshed
        assert ti.xcom_pull(task_ids="update")["name"] == "dags-test-segment-renamed"
        waited = ti.xcom_pull(task_ids="refresh_wait")
        assert waited["job_id"], waited
        assert waited["segment_id"] == ti.xcom_pull(task_ids="create_other", key="segment_id"), waited
        link = ti.xcom_pull(task_ids="create", key=SendGridSegmentLink().xcom_key)
        # The connection's host decides the page: here the emulator's (docs/operators.md#extra-links).
        from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

        assert link == segment_url(created["id"], SendGridMarketingHook().base_url), link
        assert "/__emulator__/inspect?segment_id=" in link, link
        print(f"SGSEG-CHECK OK segment={created['id']} link={link}")

    delete = SendGridDeleteSegmentOperator(task_id="delete", segment_id=SEGMENT_ID)
    delete_again = SendGridDeleteSegmentOperator(
        task_id="delete_again", segment_id=SEGMENT_ID, missing_ok=True
    )

    chain(
        create,
        create_again,
        create_other,
        refresh_wait,
        get,
        listed,
        refresh,
        update,
        check(),
        delete,
        delete_again,
    )
