"""Cluster policy for the reliability suite's runs of the example DAGs (on PYTHONPATH only there).

It changes nothing in the DAG files: every task gets one immediate retry, as a deployment could
impose, and the tasks that write to SendGrid get a ``pre_execute`` hook that, on their first try
only, arms the emulator's faults for exactly that task:

* a harmless fault for the read the operator makes before writing (faults are consumed in order,
  so this keeps the next ones for the right request),
* ``drop`` with ``when="after"`` on the write: SendGrid applied it, the worker saw no answer,
* a 429 asking for an hour's wait on the read the operator makes to check what happened: the
  hook gives up at once (the wait is above its cap), so the try fails and Airflow retries it.

On every later try it clears whatever faults are still armed, so a retry never meets the faults
meant for a first try that failed before reaching them.
"""

from __future__ import annotations

import datetime
from typing import Any

SEGMENTS = r"/v3/marketing/segments/2\.0"
SINGLE_SENDS = "/v3/marketing/singlesends"
UUID = "[0-9a-f-]{36}"
ANSWER_LOST: dict[str, Any] = {"kind": "drop", "when": "after"}
CHECK_FAILS: dict[str, Any] = {"kind": "status", "status": 429, "headers": {"Retry-After": "3600"}}
PASS_THROUGH: dict[str, Any] = {"kind": "delay", "seconds": 0.01}
ARMED_TASKS = {
    ("sendgrid_segment_refresh", "ensure_segment"),
    ("sendgrid_segment_refresh", "refresh_segment"),
    ("sendgrid_single_send", "send_single_send"),
    ("sendgrid_segment_lifecycle", "delete_segment"),
}


def _faults(task_id: str, context: Any) -> list[tuple[str, str, dict[str, Any]]]:
    if task_id == "delete_segment":
        # The DELETE is applied and its answer lost; the hook's own retry then meets a 404.
        return [("DELETE", f"^{SEGMENTS}/{UUID}$", ANSWER_LOST)]
    if task_id == "ensure_segment":
        return [
            ("GET", f"^{SEGMENTS}$", PASS_THROUGH),  # the lookup by name before creating
            ("POST", f"^{SEGMENTS}$", ANSWER_LOST),
            ("GET", f"^{SEGMENTS}$", CHECK_FAILS),  # the lookup after the lost answer
        ]
    if task_id == "refresh_segment":
        segment_id = context["ti"].xcom_pull(task_ids="ensure_segment")["id"]
        return [
            ("GET", f"^{SEGMENTS}/{segment_id}$", PASS_THROUGH),  # the quota check before refreshing
            ("POST", f"^{SEGMENTS}/refresh/{segment_id}$", ANSWER_LOST),
            ("GET", f"^{SEGMENTS}/{segment_id}$", CHECK_FAILS),  # "was it recorded?"
        ]
    return [
        ("PUT", f"^{SINGLE_SENDS}/{UUID}/schedule$", ANSWER_LOST),
        ("GET", f"^{SINGLE_SENDS}/{UUID}$", CHECK_FAILS),  # "is it scheduled?"
    ]


def _arm_on_first_try(context: Any) -> None:
    from sgseg_emulator.client import EmulatorAdmin

    from airflow_provider_sgseg.version_compat import BaseHook

    ti = context["ti"]
    conn = BaseHook.get_connection("sendgrid_default")
    admin = EmulatorAdmin(str(conn.host), str(conn.password))
    try:
        if ti.try_number != 1:
            # Faults are matched in order and stay armed until a request consumes them: when the
            # first try died before reaching them, the retry must not meet them instead.
            admin.clear_faults()
            return
        for method, path, spec in _faults(ti.task_id, context):
            admin.add_fault(method=method, path=path, **spec)
    finally:
        admin.close()


def task_policy(task: Any) -> None:
    task.retries = 1
    task.retry_delay = datetime.timedelta(seconds=0)
    if (task.dag_id, task.task_id) in ARMED_TASKS:
        task._pre_execute_hook = _arm_on_first_try  # what BaseOperator(pre_execute=...) sets
