"""SendGrid UI URLs and the extra links that read ids from XCom.

The end-to-end path (the worker pushing ``_link_SendGridSegmentLink`` after a real task run) is
covered by the ``airflow dags test`` run in tests/operators/test_segments_dags.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_sgseg.links import (
    SendGridSegmentLink,
    SendGridSingleSendLink,
    segment_url,
    single_send_url,
)
from tests.helpers import modules_imported_by

SEGMENT_ID = "6c1f6d1e-9d3b-4a6f-8f2e-0d7c2b1a9e55"


@dataclass(frozen=True)
class TiKey:
    dag_id: str = "d"
    task_id: str = "t"
    run_id: str = "r"
    map_index: int = -1
    try_number: int = 1


def test_segment_url() -> None:
    assert segment_url(SEGMENT_ID) == f"https://mc.sendgrid.com/contacts/segments/{SEGMENT_ID}"


def test_single_send_url() -> None:
    assert single_send_url("abc-123") == "https://mc.sendgrid.com/single-sends/abc-123/stats"


def test_ids_are_escaped_into_one_path_segment() -> None:
    assert segment_url("a/../b?x=1") == "https://mc.sendgrid.com/contacts/segments/a%2F..%2Fb%3Fx%3D1"


def test_link_names_and_xcom_keys() -> None:
    assert SendGridSegmentLink().name == "SendGrid segment"
    assert SendGridSingleSendLink().name == "SendGrid Single Send"
    assert SendGridSegmentLink().xcom_key == "_link_SendGridSegmentLink"


@pytest.fixture
def xcom_store(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], Any]:
    """XCom values by (task_id, key); the lookup a worker would send to the supervisor."""
    from airflow.sdk.execution_time.xcom import XCom

    store: dict[tuple[str, str], Any] = {}

    def get_value(*, ti_key: Any, key: str) -> Any:
        return store.get((ti_key.task_id, key))

    monkeypatch.setattr(XCom, "get_value", get_value)
    return store


def test_segment_link_reads_segment_id_from_xcom(xcom_store: dict[tuple[str, str], Any]) -> None:
    xcom_store[("t", "segment_id")] = SEGMENT_ID
    link = SendGridSegmentLink().get_link(operator=None, ti_key=TiKey())  # type: ignore[arg-type]
    assert link == segment_url(SEGMENT_ID)


def test_single_send_link_reads_single_send_id_from_xcom(xcom_store: dict[tuple[str, str], Any]) -> None:
    xcom_store[("t", "single_send_id")] = "ss-1"
    link = SendGridSingleSendLink().get_link(operator=None, ti_key=TiKey())  # type: ignore[arg-type]
    assert link == "https://mc.sendgrid.com/single-sends/ss-1/stats"


@pytest.mark.parametrize("value", [None, "", 42, {"id": SEGMENT_ID}])
def test_link_is_empty_without_a_usable_id(xcom_store: dict[tuple[str, str], Any], value: Any) -> None:
    xcom_store[("t", "segment_id")] = value
    assert SendGridSegmentLink().get_link(operator=None, ti_key=TiKey()) == ""  # type: ignore[arg-type]


def test_links_module_adds_no_hook_or_http_imports() -> None:
    # airflow.sdk itself loads httpx, so compare against what the SDK already imported.
    new = modules_imported_by(
        "import airflow_provider_sgseg.links", setup="from airflow.sdk import BaseOperatorLink"
    )
    assert sorted(m for m in new if m.startswith(("httpx", "tenacity", "airflow_provider_sgseg.hooks"))) == []
