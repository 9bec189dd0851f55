"""Where a task's extra links point (SendGrid's UI or the emulator's inspection page), and the
Airflow extra links that read it from XCom.

The rule (:func:`ui_kind`) goes by the connection's API host:

- ``api.sendgrid.com`` or its EU host ``api.eu.sendgrid.com`` (or no host: SendGrid's default):
  SendGrid's Marketing Campaigns UI, ``https://mc.sendgrid.com/...`` (EU subusers sign in to the
  same UI; SendGrid documents no regional UI host).
- a loopback host (``localhost``, ``127.0.0.0/8``, ``::1``), where ``sgseg-emulator`` listens: the
  emulator's read-only page ``<host>/__emulator__/inspect?segment_id=...`` (or ``single_send_id=``,
  ``job_id=``).
- any other host (a proxy, a remote test server): no link, since neither SendGrid's UI nor an
  emulator page would know the ids.

The task pushes what its links need (XCom ``sendgrid_links``: the connection's API base URL, a
non-secret, and the ids) while it runs; Airflow's worker calls the links right after the task
ends and stores their URLs. So the links never open a connection, and the API server, which only
shows those stored URLs, never needs the API key. A task that failed before it pushed anything
gets no link, and no XCom-not-found ERROR in its log (:func:`_stored`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from airflow.sdk import BaseOperatorLink

from airflow_provider_sgseg.exceptions import SendGridConfigError, SendGridInputError

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

SENDGRID_UI = "https://mc.sendgrid.com"
SENDGRID_API_HOSTS = frozenset({"api.sendgrid.com", "api.eu.sendgrid.com"})
EMULATOR_INSPECT_PATH = "/__emulator__/inspect"

SEGMENT_ID_XCOM_KEY = "segment_id"
SINGLE_SEND_ID_XCOM_KEY = "single_send_id"
# {"api_base_url": str, and those of "segment_id", "single_send_id", "job_id" the task has}
LINK_DATA_XCOM_KEY = "sendgrid_links"

UiKind = Literal["sendgrid", "emulator"]


def ui_kind(api_base_url: str | None) -> UiKind | None:
    """Whose pages the links of a connection with this API base URL open (module docstring):
    ``"sendgrid"``, ``"emulator"``, or ``None`` (no link)."""
    if not api_base_url:
        return "sendgrid"
    url = urlsplit(api_base_url if "://" in api_base_url else f"https://{api_base_url}")
    host = (url.hostname or "").lower()
    if host in SENDGRID_API_HOSTS:
        return "sendgrid"
    if host == "localhost" or host.endswith(".localhost"):
        return "emulator"
    try:
        return "emulator" if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def _emulator_page(api_base_url: str, **highlight: str | None) -> str:
    query = urlencode({name: value for name, value in highlight.items() if value})
    return f"{api_base_url.rstrip('/')}{EMULATOR_INSPECT_PATH}" + (f"?{query}" if query else "")


def segment_url(segment_id: str, api_base_url: str | None = None) -> str:
    """The segment's page: in SendGrid's UI, or the emulator's page highlighting it; ``""`` for
    another host. ``api_base_url`` None: SendGrid."""
    kind = ui_kind(api_base_url)
    if kind == "emulator" and api_base_url:
        return _emulator_page(api_base_url, segment_id=segment_id)
    return f"{SENDGRID_UI}/contacts/segments/{quote(segment_id, safe='')}" if kind == "sendgrid" else ""


def single_send_url(single_send_id: str, api_base_url: str | None = None) -> str:
    """The Single Send's stats page: in SendGrid's UI, or the emulator's page highlighting it;
    ``""`` for another host. ``api_base_url`` None: SendGrid."""
    kind = ui_kind(api_base_url)
    if kind == "emulator" and api_base_url:
        return _emulator_page(api_base_url, single_send_id=single_send_id)
    return f"{SENDGRID_UI}/single-sends/{quote(single_send_id, safe='')}/stats" if kind == "sendgrid" else ""


def contacts_url(job_id: str | None = None, api_base_url: str | None = None) -> str:
    """SendGrid's contacts page (its UI has no page for an API import or export job), or the
    emulator's page highlighting the job; ``""`` for another host. ``api_base_url`` None: SendGrid."""
    kind = ui_kind(api_base_url)
    if kind == "emulator" and api_base_url:
        return _emulator_page(api_base_url, job_id=job_id)
    return f"{SENDGRID_UI}/contacts" if kind == "sendgrid" else ""


