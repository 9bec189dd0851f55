"""Where links point (SendGrid's UI, the emulator's page, nowhere) and the extra links that read
the task's XCom without Airflow's "XCom not found" ERROR.

The end-to-end path (the worker pushing ``_link_SendGridSegmentLink`` after a real task run) is
covered by the ``airflow dags test`` run in tests/operators/test_segments_dags.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_sgseg.exceptions import SendGridConfigError
from airflow_provider_sgseg.links import (
    SendGridContactsLink,
    SendGridSegmentLink,
    SendGridSingleSendLink,
    contacts_url,
    push_link_data,
    segment_url,
    single_send_url,
    ui_kind,
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
    monkeypatch.setattr(
        "airflow_provider_sgseg.links._stored", lambda ti_key, key: (ti_key.task_id, key) in store
    )
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


EMULATOR = "http://127.0.0.1:8025"


@pytest.mark.parametrize(
    ("api_base_url", "kind"),
    [
        (None, "sendgrid"),  # no host: the hook's default, SendGrid
        ("https://api.sendgrid.com", "sendgrid"),
        ("https://api.eu.sendgrid.com", "sendgrid"),  # EU subusers use the same UI
        ("API.SendGrid.com:443", "sendgrid"),
        ("http://127.0.0.1:8025", "emulator"),
        ("http://localhost:8025", "emulator"),
        ("http://[::1]:8025", "emulator"),
        ("http://127.0.0.2", "emulator"),
        ("https://sendgrid-proxy.example.com", None),  # a proxy: no page knows the ids
        ("http://10.0.0.5:8025", None),  # a remote host, even an emulator: no link
        ("https://api.sendgrid.com.evil.example", None),
    ],
)
def test_which_pages_a_host_links_to(api_base_url: str | None, kind: str | None) -> None:
    assert ui_kind(api_base_url) == kind


def test_sendgrid_hosts_link_to_sendgrids_ui() -> None:
    for host in ("https://api.sendgrid.com", "https://api.eu.sendgrid.com"):
        assert segment_url(SEGMENT_ID, host) == f"https://mc.sendgrid.com/contacts/segments/{SEGMENT_ID}"
        assert single_send_url("ss-1", host) == "https://mc.sendgrid.com/single-sends/ss-1/stats"
        assert contacts_url("job-1", host) == "https://mc.sendgrid.com/contacts"


def test_an_emulator_host_links_to_its_inspection_page_highlighting_the_object() -> None:
    page = f"{EMULATOR}/__emulator__/inspect"
    assert segment_url(SEGMENT_ID, EMULATOR) == f"{page}?segment_id={SEGMENT_ID}"
    assert single_send_url("ss 1/2", EMULATOR + "/") == f"{page}?single_send_id=ss+1%2F2"
    assert contacts_url("job-1", EMULATOR) == f"{page}?job_id=job-1"
    assert contacts_url(None, EMULATOR) == page


def test_another_host_gets_no_link() -> None:
    proxy = "https://sendgrid-proxy.example.com"
    assert segment_url(SEGMENT_ID, proxy) == ""
    assert single_send_url("ss-1", proxy) == ""
    assert contacts_url("job-1", proxy) == ""


def test_link_data_decides_the_host(xcom_store: dict[tuple[str, str], Any]) -> None:
    xcom_store[("t", "sendgrid_links")] = {"api_base_url": EMULATOR, "segment_id": SEGMENT_ID}
    xcom_store[("t", "segment_id")] = SEGMENT_ID
    link = SendGridSegmentLink().get_link(operator=None, ti_key=TiKey())  # type: ignore[arg-type]
    assert link == f"{EMULATOR}/__emulator__/inspect?segment_id={SEGMENT_ID}"
    xcom_store[("t", "sendgrid_links")] = {"api_base_url": "https://proxy.example", "segment_id": SEGMENT_ID}
    assert SendGridSegmentLink().get_link(operator=None, ti_key=TiKey()) == ""  # type: ignore[arg-type]


def test_single_send_link_waits_until_it_is_scheduled(xcom_store: dict[tuple[str, str], Any]) -> None:
    # The operator pushed the id once created (a draft) and the link data before scheduling.
    xcom_store[("t", "single_send_id")] = "ss-1"
    xcom_store[("t", "sendgrid_links")] = {"api_base_url": "https://api.sendgrid.com"}
    assert SendGridSingleSendLink().get_link(operator=None, ti_key=TiKey()) == ""  # type: ignore[arg-type]
    xcom_store[("t", "sendgrid_links")] = {
        "api_base_url": "https://api.sendgrid.com",
        "single_send_id": "ss-1",
    }
    link = SendGridSingleSendLink().get_link(operator=None, ti_key=TiKey())  # type: ignore[arg-type]
    assert link == "https://mc.sendgrid.com/single-sends/ss-1/stats"


def test_contacts_link_needs_a_started_job(xcom_store: dict[tuple[str, str], Any]) -> None:
    assert SendGridContactsLink().get_link(operator=None, ti_key=TiKey()) == ""  # type: ignore[arg-type]
    xcom_store[("t", "sendgrid_links")] = {"api_base_url": "https://api.eu.sendgrid.com", "job_id": "j-1"}
    link = SendGridContactsLink().get_link(operator=None, ti_key=TiKey())  # type: ignore[arg-type]
    assert link == "https://mc.sendgrid.com/contacts"


class RecordingComms:
    """The worker's channel to the supervisor: answers XCom counts and reads from ``store``."""

    def __init__(self, store: dict[str, Any]) -> None:
        self.store = store
        self.sent: list[str] = []

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComCountResponse, XComResult

        self.sent.append(type(msg).__name__)
        if type(msg).__name__ == "GetXComCount":
            return XComCountResponse(len=int(msg.key in self.store))
        return XComResult(key=msg.key, value=self.store.get(msg.key))


