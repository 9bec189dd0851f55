"""``SendGridMarketingHook``: the provider's only HTTP boundary to SendGrid Marketing Campaigns.

Requests are typed objects (``rules/requests.py``) that validate their arguments when built: the
hook sends them as they are (:meth:`SendGridMarketingHook.run` / ``arun``), and its named methods
(``create_segment`` ...) build them for direct callers. Each request's :class:`Call` goes through
``_request`` (sync) or ``_arequest`` (async), which share the retry decisions, logging and error
mapping; only the ``await`` differs. The request shapes SendGrid's JSON into its result.

Retries (``hooks/_retry.py``; the table: docs/hook.md, "Retries"): reads, PATCH and DELETE are
retried on 429/5xx/transport errors/cut-short JSON; the other writes only after a 429 (SendGrid
did nothing; the schedule PUT also when the connection failed before anything was sent), never
after a 5xx or a lost answer: the caller re-reads server state (e.g. ``find_segments_by_name``).
The refresh is never retried (its 429 is the quota). Each attempt takes at most the connection's
``timeout`` in all.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any, BinaryIO

import httpx
import tenacity

from airflow_provider_sgseg.exceptions import (
    SendGridConfigError,
    SendGridError,
    SendGridInputError,
    SendGridNotFoundError,
    SendGridResponseError,
    SendGridTransportError,
)
from airflow_provider_sgseg.get_provider_info import DEFAULT_CONN_ID
from airflow_provider_sgseg.hooks import _connection_form
from airflow_provider_sgseg.hooks._async_pool import (
    MAX_CONCURRENT_ASYNC_REQUESTS,
    aclose_shared_clients,
    request_slots,
    shared_async_client,
)
from airflow_provider_sgseg.hooks._body import DEFAULT_MAX_RESPONSE_BYTES, Body, aread_body, read_body
from airflow_provider_sgseg.hooks._deadline import bounded_client, deadline
from airflow_provider_sgseg.hooks._errors import error_for_status, parse_json, text_body
from airflow_provider_sgseg.hooks._retry import NO_RETRY, Attempts, RetryPolicy
from airflow_provider_sgseg.hooks._settings import CONN_TYPE, ConnectionSettings, redact
from airflow_provider_sgseg.hooks._transfer import download_file, upload_file
from airflow_provider_sgseg.rules.limits import MAX_IDS_PER_LIST
from airflow_provider_sgseg.rules.limits import MAX_PAGES as MAX_PAGES
from airflow_provider_sgseg.rules.requests import (
    CONTACTS_PATH,
    LISTS_PAGE_SIZE,
    LISTS_PATH,
    SEGMENTS_PATH,
    SINGLE_SENDS_PAGE_SIZE,
    SINGLE_SENDS_PATH,
    Call,
    CreateFieldDefinition,
    CreateSegment,
    CreateSingleSend,
    DeleteSegment,
    ExportContacts,
    ExportSingleSendStats,
    FindSegmentsByName,
    FindSingleSendsByName,
    GetExportStatus,
    GetFieldDefinitions,
    GetImportStatus,
    GetSegment,
    GetSingleSend,
    GetSingleSendLinkStats,
    GetSingleSendStats,
    ImportContacts,
    ListPage,
    ListSegments,
    ListSingleSendStats,
    RefreshSegment,
    Request,
    ResultT,
    Retry,
    ScheduleSingleSend,
    SegmentExists,
    StatsPage,
    UpdateSegment,
    UpsertContacts,
    answer_limit,
)
from airflow_provider_sgseg.version_compat import AIRFLOW_V_3_2_PLUS, BaseHook, aget_connection

__all__ = [
    "MAX_CONCURRENT_ASYNC_REQUESTS",
    "NO_RETRY",
    "RetryPolicy",
    "SendGridMarketingHook",
    "aclose_shared_clients",
]


NIL_UUID = "00000000-0000-0000-0000-000000000000"

# OpenSSL's reasons for a TLS handshake answered in plain HTTP (the second from OpenSSL 3.2 on).
_PLAIN_HTTP_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"})


class SendGridMarketingHook(BaseHook):
    """Talks to SendGrid Marketing Campaigns (Segments V2, Single Sends) for one Airflow connection.

    :param sendgrid_conn_id: Airflow connection of type ``sendgrid_marketing``: host (default
        ``https://api.sendgrid.com``; ``https://api.eu.sendgrid.com`` for EU subusers; a trailing
        ``/v3`` is dropped, anything else but a base URL refused: see ``hooks/_settings.py``), password =
        API key, extras ``on_behalf_of`` (subuser) and ``timeout`` (seconds).
    :param retry: retry policy for idempotent requests (default :class:`RetryPolicy`).
    :param exact_named_waits: sit out a wait SendGrid names (``Retry-After``, a 429's
        ``X-RateLimit-Reset``) exactly, without the policy's jitter. The triggers' hooks do: a
        wait in the triggerer lasts until the named reset, so waits refused together return together.
    :param max_response_bytes: the most bytes of one JSON answer read (default 32 MiB): a larger
        2xx answer is a ``SendGridResponseError`` naming this limit (retried like a malformed
        answer); an error answer is quoted from its first bytes. Export downloads have their own
        bound (``max_bytes``).

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
    default_conn_name = DEFAULT_CONN_ID
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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: httpx.MockTransport | None = None,
        exact_named_waits: bool = False,
    ) -> None:
        super().__init__()
        self.sendgrid_conn_id = sendgrid_conn_id
        self.retry_policy = retry or RetryPolicy()
        self.exact_named_waits = exact_named_waits
        self.max_response_bytes = answer_limit(max_response_bytes)
        self._async_settings: ConnectionSettings | None = None
        # 0.2.0's test seam (deprecated, removed in 1.0): this hook's own clients on ``transport``.
        self._transport = transport
        self._own_async_client: httpx.AsyncClient | None = None
        if transport is not None:
            from airflow_provider_sgseg._deprecated import warn_renamed

            warn_renamed("SendGridMarketingHook(transport=...)", "respx or httpx mocking in tests")

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

    @property
    def base_url(self) -> str:
        """The connection's API base URL, ``scheme://host[:port]`` (no secret: a host with user
        info is refused). Reads the connection on first use.

        :raises SendGridConfigError: the connection has no API key or a bad host.
        :raises SendGridInputError: the connection's ``timeout`` extra is not a positive number.
        """
        return self._settings.base_url

    @cached_property
    def _client(self) -> httpx.Client:
        return bounded_client(transport=self._transport, **self._settings.client_options())

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
        settings = await self._asettings()
        if self._transport is None:
            return shared_async_client(settings)
        if self._own_async_client is None:
            self._own_async_client = httpx.AsyncClient(transport=self._transport, **settings.client_options())
        return self._own_async_client

    def close(self) -> None:
        """Close the sync client if it was built. Shared async clients: ``aclose_shared_clients``."""
        if "_client" in self.__dict__:
            self._client.close()
            del self.__dict__["_client"]

    # ----------------------------------------------------------------------- typed requests

    def run(self, request: Request[ResultT]) -> ResultT:
        """Send a typed request (:mod:`airflow_provider_sgseg.rules.requests`), validated when it
        was built, and return its result. Operators build their requests before any hook exists;
        the named methods below build them for direct callers.

        :raises SendGridError: SendGrid's refusal or a failure (class docstring, "Errors"); POSTs
            and other job-starting calls are sent once (again only after a 429).
        """
        call = request.call()
        return request.result(call, self._request(call))

    async def arun(self, request: Request[ResultT]) -> ResultT:
        """Async :meth:`run`, on the connection's shared ``httpx.AsyncClient``. Raises as :meth:`run`."""
        call = request.call()
        return request.result(call, await self._arequest(call))

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
        return self.run(ListSegments(ids, parent_list_ids, no_parent_list_id))

    async def alist_segments(
        self,
        ids: list[str] | None = None,
        parent_list_ids: list[str] | str | None = None,
        no_parent_list_id: bool = False,
    ) -> list[dict[str, Any]]:
        """Async :meth:`list_segments`. Raises as :meth:`list_segments`."""
        return await self.arun(ListSegments(ids, parent_list_ids, no_parent_list_id))

    def get_segment(self, segment_id: str, contacts_sample: bool = True) -> dict[str, Any]:
        """``GET /v3/marketing/segments/2.0/{id}``; an unknown id raises ``SendGridNotFoundError``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(GetSegment(segment_id, contacts_sample))

    async def aget_segment(self, segment_id: str, contacts_sample: bool = True) -> dict[str, Any]:
        """Async :meth:`get_segment`. Raises as :meth:`get_segment`."""
        return await self.arun(GetSegment(segment_id, contacts_sample))

    def create_segment(
        self, name: str, query_dsl: str, parent_list_ids: list[str] | str | None = None
    ) -> dict[str, Any]:
        """``POST /v3/marketing/segments/2.0``. Sent once (again only after a 429): on a transport or server
        error, look the segment up with :meth:`find_segments_by_name` before trying again.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(CreateSegment(name, query_dsl, parent_list_ids))

    def update_segment(
        self, segment_id: str, name: str | None = None, query_dsl: str | None = None
    ) -> dict[str, Any]:
        """``PATCH /v3/marketing/segments/2.0/{id}`` with the name and/or query given.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(UpdateSegment(segment_id, name, query_dsl))

    def delete_segment(self, segment_id: str) -> None:
        """``DELETE /v3/marketing/segments/2.0/{id}``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        self.run(DeleteSegment(segment_id))

    def refresh_segment(self, segment_id: str, user_time_zone: str) -> dict[str, Any]:
        """``POST /v3/marketing/segments/2.0/refresh/{id}``: spends one manual refresh; ``{"job_id"}``.

        Sent once, never retried (a retry could spend a second refresh of the daily quota).

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridRateLimitError: a refresh quota is used up (429, ``reset_at``).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(RefreshSegment(segment_id, user_time_zone))

    def find_segments_by_name(self, name: str) -> list[dict[str, Any]]:
        """Segments whose name is exactly ``name`` (SendGrid keeps names unique: 0 or 1), from
        ``GET /v3/marketing/segments/2.0``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(FindSegmentsByName(name))

    def segment_exists(self, segment_id: str) -> bool:
        """Whether SendGrid has the segment: ``GET /v3/marketing/segments/2.0?ids={id}``.

        A 404 from ``GET .../segments/2.0/{id}`` cannot tell an unknown segment from a wrong base
        URL (both answer 404, and SendGrid's bodies differ only in wording). The list endpoint
        answers 200 at every SendGrid base URL, with or without the segment, so ``False`` means
        SendGrid itself has no such segment. A 404 from it raises :class:`SendGridConfigError`.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        request = SegmentExists(segment_id)
        try:
            return self.run(request)
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
        """``POST /v3/marketing/singlesends``: a draft. Sent once (again only after a 429): on failure
        look it up with :meth:`find_single_sends_by_name` before trying again.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(CreateSingleSend(name, segment_ids, list_ids, send_to_all, email_config, categories))

    def get_single_send(self, single_send_id: str) -> dict[str, Any]:
        """``GET /v3/marketing/singlesends/{id}``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(GetSingleSend(single_send_id))

    def list_single_sends(self) -> list[dict[str, Any]]:
        """``GET /v3/marketing/singlesends``, every page: summaries (``id``, ``name``, ``status``,
        ``send_at``, ...; not ``send_to``, which only :meth:`get_single_send` returns).

        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return list(self._pages(SINGLE_SENDS_PATH, SINGLE_SENDS_PAGE_SIZE))

    def _pages(self, path: str, page_size: int | None) -> Iterator[dict[str, Any]]:
        """Every item of a ``{"result": [...], "_metadata": {"next"}}`` list endpoint, page by page
        (``page_size`` None: the endpoint takes none, e.g. the exports list)."""
        seen_tokens: set[str] = set()
        token: str | None = None
        for _ in range(MAX_PAGES):
            items, token = self.run(ListPage(path, page_size, token))
            yield from items
            if token is None or token in seen_tokens:
                break
            seen_tokens.add(token)

    def find_single_sends_by_name(self, name: str) -> list[dict[str, Any]]:
        """Single Sends whose name is exactly ``name``, across all pages of
        ``GET /v3/marketing/singlesends``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        lookup = FindSingleSendsByName(name)
        return lookup.matches(self._pages(SINGLE_SENDS_PATH, SINGLE_SENDS_PAGE_SIZE))

    def schedule_single_send(
        self, single_send_id: str, send_at: str | datetime.datetime = "now"
    ) -> dict[str, Any]:
        """``PUT /v3/marketing/singlesends/{id}/schedule``: ``"now"`` or an aware datetime / ISO time.

        Retried only after a 429 or when the connection failed before anything was sent.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(ScheduleSingleSend(single_send_id, send_at))

    # ------------------------------------------------------------------------------ contacts

    def get_field_definitions(self) -> dict[str, Any]:
        """``GET /v3/marketing/field_definitions``: ``{"custom_fields": [{id, name, field_type}],
        "reserved_fields": [{name, field_type, ...}]}``.

        :raises SendGridError: any refusal or failure (class docstring, "Errors").
        """
        return self.run(GetFieldDefinitions())

    def create_field_definition(self, name: str, field_type: str) -> dict[str, Any]:
        """``POST /v3/marketing/field_definitions``: a custom field ``{id, name, field_type}``.

        ``field_type`` is ``Text``, ``Number`` or ``Date``. Sent once (again only after a 429): on failure
        read :meth:`get_field_definitions` before trying again.

        :raises SendGridInputError: a bad name or type, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(CreateFieldDefinition(name, field_type))

    def list_ids(self) -> set[str]:
        """Ids of every contact list: ``GET /v3/marketing/lists`` (1,000 per page, all pages).

        :raises SendGridError: any refusal or failure (class docstring, "Errors").
        """
        return {str(item.get("id")) for item in self._pages(LISTS_PATH, LISTS_PAGE_SIZE)}

    def upsert_contacts(self, body: bytes) -> str:
        """``PUT /v3/marketing/contacts`` with an encoded body (see ``rules.batching``): the job id.

        Sent once (again only after a 429) here: the caller knows which batch it was and may resend only that
        one (upserts are idempotent by identifier).

        :raises SendGridInputError: an empty body, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(UpsertContacts(body))

    def start_contacts_import(
        self, field_mappings: list[str | None], list_ids: list[str] | None = None
    ) -> dict[str, Any]:
        """``PUT /v3/marketing/contacts/imports`` (CSV): ``{job_id, upload_uri, upload_headers}``.

        Sent once (again only after a 429). Then PUT the file with :meth:`upload_contacts_file`.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(ImportContacts(field_mappings, list_ids))

    def upload_contacts_file(
        self, upload_uri: str, upload_headers: list[dict[str, str]], file: BinaryIO
    ) -> None:
        """PUT a CSV file (already gzipped if ``upload_headers`` ask for it) to an import's
        ``upload_uri``: streamed from ``file``, sent once, without the API key (a foreign URL).

        :raises SendGridError: any refusal or failure (class docstring, "Errors").
        """
        upload_file(upload_uri, upload_headers, file, timeout=self._settings.timeout)

    def get_import_status(self, job_id: str) -> dict[str, Any]:
        """``GET /v3/marketing/contacts/imports/{id}``: ``{id, status, results, ...}``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(GetImportStatus(job_id))

    async def aget_import_status(self, job_id: str) -> dict[str, Any]:
        """Async :meth:`get_import_status`. Raises as :meth:`get_import_status`."""
        return await self.arun(GetImportStatus(job_id))

    def start_contacts_export(
        self,
        *,
        segment_ids: list[str] | None = None,
        list_ids: list[str] | None = None,
        file_type: str = "csv",
        max_file_size: int | None = None,
    ) -> str:
        """``POST /v3/marketing/contacts/exports``: the export id. Sent once (again only after a 429).

        :param file_type: ``csv`` or ``json``.
        :param max_file_size: MB per file (SendGrid's default 5000).

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(ExportContacts(segment_ids, list_ids, file_type, max_file_size))

    def list_contact_exports(self) -> list[dict[str, Any]]:
        """``GET /v3/marketing/contacts/exports``, every page (``_metadata.next``): recent exports
        ``[{id, status, created_at, expires_at, segments: [{ID, Name}], lists: [{ID, Name}], ...}]``.

        :raises SendGridError: any refusal or failure (class docstring, "Errors").
        """
        return list(self._pages(f"{CONTACTS_PATH}/exports", None))

    def get_export_status(self, export_id: str) -> dict[str, Any]:
        """``GET /v3/marketing/contacts/exports/{id}``: ``{id, status, urls, contact_count, ...}``.

        :raises SendGridInputError: a bad argument, before any request.
        :raises SendGridNotFoundError: SendGrid does not know the id (404).
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(GetExportStatus(export_id))

    async def aget_export_status(self, export_id: str) -> dict[str, Any]:
        """Async :meth:`get_export_status`. Raises as :meth:`get_export_status`."""
        return await self.arun(GetExportStatus(export_id))

    def download_export_file(self, url: str, sink: BinaryIO, *, max_bytes: int | None = None) -> int:
        """GET one export URL into ``sink``, streamed in chunks, without the API key: bytes written
        (gunzipped when served ``Content-Encoding: gzip``), at most ``max_bytes`` (None: unbounded).

        Idempotent, so retried per the hook's policy (a retry truncates ``sink`` first when it can).

        :raises SendGridFileURLError: the file host refused the URL (expired: read the export again).
        :raises SendGridFileError: the file exceeds ``max_bytes``.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return download_file(
            url, sink, timeout=self._settings.timeout, policy=self.retry_policy, max_bytes=max_bytes
        )

    # ------------------------------------------------------------------------------ utilities

    def test_connection(self) -> tuple[bool, str]:
        """Prove the API key **and** the base URL: ``GET /v3/marketing/segments/2.0?ids=<nil uuid>``.

        SendGrid answers that list read 200 (an empty list) for a working key at a right base URL;
        anything else is ``(False, message)`` naming the URL tried, what came back and what it
        means (401/403: the key or its scopes; 404: the base URL). Never includes the key.
        """
        # Any 2xx proves both, even one whose body got lost on the way.
        call = Call("GET", SEGMENTS_PATH, params=(("ids", NIL_UUID),), retry=Retry.NEVER, empty_ok=True)
        try:
            settings = self._settings  # a bad connection (no key, bad host or timeout) fails here
        except (SendGridError, SendGridInputError) as exc:
            return False, str(exc)
        url = httpx.URL(settings.base_url + call.path, params=call.params)
        try:
            self._request(call)
        except SendGridConfigError as exc:  # e.g. TLS to a plain-HTTP server: the error says why
            return False, f"{exc}. Tried GET {url}"
        except SendGridError as exc:
            meaning = _PROBE_FAILURES.get(exc.status_code, "SendGrid did not accept the test request")
            return False, f"{meaning}. Tried GET {url}: {exc}"
        return True, f"Connected to SendGrid at {settings.base_url}: the API key and the base URL work"

    # ---------------------------------------------------------------------- Single Send stats

    def stats_pages(self, first: Request[StatsPage]) -> Iterator[dict[str, Any]]:
        """Every ``results`` row of a stats request (:class:`ListSingleSendStats`,
        :class:`GetSingleSendStats`, :class:`GetSingleSendLinkStats`), page by page: each next
        request is ``first`` with the ``page_token`` of ``_metadata.next``.

        :raises SendGridError: any refusal or failure (class docstring, "Errors").
        """
        request, seen = first, set()
        for _ in range(MAX_PAGES):
            rows, token = self.run(request)
            yield from rows
            if token is None or token in seen:
                return
            seen.add(token)
            request = replace(request, page_token=token)  # type: ignore[type-var]

    def list_single_send_stats(self, single_send_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """``GET /v3/marketing/stats/singlesends``: all-time ``total`` rows (``ab_variation`` and
        ``ab_phase`` ``"all"``) of the given Single Sends, 25 ids per request, every page (None:
        every Single Send). :raises SendGridInputError: an id that is not a UUID (the request checks)."""
        ids = list(dict.fromkeys(single_send_ids or []))
        batches = [ids[start : start + MAX_IDS_PER_LIST] for start in range(0, len(ids), MAX_IDS_PER_LIST)]
        rows: list[dict[str, Any]] = []
        for batch in batches or [[]]:
            rows.extend(self.stats_pages(ListSingleSendStats(batch)))
        return rows

    def get_single_send_stats(
        self,
        single_send_id: str,
        *,
        start_date: str | datetime.date,
        end_date: str | datetime.date,
        aggregated_by: str = "total",
        timezone: str = "UTC",
        group_by: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """``GET /v3/marketing/stats/singlesends/{id}``, every page (arguments as
        :class:`GetSingleSendStats`). :raises SendGridNotFoundError: unknown id (404)."""
        request = GetSingleSendStats(
            single_send_id, start_date, end_date, aggregated_by, timezone, tuple(group_by)
        )
        return list(self.stats_pages(request))

    async def aget_single_send_stats(self, request: GetSingleSendStats) -> list[dict[str, Any]]:
        """Async :meth:`get_single_send_stats` for a built request (every page)."""
        rows, seen = [], set()
        for _ in range(MAX_PAGES):
            page, token = await self.arun(request)
            rows.extend(page)
            if token is None or token in seen:
                break
            seen.add(token)
            request = replace(request, page_token=token)
        return rows

    def get_single_send_link_stats(
        self,
        single_send_id: str,
        *,
        group_by: Sequence[str] = (),
        ab_variation_id: str | None = None,
        ab_phase_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /v3/marketing/stats/singlesends/{id}/links``, every page (arguments as
        :class:`GetSingleSendLinkStats`). :raises SendGridNotFoundError: unknown id (404)."""
        request = GetSingleSendLinkStats(single_send_id, tuple(group_by), ab_variation_id, ab_phase_id)
        return list(self.stats_pages(request))

    def export_single_send_stats(self, single_send_ids: Sequence[str], timezone: str = "UTC") -> str:
        """``GET /v3/marketing/stats/singlesends/export``: SendGrid's CSV of all-time totals as text,
        a header line then one line per known Single Send (``Single Send ID``, ``Single Send
        Name`` and the counts: requests, delivered, opens, clicks, ... as whole numbers), for 1 to 50
        ``single_send_ids``; ``timezone`` (IANA name) changes only how dates are shown. At most
        1 MiB (``rules.limits.MAX_STATS_EXPORT_BYTES``). A read: retried per the hook's policy.

        :raises SendGridInputError: no id, more than 50, a bad id or time zone, before any request.
        :raises SendGridResponseError: an empty answer (after the retries) or one over 1 MiB.
        :raises SendGridError: any other refusal or failure (class docstring, "Errors").
        """
        return self.run(ExportSingleSendStats(single_send_ids, timezone))

    async def aget_single_send(self, single_send_id: str) -> dict[str, Any]:
        """Async :meth:`get_single_send`."""
        return await self.arun(GetSingleSend(single_send_id))

    # --------------------------------------------------------------------- request machinery

    def _request(self, call: Call) -> Any:
        settings = self._settings
        client = self._client
        attempts = Attempts(call.retry, self.retry_policy, exact_named_waits=self.exact_named_waits)
        for attempt in tenacity.Retrying(**self._retry_options(call, attempts, self.retry_policy.sleep)):
            with attempt:
                started = time.monotonic()
                try:
                    with deadline(settings.timeout):
                        response = client.send(_build(client, call), stream=True)
                        try:
                            body = read_body(response, self.max_response_bytes)
                        finally:
                            response.close()
                except httpx.RequestError as exc:
                    raise self._transport_error(call, exc, started, attempts, settings) from exc
                return self._handle(call, response, body, started, attempts)
        raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover

    async def _arequest(self, call: Call) -> Any:
        settings = await self._asettings()
        client = await self.aget_conn()
        slots = request_slots(client)
        attempts = Attempts(call.retry, self.retry_policy, exact_named_waits=self.exact_named_waits)
        options = self._retry_options(call, attempts, self.retry_policy.async_sleep)
        async for attempt in tenacity.AsyncRetrying(**options):
            with attempt:
                started = time.monotonic()
                try:
                    async with slots:
                        response, body = await asyncio.wait_for(self._afetch(client, call), settings.timeout)
                except asyncio.TimeoutError:
                    late = httpx.ReadTimeout(
                        f"no whole answer within the connection timeout ({settings.timeout:g} s)"
                    )
                    raise self._transport_error(call, late, started, attempts, settings) from late
                except httpx.RequestError as exc:
                    raise self._transport_error(call, exc, started, attempts, settings) from exc
                return self._handle(call, response, body, started, attempts)
        raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover

    async def _afetch(self, client: httpx.AsyncClient, call: Call) -> tuple[httpx.Response, Body]:
        response = await client.send(_build(client, call), stream=True)
        try:
            return response, await aread_body(response, self.max_response_bytes)
        finally:
            await response.aclose()

    def _handle(
        self, call: Call, response: httpx.Response, body: Body, started: float, attempts: Attempts
    ) -> Any:
        """Log the answer; return its JSON on 2xx, else raise the typed error."""
        status = response.status_code
        # Reads are frequent (sensors poll); changes and failures are worth seeing at INFO.
        level = logging.DEBUG if call.method == "GET" and response.is_success else logging.INFO
        self.log.log(
            level, "SendGrid %s %s -> %s in %.0f ms", call.method, call.path, status, _elapsed_ms(started)
        )
        if response.is_success:
            attempts.named = None
            if not body.complete:
                raise SendGridResponseError(
                    f"SendGrid's answer is larger than {self.max_response_bytes} bytes (the hook's "
                    "max_response_bytes); not read further",
                    method=call.method,
                    path=call.path,
                    status_code=status,
                )
            if call.text:
                content_type = response.headers.get("content-type", "")
                return text_body(call.method, call.path, status, body.content, content_type)
            return parse_json(call.method, call.path, status, body.content, empty_ok=call.empty_ok)
        where = f"SendGrid {call.method} {call.path}"
        reset_at = attempts.refused(response.headers, status, self.retry_policy.clock(), self.log, where)
        raise error_for_status(call.method, call.path, status, body.content, reset_at=reset_at)

    def _transport_error(
        self,
        call: Call,
        exc: httpx.RequestError,
        started: float,
        attempts: Attempts,
        settings: ConnectionSettings,
    ) -> SendGridTransportError | SendGridConfigError:
        attempts.named = None  # no answer, so no wait was asked for: back off normally
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

    def _retry_options(self, call: Call, attempts: Attempts, sleep: Any) -> dict[str, Any]:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self.log.warning(
                "SendGrid %s %s failed (attempt %d of %d): %s; retrying in %.1f s",
                call.method,
                call.path,
                state.attempt_number,
                self.retry_policy.max_attempts,
                error,
                attempts.wait,
            )

        return attempts.options(sleep, before_sleep)


# ------------------------------------------------------------------ pure helpers for the hook


# What a failed test_connection() probe means, by HTTP status (None: no answer at all).
_PROBE_FAILURES: dict[int | None, str] = {
    401: "SendGrid refused the API key: it is wrong, revoked or not a SendGrid key",
    403: "The API key lacks the Marketing Campaigns scopes this provider needs",
    404: "The base URL is wrong: nothing answers SendGrid's segment list there (check the host)",
    None: "No answer from the base URL (check the host, the port and the network)",
}


def _build(client: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
    return client.build_request(
        call.method, call.path, params=call.params or None, json=call.json, content=call.content
    )


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


def __getattr__(name: str) -> Any:
    """0.2.0's connection defaults (deprecated, removed in 1.0): see ``_deprecated.HOOK_CONSTANTS``."""
    from airflow_provider_sgseg._deprecated import HOOK_CONSTANTS, moved_names

    return moved_names(__name__, HOOK_CONSTANTS)(name)
