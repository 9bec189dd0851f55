"""``SendGridMarketingHook``: the provider's only HTTP boundary to SendGrid Marketing Campaigns.

Every public method validates its input (``rules/validation.py``) before any request, describes the
request as a :class:`_Call`, sends it through ``_request`` (sync) or ``_arequest`` (async), and
shapes the JSON into plain dicts/lists. Both paths share the building, retry decisions,
logging and error mapping; only the ``await`` differs.

Retries: GET, PATCH and DELETE are retried on 429/5xx/transport errors/truncated JSON. The
schedule PUT is retried only when the connection failed before anything was sent. POSTs are
sent exactly once; on failure the caller re-reads server state (e.g. ``find_segments_by_name``).
"""

from __future__ import annotations

import datetime
import enum
import logging
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, BinaryIO

import httpx
import tenacity

from airflow_provider_sgseg.exceptions import (
    SendGridConfigError,
    SendGridError,
    SendGridInputError,
    SendGridNotFoundError,
    SendGridRateLimitError,
    SendGridResponseError,
    SendGridServerError,
    SendGridTransportError,
)
from airflow_provider_sgseg.hooks import _connection_form
from airflow_provider_sgseg.hooks._async_pool import (
    MAX_CONCURRENT_ASYNC_REQUESTS,
    aclose_shared_clients,
    request_slots,
    shared_async_client,
)
from airflow_provider_sgseg.hooks._errors import error_for_status, parse_json
from airflow_provider_sgseg.hooks._retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    backoff,
    requested_wait,
)
from airflow_provider_sgseg.hooks._settings import CONN_TYPE, ConnectionSettings, redact
from airflow_provider_sgseg.hooks._transfer import download_file, upload_file
from airflow_provider_sgseg.rules import validation
from airflow_provider_sgseg.version_compat import AIRFLOW_V_3_2_PLUS, BaseHook, aget_connection

__all__ = ["MAX_CONCURRENT_ASYNC_REQUESTS", "RetryPolicy", "SendGridMarketingHook", "aclose_shared_clients"]


SEGMENTS_PATH = "/v3/marketing/segments/2.0"
SINGLE_SENDS_PATH = "/v3/marketing/singlesends"
SINGLE_SENDS_PAGE_SIZE = 100
CONTACTS_PATH = "/v3/marketing/contacts"
FIELD_DEFINITIONS_PATH = "/v3/marketing/field_definitions"
LISTS_PATH = "/v3/marketing/lists"
LISTS_PAGE_SIZE = 1000
MAX_PAGES = 1000  # a guard against a server that keeps handing out new page tokens
NIL_UUID = "00000000-0000-0000-0000-000000000000"

# Transport errors after which the request may have reached SendGrid are retried only for
# idempotent calls; these happen before a single byte is sent.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport errors worth another try (others, e.g. an unsupported URL scheme, are configuration).
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# OpenSSL's reasons for a TLS handshake answered in plain HTTP (the second from OpenSSL 3.2 on).
_PLAIN_HTTP_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"})


class _Retry(enum.Enum):
    IDEMPOTENT = "idempotent"  # GET, PATCH, DELETE
    IF_NOTHING_SENT = "if nothing sent"  # schedule PUT
    NEVER = "never"  # POST: sent exactly once