@pytest.mark.parametrize("link", [SendGridSegmentLink(), SendGridSingleSendLink(), SendGridContactsLink()])
def test_a_task_that_pushed_nothing_reads_no_xcom(monkeypatch: pytest.MonkeyPatch, link: Any) -> None:
    # Reading a missing XCom (GetXCom) is what makes Airflow's supervisor log "XCom not found" at
    # ERROR level; counting first asks nothing that can be missing.
    comms = RecordingComms({})
    monkeypatch.setattr("airflow.sdk.execution_time.task_runner.SUPERVISOR_COMMS", comms, raising=False)
    assert link.get_link(operator=None, ti_key=TiKey()) == ""
    assert comms.sent and set(comms.sent) == {"GetXComCount"}


def test_a_pushed_link_is_read_through_the_supervisor(monkeypatch: pytest.MonkeyPatch) -> None:
    comms = RecordingComms({"sendgrid_links": {"api_base_url": EMULATOR, "segment_id": SEGMENT_ID}})
    monkeypatch.setattr("airflow.sdk.execution_time.task_runner.SUPERVISOR_COMMS", comms, raising=False)
    link = SendGridSegmentLink().get_link(operator=None, ti_key=TiKey())  # type: ignore[arg-type]
    assert link == f"{EMULATOR}/__emulator__/inspect?segment_id={SEGMENT_ID}"
    assert comms.sent == ["GetXComCount", "GetXCom"]


class RecordingTi:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


class FakeHook:
    def __init__(self, base_url: str | Exception) -> None:
        self._base_url = base_url
        self.reads = 0

    @property
    def base_url(self) -> str:
        self.reads += 1
        if isinstance(self._base_url, Exception):
            raise self._base_url
        return self._base_url


def test_push_link_data_carries_the_base_url_and_the_given_ids() -> None:
    ti = RecordingTi()
    push_link_data({"ti": ti}, FakeHook(EMULATOR), segment_id=SEGMENT_ID, job_id=None)  # type: ignore[arg-type,typeddict-item]
    assert ti.xcom == {"sendgrid_links": {"api_base_url": EMULATOR, "segment_id": SEGMENT_ID}}


def test_push_link_data_leaves_a_bad_connection_to_the_task() -> None:
    ti = RecordingTi()
    hook = FakeHook(SendGridConfigError("Connection 'sendgrid_default' has no API key"))
    push_link_data({"ti": ti}, hook, segment_id=SEGMENT_ID)  # type: ignore[arg-type,typeddict-item]
    assert ti.xcom == {}


def test_the_contacts_link_is_registered_with_the_provider() -> None:
    from airflow_provider_sgseg.get_provider_info import get_provider_info

    assert "airflow_provider_sgseg.links.SendGridContactsLink" in get_provider_info()["extra-links"]


def test_push_link_data_without_a_task_instance_does_nothing() -> None:
    # A user's unit test calling execute({}) keeps working: no KeyError, no connection read.
    hook = FakeHook(EMULATOR)
    push_link_data({}, hook, segment_id=SEGMENT_ID)  # type: ignore[arg-type,typeddict-item]
    assert hook.reads == 0