def push_link_data(context: Context, hook: SendGridMarketingHook, **ids: str | None) -> None:
    """Push XCom ``sendgrid_links``: the connection's API base URL and the given ids (``segment_id``,
    ``single_send_id``, ``job_id``; empty ones left out). The task's links read it; it replaces
    what the task pushed before.

    Links never fail a task: a connection that cannot be read pushes nothing (the task's first
    request raises that error, where the task handles it), and neither does a context without a
    task instance (an ``execute({})`` in a unit test).
    """
    push = getattr(context.get("ti"), "xcom_push", None)
    if push is None:
        return
    try:
        api_base_url = hook.base_url
    except (SendGridConfigError, SendGridInputError):
        return
    data = {"api_base_url": api_base_url, **{name: str(value) for name, value in ids.items() if value}}
    push(key=LINK_DATA_XCOM_KEY, value=data)


def _stored(ti_key: TaskInstanceKey, key: str) -> bool:
    """Whether the task instance's task holds XCom ``key`` (any map index).

    Asked before reading: reading a missing XCom makes Airflow's supervisor log an "XCom not
    found" ERROR in the task's log (airflow.sdk.api.client, 3.0 to 3.3), which reads as a second
    failure of a task that failed before it pushed. Counting (a HEAD request) logs nothing. It
    counts every map index: a mapped task instance that pushed nothing while another one did is
    still read (and logged) as before.
    """
    from airflow.sdk.execution_time.comms import GetXComCount, XComCountResponse
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    answer = SUPERVISOR_COMMS.send(
        GetXComCount(key=key, dag_id=ti_key.dag_id, run_id=ti_key.run_id, task_id=ti_key.task_id)
    )
    return isinstance(answer, XComCountResponse) and answer.len > 0


def _xcom(ti_key: TaskInstanceKey, key: str) -> Any:
    from airflow.sdk.execution_time.xcom import XCom

    return XCom.get_value(ti_key=ti_key, key=key) if _stored(ti_key, key) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _link_data(ti_key: TaskInstanceKey) -> dict[str, Any] | None:
    data = _xcom(ti_key, LINK_DATA_XCOM_KEY)
    return data if isinstance(data, dict) else None


def _object_url(ti_key: TaskInstanceKey, key: str, url: Callable[[str, str | None], str]) -> str:
    """``url(id, api_base_url)`` for the id under ``key`` in the task's link data; a task without
    link data that pushed XCom ``key`` itself (as 0.3 did) links to SendGrid's UI."""
    data = _link_data(ti_key)
    if data is None:
        legacy = _text(_xcom(ti_key, key))
        return url(legacy, None) if legacy else ""
    object_id = _text(data.get(key))
    return url(object_id, _text(data.get("api_base_url"))) if object_id else ""


class SendGridSegmentLink(BaseOperatorLink):
    """ "SendGrid segment": the segment of the task's XCom ``sendgrid_links`` (a task that pushes
    only XCom ``segment_id``, as 0.3 did: that segment in SendGrid's UI)."""

    name = "SendGrid segment"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The segment's URL (:func:`segment_url`); ``""`` when the task has none."""
        return _object_url(ti_key, SEGMENT_ID_XCOM_KEY, segment_url)


class SendGridSingleSendLink(BaseOperatorLink):
    """ "SendGrid Single Send": the stats page of the Single Send of the task's XCom
    ``sendgrid_links``, there only once it is scheduled or sent (a task that pushes only XCom
    ``single_send_id``, as 0.3 did: that Single Send in SendGrid's UI)."""

    name = "SendGrid Single Send"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The Single Send's stats URL (:func:`single_send_url`); ``""`` when the task has none."""
        return _object_url(ti_key, SINGLE_SEND_ID_XCOM_KEY, single_send_url)


class SendGridContactsLink(BaseOperatorLink):
    """ "SendGrid contacts": SendGrid's contacts page for a task that imported or exported
    contacts (the emulator's page highlights its job), from the task's XCom ``sendgrid_links``."""

    name = "SendGrid contacts"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The contacts URL (:func:`contacts_url`); ``""`` before the task started a job."""
        data = _link_data(ti_key)
        if data is None or not _text(data.get("job_id")):
            return ""
        return contacts_url(_text(data.get("job_id")), _text(data.get("api_base_url")))