@dataclass(frozen=True)
class _Call:
    """One SendGrid request, described before it is sent."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    json: Any = None
    content: bytes | None = None  # a body already encoded (e.g. measured against a size limit)
    retry: _Retry = _Retry.IDEMPOTENT
    empty_ok: bool = False  # a 2xx without a body is success (else: an answer cut short)


@dataclass
class _ServerWait:
    """The wait SendGrid asked for in its latest answer to one call (seconds, or None)."""

    seconds: float | None = None


class SendGridMarketingHook(BaseHook):
    """Talks to SendGrid Marketing Campaigns (Segments V2, Single Sends) for one Airflow connection.

    :param sendgrid_conn_id: Airflow connection of type ``sendgrid_marketing``: host (default
        ``https://api.sendgrid.com``; ``https://api.eu.sendgrid.com`` for EU subusers; a trailing
        ``/v3`` is dropped, anything else but a base URL refused: see ``hooks/_settings.py``), password =
        API key, extras ``on_behalf_of`` (subuser) and ``timeout`` (seconds).
    :param retry: retry policy for idempotent requests (default :class:`RetryPolicy`).

    Errors (every API method; all are :class:`~airflow_provider_sgseg.exceptions.SendGridError`
    subclasses and none carries the API key): ``SendGridInputError`` for a bad argument, raised
    before any request; ``SendGridConfigError`` for a connection without an API key or with a
    host that is not a SendGrid base URL (or an ``https://`` one whose server does not speak TLS,
    at the first request); then SendGrid's answer after the retries the method
    allows: ``SendGridAuthError`` 401, ``SendGridForbiddenError`` 403, ``SendGridNotFoundError``
    404, ``SendGridValidationError`` 400/409/422, ``SendGridRateLimitError`` 429 (``reset_at``),
    ``SendGridServerError`` 5xx, ``SendGridTransportError`` no answer, ``SendGridResponseError``
    a 2xx body that is not the documented JSON shape.
    """

    conn_type = CONN_TYPE
    conn_name_attr = "sendgrid_conn_id"
    default_conn_name = "sendgrid_default"
    hook_name = "SendGrid Marketing"

    if not AIRFLOW_V_3_2_PLUS:
        # Airflow 3.0/3.1 draw the connection form from these; 3.2+ reads provider info's
        # conn-fields instead (and warns about hooks that still define them).

        @classmethod
        def get_connection_form_widgets(cls) -> dict[str, Any]:
            """Extra fields of the connection form (Airflow < 3.2): ``on_behalf_of``, ``timeout``."""
            return _connection_form.form_widgets()

        @classmethod
        def get_ui_field_behaviour(cls) -> dict[str, Any]:
            """Hidden, relabelled and placeholder fields of the connection form (Airflow < 3.2)."""
            return _connection_form.field_behaviour()

    def __init__(
        self,
        sendgrid_conn_id: str = default_conn_name,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.sendgrid_conn_id = sendgrid_conn_id
        self.retry_policy = retry or RetryPolicy()
        self._async_settings: ConnectionSettings | None = None

    # ----------------------------------------------------------------- connection and clients

    @cached_property
    def _settings(self) -> ConnectionSettings:
        conn = self.get_connection(self.sendgrid_conn_id)
        return ConnectionSettings.from_connection(
            self.sendgrid_conn_id, conn.host, conn.port, conn.password, conn.extra_dejson
        )

    async def _asettings(self) -> ConnectionSettings:
        if self._async_settings is None:
            conn = await aget_connection(self.sendgrid_conn_id)
            extra = await conn.aextra_dejson() if hasattr(conn, "aextra_dejson") else conn.extra_dejson
            self._async_settings = ConnectionSettings.from_connection(
                self.sendgrid_conn_id, conn.host, conn.port, conn.password, extra
            )
        return self._async_settings

    @cached_property
    def _client(self) -> httpx.Client:
        return httpx.Client(**self._settings.client_options())

    def get_conn(self) -> httpx.Client:
        """The hook's ``httpx.Client`` (base URL and auth headers set), built on first use.

        :raises SendGridConfigError: the connection has no API key or a bad host.
        :raises SendGridInputError: the connection's ``timeout`` extra is not a positive number.
        """
        return self._client

    async def aget_conn(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` shared by all hooks of this connection in the running loop.

        :raises SendGridConfigError: the connection has no API key or a bad host.
        :raises SendGridInputError: the connection's ``timeout`` extra is not a positive number.
        """
        return shared_async_client(await self._asettings())

    def close(self) -> None:
        """Close the sync client if it was built. Shared async clients: ``aclose_shared_clients``."""
        if "_client" in self.__dict__:
            self._client.close()
            del self.__dict__["_client"]

    # ------------------------------------------------------------------------------- segments

    def list_segments(
        self,
        ids: list[str] | None = None,
        parent_list_ids: list[str] | str | None = None,
        no_parent_list_id: bool = False,
    ) -> list[dict[str, Any]]:
        """``GET /v3/marketing/segments/2.0``: segment summaries (no ``query_dsl`` or sample).

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        call = _list_segments_call(ids, parent_list_ids, no_parent_list_id)
        return _segment_list(call, self._request(call))

    async def alist_segments(
        self,
        ids: list[str] | None = None,
        parent_list_ids: list[str] | str | None = None,
        no_parent_list_id: bool = False,
    ) -> list[dict[str, Any]]:
        """Async :meth:`list_segments`. Raises as :meth:`list_segments`."""
        call = _list_segments_call(ids, parent_list_ids, no_parent_list_id)
        return _segment_list(call, await self._arequest(call))

    def get_segment(self, segment_id: str, contacts_sample: bool = True) -> dict[str, Any]:
        """``GET /v3/marketing/segments/2.0/{id}``; an unknown id raises ``SendGridNotFoundError``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        call = _get_segment_call(segment_id, contacts_sample)
        return _json_object(call, self._request(call))

    async def aget_segment(self, segment_id: str, contacts_sample: bool = True) -> dict[str, Any]:
        """Async :meth:`get_segment`. Raises as :meth:`get_segment`."""
        call = _get_segment_call(segment_id, contacts_sample)
        return _json_object(call, await self._arequest(call))

    def create_segment(
        self, name: str, query_dsl: str, parent_list_ids: list[str] | str | None = None
    ) -> dict[str, Any]:
        """``POST /v3/marketing/segments/2.0``. Sent once, never retried: on a transport or server
        error, look the segment up with :meth:`find_segments_by_name` before trying again.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        body: dict[str, Any] = {
            "name": validation.segment_name(name),
            "query_dsl": validation.query_dsl(query_dsl),
        }
        parents = validation.parent_list_ids(parent_list_ids)
        if parents:
            body["parent_list_ids"] = parents
        call = _Call("POST", SEGMENTS_PATH, json=body, retry=_Retry.NEVER)
        return _json_object(call, self._request(call))

    def update_segment(
        self, segment_id: str, name: str | None = None, query_dsl: str | None = None
    ) -> dict[str, Any]:
        """``PATCH /v3/marketing/segments/2.0/{id}`` with the name and/or query given.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        path = f"{SEGMENTS_PATH}/{validation.segment_id(segment_id)}"
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = validation.segment_name(name)
        if query_dsl is not None:
            body["query_dsl"] = validation.query_dsl(query_dsl)
        if not body:
            raise SendGridInputError("update", None, "give a new name, a new query_dsl or both")
        call = _Call("PATCH", path, json=body)
        return _json_object(call, self._request(call))

    def delete_segment(self, segment_id: str) -> None:
        """``DELETE /v3/marketing/segments/2.0/{id}``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        self._request(_Call("DELETE", f"{SEGMENTS_PATH}/{validation.segment_id(segment_id)}", empty_ok=True))

    def refresh_segment(self, segment_id: str, user_time_zone: str) -> dict[str, Any]:
        """``POST /v3/marketing/segments/2.0/refresh/{id}``: spends one manual refresh; ``{"job_id"}``.

        Sent once, never retried (a retry could spend a second refresh of the daily quota).

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridRateLimitError: a refresh quota is used up (429, ``reset_at``).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        path = f"{SEGMENTS_PATH}/refresh/{validation.segment_id(segment_id)}"
        body = {"user_time_zone": validation.time_zone(user_time_zone)}
        call = _Call("POST", path, json=body, retry=_Retry.NEVER, empty_ok=True)
        return _json_object(call, self._request(call))

    def find_segments_by_name(self, name: str) -> list[dict[str, Any]]:
        """Segments whose name is exactly ``name`` (SendGrid keeps names unique: 0 or 1).

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        wanted = validation.segment_name(name)
        return [segment for segment in self.list_segments() if segment.get("name") == wanted]

    def segment_exists(self, segment_id: str) -> bool:
        """Whether SendGrid has the segment: ``GET /v3/marketing/segments/2.0?ids={id}``.

        A 404 from ``GET .../segments/2.0/{id}`` cannot tell an unknown segment from a wrong base
        URL (both answer 404, and SendGrid's bodies differ only in wording). The list endpoint
        answers 200 at every SendGrid base URL, with or without the segment, so ``False`` means
        SendGrid itself has no such segment. A 404 from it raises :class:`SendGridConfigError`.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        wanted = validation.segment_id(segment_id)
        try:
            segments = self.list_segments(ids=[wanted])
        except SendGridNotFoundError as error:
            settings = self._settings
            raise SendGridConfigError(
                f"Connection {settings.conn_id!r}: {settings.base_url} answered 404 for SendGrid's segment "
                "list, which every SendGrid API base URL serves: the host is not a SendGrid API base URL",
                method=error.method,
                path=error.path,
                status_code=error.status_code,
                details=error.details,
            ) from error
        return any(segment.get("id") == wanted for segment in segments)

    # --------------------------------------------------------------------------- single sends

    def create_single_send(
        self,
        name: str,
        *,
        segment_ids: list[str] | None = None,
        list_ids: list[str] | None = None,
        send_to_all: bool = False,
        email_config: Mapping[str, Any] | None = None,
        categories: list[str] | None = None,
    ) -> dict[str, Any]:
        """``POST /v3/marketing/singlesends``: a draft. Sent once, never retried: on failure
        look it up with :meth:`find_single_sends_by_name` before trying again.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        body: dict[str, Any] = {"name": validation.single_send_name(name)}
        send_to: dict[str, Any] = {}
        if segments := validation.single_send_segment_ids(segment_ids):
            send_to["segment_ids"] = segments
        if lists := validation.single_send_list_ids(list_ids):
            send_to["list_ids"] = lists
        if validation.flag("send_to_all", send_to_all):
            send_to["all"] = True
        if send_to:
            body["send_to"] = send_to
        if email_config is not None:
            if not isinstance(email_config, Mapping):
                raise SendGridInputError("email_config", email_config, "must be a mapping (dict)")
            body["email_config"] = dict(email_config)
        if names := validation.categories(categories):
            body["categories"] = names
        call = _Call("POST", SINGLE_SENDS_PATH, json=body, retry=_Retry.NEVER)
        return _json_object(call, self._request(call))

    def get_single_send(self, single_send_id: str) -> dict[str, Any]:
        """``GET /v3/marketing/singlesends/{id}``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        call = _Call("GET", f"{SINGLE_SENDS_PATH}/{validation.single_send_id(single_send_id)}")
        return _json_object(call, self._request(call))

    def list_single_sends(self) -> list[dict[str, Any]]:
        """``GET /v3/marketing/singlesends``, every page: summaries (``id``, ``name``, ``status``,
        ``send_at``, ...; not ``send_to``, which only :meth:`get_single_send` returns).

        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return list(self._pages(SINGLE_SENDS_PATH, SINGLE_SENDS_PAGE_SIZE))

    def _pages(self, path: str, page_size: int) -> Iterator[dict[str, Any]]:
        """Every item of a ``{"result": [...], "_metadata": {"next"}}`` list endpoint, page by page."""
        seen_tokens: set[str] = set()
        params: tuple[tuple[str, str], ...] = (("page_size", str(page_size)),)
        for _ in range(MAX_PAGES):
            call = _Call("GET", path, params=params)
            items, next_token = _single_send_page(call, self._request(call))
            yield from items
            if next_token is None or next_token in seen_tokens:
                break
            seen_tokens.add(next_token)
            params = (("page_size", str(page_size)), ("page_token", next_token))

    def find_single_sends_by_name(self, name: str) -> list[dict[str, Any]]:
        """Single Sends whose name is exactly ``name``, across all pages of the list endpoint.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        wanted = validation.single_send_name(name)
        return [item for item in self.list_single_sends() if item.get("name") == wanted]

    def schedule_single_send(
        self, single_send_id: str, send_at: str | datetime.datetime = "now"
    ) -> dict[str, Any]:
        """``PUT /v3/marketing/singlesends/{id}/schedule``: ``"now"`` or an aware datetime / ISO time.

        Retried only when the connection failed before anything was sent.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        path = f"{SINGLE_SENDS_PATH}/{validation.single_send_id(single_send_id)}/schedule"
        body = {"send_at": validation.send_at(send_at)}
        call = _Call("PUT", path, json=body, retry=_Retry.IF_NOTHING_SENT, empty_ok=True)
        return _json_object(call, self._request(call))

    # ------------------------------------------------------------------------------ contacts

    def get_field_definitions(self) -> dict[str, Any]:
        """``GET /v3/marketing/field_definitions``: ``{"custom_fields": [{id, name, field_type}],
        "reserved_fields": [{name, field_type, ...}]}``.

        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        call = _Call("GET", FIELD_DEFINITIONS_PATH)
        return _json_object(call, self._request(call))

    def create_field_definition(self, name: str, field_type: str) -> dict[str, Any]:
        """``POST /v3/marketing/field_definitions``: a custom field ``{id, name, field_type}``.

        ``field_type`` is ``Text``, ``Number`` or ``Date``. Sent once, never retried: on failure
        read :meth:`get_field_definitions` before trying again.
        :raises SendGridInputError: a bad name or type (before any request).
        """
        body = {"name": validation.custom_field_name(name), "field_type": validation.field_type(field_type)}
        call = _Call("POST", FIELD_DEFINITIONS_PATH, json=body, retry=_Retry.NEVER)
        return _json_object(call, self._request(call))

    def list_ids(self) -> set[str]:
        """Ids of every contact list: ``GET /v3/marketing/lists`` (1,000 per page, all pages).

        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return {str(item.get("id")) for item in self._pages(LISTS_PATH, LISTS_PAGE_SIZE)}

    def upsert_contacts(self, body: bytes) -> str:
        """``PUT /v3/marketing/contacts`` with an encoded body (see ``rules.batching``): the job id.

        Sent once, never retried here: the caller knows which batch it was and may resend only that
        one (upserts are idempotent by identifier).

        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        call = _Call("PUT", CONTACTS_PATH, content=body, retry=_Retry.NEVER)
        return _job_id(call, self._request(call), "job_id")

    def start_contacts_import(self, field_mappings: list[str | None], list_ids: list[str]) -> dict[str, Any]:
        """``PUT /v3/marketing/contacts/imports`` (CSV): ``{job_id, upload_uri, upload_headers}``.

        Sent once, never retried. Then PUT the file with :meth:`upload_contacts_file`.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        body: dict[str, Any] = {"file_type": "csv", "field_mappings": field_mappings}
        if list_ids:
            body["list_ids"] = list_ids
        call = _Call("PUT", f"{CONTACTS_PATH}/imports", json=body, retry=_Retry.NEVER)
        answer = _json_object(call, self._request(call))
        _job_id(call, answer, "job_id")
        if not isinstance(answer.get("upload_uri"), str):
            raise _shape_error(call, "an object with upload_uri", answer)
        return answer

    def upload_contacts_file(
        self, upload_uri: str, upload_headers: list[dict[str, str]], file: BinaryIO
    ) -> None:
        """PUT a CSV file (already gzipped if ``upload_headers`` ask for it) to an import's
        ``upload_uri``: streamed from ``file``, sent once, without the API key (a foreign URL).

        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        upload_file(upload_uri, upload_headers, file, timeout=self._settings.timeout)

    def get_import_status(self, job_id: str) -> dict[str, Any]:
        """``GET /v3/marketing/contacts/imports/{id}``: ``{id, status, results, ...}``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        call = _import_status_call(job_id)
        return _json_object(call, self._request(call))

    async def aget_import_status(self, job_id: str) -> dict[str, Any]:
        """Async :meth:`get_import_status`. Raises as :meth:`get_import_status`."""
        call = _import_status_call(job_id)
        return _json_object(call, await self._arequest(call))

    def start_contacts_export(
        self,
        *,
        segment_ids: list[str] | None = None,
        list_ids: list[str] | None = None,
        file_type: str = "csv",
        max_file_size: int | None = None,
    ) -> str:
        """``POST /v3/marketing/contacts/exports``: the export id. Sent once, never retried.

        :param file_type: ``csv`` or ``json``.
        :param max_file_size: MB per file (SendGrid's default 5000).

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        body: dict[str, Any] = {"file_type": file_type}
        if segment_ids:
            body["segment_ids"] = list(segment_ids)
        if list_ids:
            body["list_ids"] = list(list_ids)
        if max_file_size is not None:
            body["max_file_size"] = max_file_size
        call = _Call("POST", f"{CONTACTS_PATH}/exports", json=body, retry=_Retry.NEVER)
        return _job_id(call, self._request(call), "id")

    def list_contact_exports(self) -> list[dict[str, Any]]:
        """``GET /v3/marketing/contacts/exports``: recent exports ``[{id, status, created_at,
        expires_at, segments: [{ID, Name}], lists: [{ID, Name}], ...}]``.

        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        call = _Call("GET", f"{CONTACTS_PATH}/exports")
        items, _ = _single_send_page(call, self._request(call))
        return items

    def get_export_status(self, export_id: str) -> dict[str, Any]:
        """``GET /v3/marketing/contacts/exports/{id}``: ``{id, status, urls, contact_count, ...}``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        call = _export_status_call(export_id)
        return _json_object(call, self._request(call))

    async def aget_export_status(self, export_id: str) -> dict[str, Any]:
        """Async :meth:`get_export_status`. Raises as :meth:`get_export_status`."""
        call = _export_status_call(export_id)
        return _json_object(call, await self._arequest(call))

    def download_export_file(self, url: str, sink: BinaryIO) -> int:
        """GET one export URL into ``sink``, streamed in chunks, without the API key: bytes written.

        Idempotent, so retried per the hook's policy (a retry truncates ``sink`` first when it can).

        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return download_file(url, sink, timeout=self._settings.timeout, policy=self.retry_policy)

    # ------------------------------------------------------------------------------ utilities

    def test_connection(self) -> tuple[bool, str]:
        """Prove the API key **and** the base URL: ``GET /v3/marketing/segments/2.0?ids=<nil uuid>``.

        SendGrid answers that list read 200 (an empty list) for a working key at a right base URL;
        anything else is ``(False, message)`` naming the URL tried, what came back and what it
        means (401/403: the key or its scopes; 404: the base URL). Never includes the key.
        """
        # Any 2xx proves both, even one whose body got lost on the way.
        call = _Call("GET", SEGMENTS_PATH, params=(("ids", NIL_UUID),), retry=_Retry.NEVER, empty_ok=True)
        try:
            settings = self._settings  # a bad connection (no key, bad host or timeout) fails here
        except (SendGridError, SendGridInputError) as exc:
            return False, str(exc)
        url = httpx.URL(settings.base_url + call.path, params=call.params)
        try:
            self._request(call)
        except SendGridError as exc:
            meaning = _PROBE_FAILURES.get(exc.status_code, "SendGrid did not accept the test request")
            return False, f"{meaning}. Tried GET {url}: {exc}"
        return True, f"Connected to SendGrid at {settings.base_url}: the API key and the base URL work"

    # --------------------------------------------------------------------- request machinery

    def _request(self, call: _Call) -> Any:
        client = self._client
        server_wait = _ServerWait()
        for attempt in tenacity.Retrying(**self._retry_options(call, server_wait, self.retry_policy.sleep)):
            with attempt:
                started = time.monotonic()
                try:
                    response = client.request(
                        call.method,
                        call.path,
                        params=call.params or None,
                        json=call.json,
                        content=call.content,
                    )
                except httpx.RequestError as exc:
                    raise self._transport_error(call, exc, started, server_wait, self._settings) from exc
                return self._handle(call, response, started, server_wait)
        raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover

    async def _arequest(self, call: _Call) -> Any:
        settings = await self._asettings()
        client = shared_async_client(settings)
        slots = request_slots(client)
        server_wait = _ServerWait()
        options = self._retry_options(call, server_wait, self.retry_policy.async_sleep)
        async for attempt in tenacity.AsyncRetrying(**options):
            with attempt:
                started = time.monotonic()
                try:
                    async with slots:
                        response = await client.request(
                            call.method,
                            call.path,
                            params=call.params or None,
                            json=call.json,
                            content=call.content,
                        )
                except httpx.RequestError as exc:
                    raise self._transport_error(call, exc, started, server_wait, settings) from exc
                return self._handle(call, response, started, server_wait)
        raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover

    def _handle(self, call: _Call, response: httpx.Response, started: float, server_wait: _ServerWait) -> Any:
        """Log the answer; return its JSON on 2xx, else raise the typed error."""
        status = response.status_code
        # Reads are frequent (sensors poll); changes and failures are worth seeing at INFO.
        level = logging.DEBUG if call.method == "GET" and response.is_success else logging.INFO
        self.log.log(
            level, "SendGrid %s %s -> %s in %.0f ms", call.method, call.path, status, _elapsed_ms(started)
        )
        if response.is_success:
            server_wait.seconds = None
            return parse_json(call.method, call.path, status, response.content, empty_ok=call.empty_ok)
        now = self.retry_policy.clock()
        server_wait.seconds = requested_wait(response.headers, now, rate_limited=status == 429)
        reset_at = None
        if status == 429 and server_wait.seconds is not None:
            reset_at = datetime.datetime.fromtimestamp(now + server_wait.seconds, tz=datetime.timezone.utc)
        raise error_for_status(call.method, call.path, status, response.content, reset_at=reset_at)

    def _transport_error(
        self,
        call: _Call,
        exc: httpx.RequestError,
        started: float,
        server_wait: _ServerWait,
        settings: ConnectionSettings,
    ) -> SendGridTransportError | SendGridConfigError:
        server_wait.seconds = None  # no answer, so no wait was asked for: back off normally
        self.log.debug(
            "SendGrid %s %s -> %s after %.0f ms",
            call.method,
            call.path,
            type(exc).__name__,
            _elapsed_ms(started),
        )
        # httpx may quote the request headers (e.g. "Illegal header value b'Bearer ...'"): the
        # key must not reach this error, nor the chained httpx error a traceback would print.
        reason = redact(str(exc), settings.api_key) or "no details"
        if exc.args and reason != str(exc):
            exc.args = (reason, *exc.args[1:])
        if _speaks_no_tls(exc):  # no retry can help
            return SendGridConfigError(
                f"Connection {settings.conn_id!r}: the TLS handshake with {settings.base_url} failed "
                f"({reason}): the server does not speak TLS: if it serves plain HTTP (e.g. the "
                "emulator), write http:// in the host",
                method=call.method,
                path=call.path,
            )
        return SendGridTransportError(
            f"No answer from SendGrid at {_origin(exc)}: {type(exc).__name__}: {reason}",
            method=call.method,
            path=call.path,
        )

    def _retry_options(self, call: _Call, server_wait: _ServerWait, sleep: Any) -> dict[str, Any]:
        policy = (
            self.retry_policy
            if call.retry is not _Retry.NEVER
            else replace(self.retry_policy, max_attempts=1)
        )
        return {
            "stop": tenacity.stop_after_attempt(policy.max_attempts),
            "wait": lambda state: _next_wait(state.attempt_number, server_wait, policy),
            "retry": tenacity.retry_if_exception(lambda exc: _should_retry(call, exc, server_wait, policy)),
            "before_sleep": lambda state: self._log_retry(call, state, policy),
            "sleep": sleep,
            "reraise": True,
        }

    def _log_retry(self, call: _Call, state: tenacity.RetryCallState, policy: RetryPolicy) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(
            "SendGrid %s %s failed (attempt %d of %d): %s; retrying in %.1f s",
            call.method,
            call.path,
            state.attempt_number,
            policy.max_attempts,
            error,
            wait,
        )


# ------------------------------------------------------------------ pure helpers for the hook


# What a failed test_connection() probe means, by HTTP status (None: no answer at all).
_PROBE_FAILURES: dict[int | None, str] = {
    401: "SendGrid refused the API key: it is wrong, revoked or not a SendGrid key",
    403: "The API key lacks the Marketing Campaigns scopes this provider needs",
    404: "The base URL is wrong: nothing answers SendGrid's segment list there (check the host)",
    None: "No answer from the base URL (check the host, the port and the network)",
}


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _origin(exc: httpx.RequestError) -> str:
    """Scheme and host the failed request went to (never its headers)."""
    try:
        url = exc.request.url
    except RuntimeError:  # an error raised outside a request carries none
        return "SendGrid"
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _speaks_no_tls(exc: httpx.RequestError) -> bool:
    """Whether the connection failed because the server answered the TLS handshake in something
    else (plain HTTP): httpx's ConnectError caused, through httpcore's, by that ``ssl.SSLError``."""
    cause: BaseException | None = exc
    for _ in range(5):  # a chain is short; a cycle must not loop
        if cause is None:
            return False
        if isinstance(cause, ssl.SSLError):
            return isinstance(exc, httpx.ConnectError) and cause.reason in _PLAIN_HTTP_REASONS
        cause = cause.__cause__ or cause.__context__
    return False


def _should_retry(call: _Call, exc: BaseException, server_wait: _ServerWait, policy: RetryPolicy) -> bool:
    if call.retry is _Retry.NEVER:
        return False
    if call.retry is _Retry.IF_NOTHING_SENT:
        return isinstance(exc, SendGridTransportError) and isinstance(exc.__cause__, _NOTHING_SENT)
    if isinstance(exc, SendGridTransportError):
        return isinstance(exc.__cause__, _TRANSIENT)
    if isinstance(exc, SendGridResponseError):
        return True  # a truncated body; the GET can simply be repeated
    if (
        isinstance(exc, (SendGridRateLimitError, SendGridServerError))
        and exc.status_code in RETRYABLE_STATUSES
    ):
        # A reset further away than we are willing to sleep: give up now, the error has reset_at.
        return server_wait.seconds is None or server_wait.seconds <= policy.max_wait
    return False


def _next_wait(attempt: int, server_wait: _ServerWait, policy: RetryPolicy) -> float:
    if server_wait.seconds:
        return server_wait.seconds
    return backoff(attempt, policy)


def _list_segments_call(ids: object, parent_list_ids: object, no_parent_list_id: object) -> _Call:
    params: list[tuple[str, str]] = []
    # OpenAPI "form, explode" style: ?ids=a&ids=b.
    params += [("ids", segment_id) for segment_id in validation.segment_ids(ids) or []]
    if parents := validation.list_filter_ids(parent_list_ids):
        params.append(("parent_list_ids", ",".join(parents)))
    if validation.flag("no_parent_list_id", no_parent_list_id):
        params.append(("no_parent_list_id", "true"))
    return _Call("GET", SEGMENTS_PATH, params=tuple(params))


def _get_segment_call(segment_id: object, contacts_sample: object) -> _Call:
    sample = "true" if validation.flag("contacts_sample", contacts_sample) else "false"
    return _Call(
        "GET", f"{SEGMENTS_PATH}/{validation.segment_id(segment_id)}", params=(("contacts_sample", sample),)
    )


def _shape_error(call: _Call, expected: str, payload: Any) -> SendGridResponseError:
    return SendGridResponseError(
        f"SendGrid answered with {type(payload).__name__}, expected {expected}",
        method=call.method,
        path=call.path,
    )


def _json_object(call: _Call, payload: Any) -> dict[str, Any]:
    if payload is None and call.empty_ok:
        return {}
    if not isinstance(payload, dict):
        raise _shape_error(call, "a JSON object", payload)
    return payload


def _objects(call: _Call, items: list[Any]) -> list[dict[str, Any]]:
    if not all(isinstance(item, dict) for item in items):
        raise _shape_error(call, "a list of JSON objects", items)
    return items


def _segment_list(call: _Call, payload: Any) -> list[dict[str, Any]]:
    """Accept both ``{"results": [...]}`` (what SendGrid sends) and a bare list (what its spec says)."""
    if isinstance(payload, dict) and isinstance(payload.get("results"), list):
        return _objects(call, payload["results"])
    if isinstance(payload, list):
        return _objects(call, payload)
    raise _shape_error(call, 'a list or {"results": [...]}', payload)


def _single_send_page(call: _Call, payload: Any) -> tuple[list[dict[str, Any]], str | None]:
    """Items and the next ``page_token`` (read from ``_metadata.next``; we never follow its host)."""
    if not isinstance(payload, dict):
        raise _shape_error(call, 'a {"result": [...]} object', payload)
    items = payload.get("result", payload.get("results", []))
    if not isinstance(items, list):
        raise _shape_error(call, 'a {"result": [...]} object', payload)
    metadata = payload.get("_metadata")
    next_url = metadata.get("next") if isinstance(metadata, dict) else None
    token = httpx.URL(next_url).params.get("page_token") if isinstance(next_url, str) and next_url else None
    return _objects(call, items), token or None


def _job_id(call: _Call, payload: Any, key: str) -> str:
    """The job id of a 2xx answer that starts a job (``{"job_id"}`` or ``{"id"}``)."""
    value = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value:
        raise _shape_error(call, f'an object with "{key}"', payload)
    return value


def _import_status_call(job_id: object) -> _Call:
    return _Call("GET", f"{CONTACTS_PATH}/imports/{validation.job_id(job_id)}")


def _export_status_call(export_id: object) -> _Call:
    return _Call("GET", f"{CONTACTS_PATH}/exports/{validation.job_id(export_id)}")
