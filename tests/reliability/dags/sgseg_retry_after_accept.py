"""Test DAG for `airflow dags test`: each SendGrid write is accepted by the server, its answer is
lost (the emulator drops the connection after applying it), and the try then fails; Airflow
retries the task. The retry must find what the first try did instead of doing it again.

Before each operator an ``arm_*`` task arms the emulator's faults for exactly that operator:

* a harmless fault for the reads the operator makes before writing (faults are consumed in
  order, so this keeps the next ones for the right request),
* ``drop`` with ``when="after"`` on the write: SendGrid applied it, the worker saw no answer,
* a 429 asking for an hour's wait on the read the operator makes to check what happened: the
  hook gives up at once (the wait is above its cap), so the try fails and Airflow retries it.

Tasks run with ``retries=1`` and no retry delay. ``report`` writes the XComs to the file named by
``SGSEG_RETRY_REPORT``.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

from airflow.sdk import DAG, BaseHook, task

from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridRefreshSegmentOperator,
)
from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator

SEGMENTS = r"/v3/marketing/segments/2\.0"
SINGLE_SENDS = "/v3/marketing/singlesends"
UUID = "[0-9a-f-]{36}"
SEGMENT_ID = "{{ ti.xcom_pull(task_ids='create', key='segment_id') }}"
RETRIES: dict[str, Any] = {"retries": 1, "retry_delay": datetime.timedelta(seconds=0)}
ANSWER_LOST: dict[str, Any] = {"kind": "drop", "when": "after"}
CHECK_FAILS: dict[str, Any] = {"kind": "status", "status": 429, "headers": {"Retry-After": "3600"}}
PASS_THROUGH: dict[str, Any] = {"kind": "delay", "seconds": 0.01}


def _arm(*faults: tuple[str, str, dict[str, Any]]) -> None:
    from airflow_provider_sgseg.emulator.client import EmulatorAdmin

    conn = BaseHook.get_connection("sendgrid_default")
    admin = EmulatorAdmin(str(conn.host), str(conn.password))
    try:
        for method, path, spec in faults:
            admin.add_fault(method=method, path=path, **spec)
    finally:
        admin.close()


with DAG(
    dag_id="sgseg_retry_after_accept",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
):

    @task
    def arm_create() -> None:
        _arm(
            ("GET", f"^{SEGMENTS}$", PASS_THROUGH),  # the lookup by name before creating
            ("POST", f"^{SEGMENTS}$", ANSWER_LOST),
            ("GET", f"^{SEGMENTS}$", CHECK_FAILS),  # the lookup after the lost answer
        )

    create = SendGridCreateSegmentOperator(
        task_id="create",
        name="retry audience",
        query_dsl="SELECT contact_id, updated_at FROM contact_data",
        **RETRIES,
    )

    @task
    def arm_refresh(segment_id: str) -> None:
        _arm(
            ("GET", f"^{SEGMENTS}/{segment_id}$", PASS_THROUGH),  # the quota check before refreshing
            ("POST", f"^{SEGMENTS}/refresh/{segment_id}$", ANSWER_LOST),
            ("GET", f"^{SEGMENTS}/{segment_id}$", CHECK_FAILS),  # "was it recorded?"
        )

    refresh = SendGridRefreshSegmentOperator(
        task_id="refresh", segment_id=SEGMENT_ID, user_time_zone="Europe/Amsterdam", **RETRIES
    )

    @task
    def arm_send() -> None:
        _arm(
            ("PUT", f"^{SINGLE_SENDS}/{UUID}/schedule$", ANSWER_LOST),
            ("GET", f"^{SINGLE_SENDS}/{UUID}$", CHECK_FAILS),  # "is it scheduled?"
        )

    send = SendGridSingleSendOperator(
        task_id="send",
        name="retry send {{ ds }}",
        segment_ids=SEGMENT_ID,
        subject="Hello",
        html_content="<p>Hello</p>",
        sender_id=1,
        suppression_group_id=2,
        send_at="now",
        **RETRIES,
    )

    @task
    def report(ti: Any = None) -> None:
        outputs = {task_id: ti.xcom_pull(task_ids=task_id) for task_id in ("create", "refresh", "send")}
        with open(os.environ["SGSEG_RETRY_REPORT"], "w") as out:
            json.dump(outputs, out)

    arm_create() >> create
    create >> arm_refresh(SEGMENT_ID) >> refresh
    refresh >> arm_send() >> send >> report()
