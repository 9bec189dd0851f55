"""Every SendGrid task templates its ``sendgrid_conn_id``, as Amazon's and dbt Cloud's tasks do.

The tasks are found the way Airflow finds them (provider info's operator and sensor modules), so
a new task that forgets the field fails here.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest
from airflow.sdk import DAG, BaseOperator
from sgseg_emulator.pytest_plugin import EmulatorHandle, connection_json

from airflow_provider_sgseg.get_provider_info import get_provider_info

SEGMENT_ID = "0b6c47c3-3ae5-4b3e-8bff-3c9f1b0d6e1a"
# The least each task needs besides its connection id.
REQUIRED: dict[str, dict[str, Any]] = {
    "SendGridCreateSegmentOperator": {"name": "n", "query_dsl": "SELECT contact_id FROM contact_data"},
    "SendGridGetSegmentOperator": {"segment_id": SEGMENT_ID},
    "SendGridListSegmentsOperator": {},
    "SendGridUpdateSegmentOperator": {"segment_id": SEGMENT_ID, "name": "n"},
    "SendGridDeleteSegmentOperator": {"segment_id": SEGMENT_ID},
    "SendGridRefreshSegmentOperator": {"segment_id": SEGMENT_ID, "user_time_zone": "UTC"},
    "SendGridSingleSendOperator": {"name": "n", "segment_ids": [SEGMENT_ID], "sender_id": 1},
    "SendGridUpsertContactsOperator": {"contacts": [{"email": "a@example.com"}]},
    "SendGridExportContactsOperator": {"destination": "file:///tmp/export", "segment_ids": [SEGMENT_ID]},
    "SendGridSegmentPopulatedSensor": {"segment_id": SEGMENT_ID},
    "SendGridSingleSendStatsOperator": {"single_send_ids": [SEGMENT_ID]},
    "SendGridSingleSendStatsSensor": {"single_send_id": SEGMENT_ID},
}


def provider_tasks() -> list[type[BaseOperator]]:
    """Every public task class in provider info's operator and sensor modules."""
    info = get_provider_info()
    modules = [
        m for kind in ("operators", "sensors") for entry in info[kind] for m in entry["python-modules"]
    ]
    found: dict[str, type[BaseOperator]] = {}
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            public = not name.startswith("_") and not name.endswith("BaseOperator")
            if public and cls.__module__ == module_name and issubclass(cls, BaseOperator):
                found[name] = cls
    return sorted(found.values(), key=lambda cls: cls.__name__)


TASKS = provider_tasks()


def test_every_task_is_found() -> None:
    assert {cls.__name__ for cls in TASKS} == set(REQUIRED)


@pytest.mark.parametrize("task_class", TASKS, ids=lambda cls: cls.__name__)
def test_sendgrid_conn_id_is_templated(task_class: type[BaseOperator]) -> None:
    assert "sendgrid_conn_id" in task_class.template_fields
    with DAG("templated_conn_id", schedule=None, params={"tenant": "sendgrid_eu"}):
        task = task_class(
            task_id="t", sendgrid_conn_id="{{ params.tenant }}", **REQUIRED[task_class.__name__]
        )
    task.render_template_fields({"params": {"tenant": "sendgrid_eu"}})  # type: ignore[arg-type]
    assert task.sendgrid_conn_id == "sendgrid_eu"  # type: ignore[attr-defined]


class _Ti:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_a_rendered_conn_id_is_the_connection_the_task_uses(
    sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
    from airflow_provider_sgseg.operators.segments import SendGridGetSegmentOperator

    # Only the tenant's connection exists: the default one would make the template moot.
    monkeypatch.delenv("AIRFLOW_CONN_SENDGRID_DEFAULT")
    conn = connection_json(sendgrid_emulator.base_url, sendgrid_emulator.api_key)
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_TENANT_NL", conn)
    segment = SendGridMarketingHook("sendgrid_tenant_nl").create_segment(
        "tenant segment", "SELECT contact_id, updated_at FROM contact_data"
    )
    with DAG("templated_conn_id", schedule=None, params={"country": "nl"}):
        get = SendGridGetSegmentOperator(
            task_id="get",
            segment_id=segment["id"],
            sendgrid_conn_id="sendgrid_tenant_{{ params.country }}",
        )
    get.render_template_fields({"params": {"country": "nl"}})  # type: ignore[arg-type]
    result = get.execute({"ti": _Ti()})  # type: ignore[arg-type]
    assert result["id"] == segment["id"]
