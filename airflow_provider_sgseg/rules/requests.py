"""Typed SendGrid requests: validated once, when built; sent by the hook as they are.

Each class is one SendGrid endpoint. Building one checks every argument with
:mod:`airflow_provider_sgseg.rules.validation` and raises
:class:`~airflow_provider_sgseg.exceptions.SendGridInputError` naming the bad value and the rule,
so an instance always holds normalised, valid values. Operators build their requests before any
hook exists (a bad rendered value costs no connection lookup and no request) and hand them to
:meth:`SendGridMarketingHook.run <airflow_provider_sgseg.hooks.marketing.SendGridMarketingHook.run>`,
which trusts them. The hook's named methods (``create_segment(name, query_dsl)`` ...) build the
same requests for callers that use the hook directly.

A request describes its HTTP call (:class:`Call`: method, path, query, body, retry class) and
turns SendGrid's JSON answer into its result (:meth:`Request.result`), raising
:class:`~airflow_provider_sgseg.exceptions.SendGridResponseError` for a 2xx body of the wrong
shape. No I/O here.
"""

from __future__ import annotations

import abc
import datetime
import enum
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from airflow_provider_sgseg.exceptions import ErrorDetail, SendGridInputError, SendGridResponseError
from airflow_provider_sgseg.rules import stats as stats_rules
from airflow_provider_sgseg.rules import validation
from airflow_provider_sgseg.rules.limits import LISTS_PAGE_SIZE as LISTS_PAGE_SIZE
from airflow_provider_sgseg.rules.limits import (
    MAX_IDS_PER_EXPORT,
    MAX_IDS_PER_LIST,
    MAX_STATS_EXPORT_BYTES,
    MAX_UPSERT_BYTES,
    STATS_PAGE_SIZE,
)
from airflow_provider_sgseg.rules.limits import SINGLE_SENDS_PAGE_SIZE as SINGLE_SENDS_PAGE_SIZE

SEGMENTS_PATH = "/v3/marketing/segments/2.0"
SINGLE_SENDS_PATH = "/v3/marketing/singlesends"
CONTACTS_PATH = "/v3/marketing/contacts"
FIELD_DEFINITIONS_PATH = "/v3/marketing/field_definitions"
LISTS_PATH = "/v3/marketing/lists"

ResultT = TypeVar("ResultT")


class Retry(enum.Enum):
    """Which failures of a call the hook may send it again after (the rule and its waits:
    ``hooks/_retry.py``; the table: docs/hook.md, "Retries")."""

    IDEMPOTENT = "idempotent"  # GET, PATCH, DELETE: 429, 5xx, transport errors, cut answers
    SENT_ONCE = "sent once"  # POSTs, job-starting PUTs: again only after a 429 (SendGrid did nothing)
    IF_NOTHING_SENT = "if nothing sent"  # schedule PUT: again after a 429 or a connection that failed first
    NEVER = "never"  # the segment refresh (its 429 is the quota) and test_connection's probe


@dataclass(frozen=True)
class Call:
    """One HTTP call to SendGrid, described before it is sent.

    ``path`` is relative to the connection's base URL; ``params`` are query pairs in order;
    ``json`` or ``content`` (an already encoded body, e.g. measured against a size limit) is the
    body; ``empty_ok`` says a 2xx without a body is success (else it is an answer cut short);
    ``text`` says the 2xx body is text, not JSON (the stats CSV export): the result gets a ``str``.
    """

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    json: Any = None
    content: bytes | None = None
    retry: Retry = Retry.IDEMPOTENT
    empty_ok: bool = False
    text: bool = False

    def __post_init__(self) -> None:
        api_path(self.path)


class Request(abc.ABC, Generic[ResultT]):
    """A validated request to one SendGrid endpoint.

    Subclasses are frozen dataclasses whose list fields are stored as tuples and mapping fields
    as read-only views, so a built request cannot change. Building one raises
    :class:`~airflow_provider_sgseg.exceptions.SendGridInputError` (naming the argument and the
    rule) for any value SendGrid would refuse and the client can tell.
    """

    @abc.abstractmethod
    def call(self) -> Call:
        """The HTTP call that carries this request."""

    @abc.abstractmethod
    def result(self, call: Call, payload: Any) -> ResultT:
        """The result from SendGrid's parsed 2xx JSON ``payload`` (``None`` for an empty body).

        :raises SendGridResponseError: the body is not the documented shape.
        """


class ObjectRequest(Request[dict[str, Any]]):
    """A request whose answer is one JSON object (``{}`` for an empty body where allowed)."""

    def result(self, call: Call, payload: Any) -> dict[str, Any]:
        return json_object(call, payload)


class ResourceRequest(Request[dict[str, Any]]):
    """A request whose answer is one SendGrid resource: a JSON object with a string ``id``."""

    def result(self, call: Call, payload: Any) -> dict[str, Any]:
        return resource(call, payload)


def _normalise(request: object, **values: object) -> None:
    """Store validated values on a frozen dataclass while it is being built, frozen all the way
    down (lists as tuples, mappings as read-only copies): nothing can change them afterwards."""
    for name, value in values.items():
        object.__setattr__(request, name, _frozen(value))


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(item) for item in value)
    return value


def json_value(value: Any) -> Any:
    """A JSON-ready copy of a frozen value (read-only mappings as dicts, tuples as lists)."""
    if isinstance(value, Mapping):
        return {key: json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(item) for item in value]
    return value


def _json_object_argument(name: str, value: object) -> Mapping[str, Any]:
    """A mapping that JSON carries as it is: string keys; strings, finite numbers, booleans,
    null, lists and objects as values."""
    if not isinstance(value, Mapping):
        raise SendGridInputError(name, value, "must be a mapping (dict)")
    plain = json_value(value)
    try:
        same = json.loads(json.dumps(plain, allow_nan=False)) == plain
    except (TypeError, ValueError):
        same = False
    if not same:
        raise SendGridInputError(name, value, "must hold JSON values only, under string keys")
    return value


def answer_limit(max_response_bytes: object) -> int:
    """The hook's ``max_response_bytes``: a positive whole number of bytes.

    :raises SendGridInputError: anything else, naming the value.
    """
    return validation.positive_int("max_response_bytes", max_response_bytes, "bytes")


def api_path(path: object) -> str:
    """A path on the connection's SendGrid host (``/v3/...``): never a URL, so a request can never
    carry the API key elsewhere, and never one an HTTP client would rewrite (``.``/``..``
    segments, a query or fragment, control characters or spaces).

    :raises SendGridInputError: anything else.
    """
    rule = "must be a SendGrid API path starting with /v3/"
    if not isinstance(path, str) or not path.startswith("/v3/"):
        raise SendGridInputError("path", path, rule)
    segments = path.split("/")[1:]
    if any(segment in ("", ".", "..") for segment in segments[:-1]) or segments[-1] in (".", ".."):
        raise SendGridInputError("path", path, f"{rule}, without empty, '.' or '..' segments")
    if any(char in "?#\\" or char.isspace() or not char.isprintable() for char in path):
        raise SendGridInputError(
            "path", path, f"{rule}, without a query, fragment, spaces or control characters"
        )
    return path


# ------------------------------------------------------------------------------ segments


@dataclass(frozen=True)
class ListSegments(Request[list[dict[str, Any]]]):
    """``GET /v3/marketing/segments/2.0``: segment summaries (no ``query_dsl``, no sample).

    :param ids: only these segment ids (UUIDs; one id may be given as a string).
    :param parent_list_ids: only segments of these lists (UUIDs, at most 50; a comma-separated
        string is accepted).
    :param no_parent_list_id: only segments of all contacts.
    """

    ids: Sequence[str] | None = None
    parent_list_ids: Sequence[str] | None = None
    no_parent_list_id: bool = False

    def __post_init__(self) -> None:
        _normalise(
            self,
            ids=validation.segment_ids(self.ids),
            parent_list_ids=validation.list_filter_ids(self.parent_list_ids),
            no_parent_list_id=validation.flag("no_parent_list_id", self.no_parent_list_id),
        )

    def call(self) -> Call:
        # OpenAPI "form, explode" style: ?ids=a&ids=b.
        params = [("ids", segment_id) for segment_id in self.ids or []]
        if self.parent_list_ids:
            params.append(("parent_list_ids", ",".join(self.parent_list_ids)))
        if self.no_parent_list_id:
            params.append(("no_parent_list_id", "true"))
        return Call("GET", SEGMENTS_PATH, params=tuple(params))

    def result(self, call: Call, payload: Any) -> list[dict[str, Any]]:
        # SendGrid answers {"results": [...]}; its spec says a bare list. Both are accepted.
        if isinstance(payload, dict) and isinstance(payload.get("results"), list):
            return _objects(call, payload["results"])
        if isinstance(payload, list):
            return _objects(call, payload)
        raise shape_error(call, 'a list or {"results": [...]}', payload)


@dataclass(frozen=True)
class FindSegmentsByName(Request[list[dict[str, Any]]]):
    """Segments whose name is exactly ``name`` (SendGrid keeps names unique: 0 or 1), read from
    ``GET /v3/marketing/segments/2.0``."""

    name: str

    def __post_init__(self) -> None:
        _normalise(self, name=validation.segment_name(self.name))

    def call(self) -> Call:
        return ListSegments().call()

    def result(self, call: Call, payload: Any) -> list[dict[str, Any]]:
        return [item for item in ListSegments().result(call, payload) if item.get("name") == self.name]


@dataclass(frozen=True)
class SegmentExists(Request[bool]):
    """Whether SendGrid has the segment: ``GET /v3/marketing/segments/2.0?ids={segment_id}``."""

    segment_id: str

    def __post_init__(self) -> None:
        _normalise(self, segment_id=validation.segment_id(self.segment_id))

    def call(self) -> Call:
        return ListSegments(ids=[self.segment_id]).call()

    def result(self, call: Call, payload: Any) -> bool:
        return any(item.get("id") == self.segment_id for item in ListSegments().result(call, payload))


@dataclass(frozen=True)
class GetSegment(ResourceRequest):
    """``GET /v3/marketing/segments/2.0/{segment_id}``: the segment, with ``contacts_sample``
    (up to 50 contacts) unless ``contacts_sample=False``."""

    segment_id: str
    contacts_sample: bool = True

    def __post_init__(self) -> None:
        _normalise(
            self,
            segment_id=validation.segment_id(self.segment_id),
            contacts_sample=validation.flag("contacts_sample", self.contacts_sample),
        )

    def call(self) -> Call:
        sample = "true" if self.contacts_sample else "false"
        return Call("GET", f"{SEGMENTS_PATH}/{self.segment_id}", params=(("contacts_sample", sample),))


@dataclass(frozen=True)
class CreateSegment(ResourceRequest):
    """``POST /v3/marketing/segments/2.0``: the new segment. Sent once (again only after a
    429: ``Retry.SENT_ONCE``).

    :param name: 1..100 characters, unique in the account.
    :param query_dsl: SendGrid's SQL-like segment query.
    :param parent_list_ids: the list the segment filters (UUIDs; SendGrid takes at most one).
    """

    name: str
    query_dsl: str
    parent_list_ids: Sequence[str] | None = None

    def __post_init__(self) -> None:
        _normalise(
            self,
            name=validation.segment_name(self.name),
            query_dsl=validation.query_dsl(self.query_dsl),
            parent_list_ids=validation.parent_list_ids(self.parent_list_ids),
        )

    def call(self) -> Call:
        body: dict[str, Any] = {"name": self.name, "query_dsl": self.query_dsl}
        if self.parent_list_ids:
            body["parent_list_ids"] = list(self.parent_list_ids)
        return Call("POST", SEGMENTS_PATH, json=body, retry=Retry.SENT_ONCE)


@dataclass(frozen=True)
class UpdateSegment(ResourceRequest):
    """``PATCH /v3/marketing/segments/2.0/{segment_id}``: a new name and/or query (one is needed)."""

    segment_id: str
    name: str | None = None
    query_dsl: str | None = None

    def __post_init__(self) -> None:
        _normalise(
            self,
            segment_id=validation.segment_id(self.segment_id),
            name=None if self.name is None else validation.segment_name(self.name),
            query_dsl=None if self.query_dsl is None else validation.query_dsl(self.query_dsl),
        )
        if self.name is None and self.query_dsl is None:
            raise SendGridInputError("update", None, "give a new name, a new query_dsl or both")

    def call(self) -> Call:
        body = {key: value for key, value in (("name", self.name), ("query_dsl", self.query_dsl)) if value}
        return Call("PATCH", f"{SEGMENTS_PATH}/{self.segment_id}", json=body)


@dataclass(frozen=True)
class DeleteSegment(Request[None]):
    """``DELETE /v3/marketing/segments/2.0/{segment_id}`` (204, no body)."""

    segment_id: str

    def __post_init__(self) -> None:
        _normalise(self, segment_id=validation.segment_id(self.segment_id))

    def call(self) -> Call:
        return Call("DELETE", f"{SEGMENTS_PATH}/{self.segment_id}", empty_ok=True)

    def result(self, call: Call, payload: Any) -> None:
        return None


@dataclass(frozen=True)
class RefreshSegment(ObjectRequest):
    """``POST /v3/marketing/segments/2.0/refresh/{segment_id}``: spends one manual refresh;
    ``{"job_id"}`` (or ``{}`` for an empty 202). Sent once, never retried.

    :param user_time_zone: IANA zone whose midnight resets the segment's daily quota.
    """

    segment_id: str
    user_time_zone: str

    def __post_init__(self) -> None:
        _normalise(
            self,
            segment_id=validation.segment_id(self.segment_id),
            user_time_zone=validation.time_zone(self.user_time_zone),
        )

    def call(self) -> Call:
        body = {"user_time_zone": self.user_time_zone}
        path = f"{SEGMENTS_PATH}/refresh/{self.segment_id}"
        return Call("POST", path, json=body, retry=Retry.NEVER, empty_ok=True)


# --------------------------------------------------------------------------- single sends


@dataclass(frozen=True)
class CreateSingleSend(ResourceRequest):
    """``POST /v3/marketing/singlesends``: a draft. Sent once
    (``Retry.SENT_ONCE``).

    :param segment_ids: up to 10 segment UUIDs; ``list_ids`` up to 50 list UUIDs.
    :param send_to_all: send to every contact.
    :param email_config: SendGrid's ``email_config`` object, sent as given.
    :param categories: up to 10 names.
    """

    name: str
    segment_ids: Sequence[str] | None = None
    list_ids: Sequence[str] | None = None
    send_to_all: bool = False
    email_config: Mapping[str, Any] | None = None
    categories: Sequence[str] | None = None

    def __post_init__(self) -> None:
        _normalise(
            self,
            name=validation.single_send_name(self.name),
            segment_ids=validation.single_send_segment_ids(self.segment_ids),
            list_ids=validation.single_send_list_ids(self.list_ids),
            send_to_all=validation.flag("send_to_all", self.send_to_all),
            email_config=None
            if self.email_config is None
            else _json_object_argument("email_config", self.email_config),
            categories=validation.categories(self.categories) or None,
        )

    def call(self) -> Call:
        body: dict[str, Any] = {"name": self.name}
        send_to: dict[str, Any] = {}
        if self.segment_ids:
            send_to["segment_ids"] = list(self.segment_ids)
        if self.list_ids:
            send_to["list_ids"] = list(self.list_ids)
        if self.send_to_all:
            send_to["all"] = True
        if send_to:
            body["send_to"] = send_to
        if self.email_config is not None:
            body["email_config"] = json_value(self.email_config)
        if self.categories:
            body["categories"] = list(self.categories)
        return Call("POST", SINGLE_SENDS_PATH, json=body, retry=Retry.SENT_ONCE)


@dataclass(frozen=True)
class FindSingleSendsByName:
    """Single Sends whose name is exactly ``name``, picked from the summaries of every page of
    ``GET /v3/marketing/singlesends`` (the hook reads the pages: :class:`ListPage`)."""

    name: str

    def __post_init__(self) -> None:
        _normalise(self, name=validation.single_send_name(self.name))

    def matches(self, single_sends: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The Single Sends among ``single_sends`` named exactly ``name``."""
        return [item for item in single_sends if item.get("name") == self.name]


@dataclass(frozen=True)
class GetSingleSend(ResourceRequest):
    """``GET /v3/marketing/singlesends/{single_send_id}``: the Single Send, with ``send_to``."""

    single_send_id: str

    def __post_init__(self) -> None:
        _normalise(self, single_send_id=validation.single_send_id(self.single_send_id))

    def call(self) -> Call:
        return Call("GET", f"{SINGLE_SENDS_PATH}/{self.single_send_id}")


@dataclass(frozen=True)
class ScheduleSingleSend(ObjectRequest):
    """``PUT /v3/marketing/singlesends/{single_send_id}/schedule``: ``{"send_at", "status"}``.

    Sent once; again only after a 429 or a connection that failed first (``Retry.IF_NOTHING_SENT``).

    :param send_at: ``"now"``, an aware datetime or an ISO 8601 time with an offset (sent as
        ``YYYY-MM-DDTHH:MM:SSZ``).
    """

    single_send_id: str
    send_at: str | datetime.datetime = "now"

    def __post_init__(self) -> None:
        _normalise(
            self,
            single_send_id=validation.single_send_id(self.single_send_id),
            send_at=validation.send_at(self.send_at),
        )

    def call(self) -> Call:
        path = f"{SINGLE_SENDS_PATH}/{self.single_send_id}/schedule"
        return Call("PUT", path, json={"send_at": self.send_at}, retry=Retry.IF_NOTHING_SENT, empty_ok=True)


@dataclass(frozen=True)
class ListPage(Request[tuple[list[dict[str, Any]], str | None]]):
    """One page of a ``{"result": [...], "_metadata": {"next"}}`` list endpoint (Single Sends,
    lists, exports): its items and the next ``page_token`` (``None`` on the last page)."""

    path: str
    page_size: int | None = None
    page_token: str | None = None

    def __post_init__(self) -> None:
        api_path(self.path)
        size = self.page_size
        if size is not None and (
            isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1000
        ):
            raise SendGridInputError("page_size", size, "must be an integer from 1 to 1000")
        if self.page_token is not None and not (isinstance(self.page_token, str) and self.page_token):
            raise SendGridInputError("page_token", self.page_token, "must be a non-empty string")

    def call(self) -> Call:
        params: list[tuple[str, str]] = []
        if self.page_size is not None:
            params.append(("page_size", str(self.page_size)))
        if self.page_token is not None:
            params.append(("page_token", self.page_token))
        return Call("GET", self.path, params=tuple(params))

    def result(self, call: Call, payload: Any) -> tuple[list[dict[str, Any]], str | None]:
        if not isinstance(payload, dict):
            raise shape_error(call, 'a {"result": [...]} object', payload)
        items = payload.get("result", payload.get("results", []))
        if not isinstance(items, list):
            raise shape_error(call, 'a {"result": [...]} object', payload)
        return _objects(call, items), next_page_token(payload)


@dataclass(frozen=True)
class SingleSendsPage(Request[tuple[list[dict[str, Any]], str | None, int | None]]):
    """One page of ``GET /v3/marketing/singlesends`` (100 per page): its items, the next
    ``page_token`` (``None`` on the last page) and ``_metadata.count``, the Single Sends in the
    account (``None`` when SendGrid leaves it out)."""

    page_token: str | None = None

    def call(self) -> Call:
        return ListPage(SINGLE_SENDS_PATH, SINGLE_SENDS_PAGE_SIZE, self.page_token).call()

    def result(self, call: Call, payload: Any) -> tuple[list[dict[str, Any]], str | None, int | None]:
        items, token = ListPage(SINGLE_SENDS_PATH).result(call, payload)
        metadata = payload.get("_metadata")
        count = metadata.get("count") if isinstance(metadata, dict) else None
        return items, token, count if isinstance(count, int) and not isinstance(count, bool) else None


# ------------------------------------------------------------------------------ contacts


@dataclass(frozen=True)
class GetFieldDefinitions(ObjectRequest):
    """``GET /v3/marketing/field_definitions``: ``{"custom_fields": [{id, name, field_type}],
    "reserved_fields": [{name, field_type, ...}]}``."""

    def call(self) -> Call:
        return Call("GET", FIELD_DEFINITIONS_PATH)


@dataclass(frozen=True)
class CreateFieldDefinition(ResourceRequest):
    """``POST /v3/marketing/field_definitions``: a custom field ``{id, name, field_type}``.
    Sent once (``Retry.SENT_ONCE``).

    :param field_type: ``Text``, ``Number`` or ``Date``.
    """

    name: str
    field_type: str

    def __post_init__(self) -> None:
        _normalise(
            self,
            name=validation.custom_field_name(self.name),
            field_type=validation.field_type(self.field_type),
        )

    def call(self) -> Call:
        body = {"name": self.name, "field_type": self.field_type}
        return Call("POST", FIELD_DEFINITIONS_PATH, json=body, retry=Retry.SENT_ONCE)


@dataclass(frozen=True)
class UpsertContacts(Request[str]):
    """``PUT /v3/marketing/contacts`` with a body already encoded and measured against SendGrid's
    limits (see :mod:`~airflow_provider_sgseg.rules.batching`): the job id. Sent once
    (``Retry.SENT_ONCE``)."""

    body: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.body, bytes) or not self.body:
            raise SendGridInputError(
                "body", type(self.body).__name__, "must be a non-empty encoded JSON body"
            )
        if len(self.body) > MAX_UPSERT_BYTES:
            rule = f"must be at most {MAX_UPSERT_BYTES:,} bytes (SendGrid's limit); got {len(self.body):,}"
            raise SendGridInputError("body", f"<{len(self.body):,} bytes>", rule)

    def call(self) -> Call:
        return Call("PUT", CONTACTS_PATH, content=self.body, retry=Retry.SENT_ONCE)

    def result(self, call: Call, payload: Any) -> str:
        return job_id(call, payload, "job_id")


@dataclass(frozen=True)
class ImportContacts(ObjectRequest):
    """``PUT /v3/marketing/contacts/imports`` (CSV): ``{job_id, upload_uri, upload_headers}``.
    Sent once (``Retry.SENT_ONCE``).

    :param field_mappings: per CSV column, a field id (reserved fields by name, custom fields by
        id) or ``None`` to skip the column.
    :param list_ids: lists to add the contacts to (UUIDs).
    """

    field_mappings: Sequence[str | None]
    list_ids: Sequence[str] | None = None

    def __post_init__(self) -> None:
        mappings = self.field_mappings
        if isinstance(mappings, (str, bytes)) or not isinstance(mappings, Sequence) or not mappings:
            raise SendGridInputError(
                "field_mappings", mappings, "must be a non-empty list of field ids or None"
            )
        if not all(item is None or (isinstance(item, str) and item) for item in mappings):
            raise SendGridInputError("field_mappings", mappings, "each item is a field id or None")
        _normalise(
            self,
            field_mappings=list(mappings),
            list_ids=validation.contact_list_ids(self.list_ids) if self.list_ids else None,
        )

    def call(self) -> Call:
        body: dict[str, Any] = {"file_type": "csv", "field_mappings": list(self.field_mappings)}
        if self.list_ids:
            body["list_ids"] = list(self.list_ids)
        return Call("PUT", f"{CONTACTS_PATH}/imports", json=body, retry=Retry.SENT_ONCE)

    def result(self, call: Call, payload: Any) -> dict[str, Any]:
        answer = json_object(call, payload)
        job_id(call, answer, "job_id")
        if not isinstance(answer.get("upload_uri"), str):
            raise shape_error(call, "an object with upload_uri", answer)
        if not _upload_headers_ok(answer.get("upload_headers")):
            # Their values are not quoted: a pre-signed upload's headers may carry a credential.
            raise SendGridResponseError(
                "SendGrid answered upload_headers that are not a list of {header, value} in printable ASCII",
                method=call.method,
                path=call.path,
            )
        return answer


# An HTTP header's name (RFC 9110 token) and value (visible ASCII, spaces and tabs): the upload
# sends what SendGrid names, so anything else would fail there untyped (or split the header).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")


def _upload_headers_ok(headers: object) -> bool:
    """Whether an import's ``upload_headers`` are absent or ``[{"header", "value"}]`` fit to send."""
    if headers is None:
        return True
    return isinstance(headers, list) and all(
        isinstance(item, Mapping)
        and isinstance(item.get("header"), str)
        and isinstance(item.get("value"), str)
        and _HEADER_NAME.fullmatch(item["header"]) is not None
        and _HEADER_VALUE.fullmatch(item["value"]) is not None
        for item in headers
    )


@dataclass(frozen=True)
class GetImportStatus(ObjectRequest):
    """``GET /v3/marketing/contacts/imports/{job_id}``: ``{id, status, results, ...}`` (also the
    status of an upsert's job)."""

    job_id: str

    def __post_init__(self) -> None:
        _normalise(self, job_id=validation.job_id(self.job_id))

    def call(self) -> Call:
        return Call("GET", f"{CONTACTS_PATH}/imports/{self.job_id}")


@dataclass(frozen=True)
class ExportContacts(Request[str]):
    """``POST /v3/marketing/contacts/exports``: the export id. Sent
    once (``Retry.SENT_ONCE``).

    :param segment_ids: segments whose members to export (UUIDs); ``list_ids`` lists (UUIDs).
    :param file_type: ``csv`` or ``json``.
    :param max_file_size: MB per file; ``None`` for SendGrid's default (5000).
    """

    segment_ids: Sequence[str] | None = None
    list_ids: Sequence[str] | None = None
    file_type: str = "csv"
    max_file_size: int | None = None

    def __post_init__(self) -> None:
        _normalise(
            self,
            segment_ids=validation.export_segment_ids(self.segment_ids),
            list_ids=validation.contact_list_ids(self.list_ids),
            file_type=validation.export_file_type(self.file_type),
            max_file_size=validation.max_file_size(self.max_file_size),
        )

    def call(self) -> Call:
        body: dict[str, Any] = {"file_type": self.file_type}
        if self.segment_ids:
            body["segment_ids"] = list(self.segment_ids)
        if self.list_ids:
            body["list_ids"] = list(self.list_ids)
        if self.max_file_size is not None:
            body["max_file_size"] = self.max_file_size
        return Call("POST", f"{CONTACTS_PATH}/exports", json=body, retry=Retry.SENT_ONCE)

    def result(self, call: Call, payload: Any) -> str:
        return job_id(call, payload, "id")


@dataclass(frozen=True)
class GetExportStatus(ObjectRequest):
    """``GET /v3/marketing/contacts/exports/{export_id}``: ``{id, status, urls, contact_count, ...}``."""

    export_id: str

    def __post_init__(self) -> None:
        _normalise(self, export_id=validation.job_id(self.export_id, "export_id"))

    def call(self) -> Call:
        return Call("GET", f"{CONTACTS_PATH}/exports/{self.export_id}")

    def result(self, call: Call, payload: Any) -> dict[str, Any]:
        answer = json_object(call, payload)
        urls = answer.get("urls")
        ready = str(answer.get("status") or "").lower() == "ready"
        if ready and not (isinstance(urls, list) and all(isinstance(url, str) for url in urls)):
            # Read as "no files", a ready export without its urls would succeed with nothing.
            raise shape_error(call, 'a ready export with "urls" as a list of URLs', answer)
        return answer


# ------------------------------------------------------------------------ answer shapes


def shape_error(call: Call, expected: str, payload: Any) -> SendGridResponseError:
    """The error for a 2xx answer whose JSON is not the documented shape."""
    return SendGridResponseError(
        f"SendGrid answered with {type(payload).__name__}, expected {expected}",
        method=call.method,
        path=call.path,
    )


def json_object(call: Call, payload: Any) -> dict[str, Any]:
    """A JSON object answer (``{}`` for an empty body where the call allows one); an object that
    carries SendGrid's ``{"errors": [...]}`` is a refusal in a 2xx, never a result."""
    if payload is None and call.empty_ok:
        return {}
    if not isinstance(payload, dict):
        raise shape_error(call, "a JSON object", payload)
    errors = payload.get("errors")
    if isinstance(errors, list) and errors:
        raise SendGridResponseError(
            'SendGrid answered 2xx with an {"errors": [...]} body instead of a result',
            method=call.method,
            path=call.path,
            details=[ErrorDetail(message=json.dumps(item)) for item in errors],
        )
    return payload


def resource(call: Call, payload: Any) -> dict[str, Any]:
    """A JSON object answer that is one SendGrid resource: it has a non-empty string ``id``."""
    answer = json_object(call, payload)
    job_id(call, answer, "id")
    return answer


def job_id(call: Call, payload: Any, key: str) -> str:
    """The job id of a 2xx answer that starts a job (``{"job_id"}`` or ``{"id"}``)."""
    value = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value:
        raise shape_error(call, f'an object with "{key}"', payload)
    return value


def next_page_token(payload: dict[str, Any]) -> str | None:
    """The ``page_token`` of a list answer's ``_metadata.next`` URL (None on the last page). Only
    the token is taken: the hook never follows that URL's host."""
    metadata = payload.get("_metadata")
    next_url = metadata.get("next") if isinstance(metadata, dict) else None
    if not isinstance(next_url, str) or not next_url:
        return None
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(next_url).query).get("page_token", [None])[0]
    return token or None


def _objects(call: Call, items: list[Any]) -> list[dict[str, Any]]:
    if not all(isinstance(item, dict) for item in items):
        raise shape_error(call, "a list of JSON objects", items)
    return items


# --------------------------------------------------------------------- Single Send stats

STATS_PATH = "/v3/marketing/stats/singlesends"
StatsPage = tuple[list[dict[str, Any]], str | None]


def _stats_page_size(size: object) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= STATS_PAGE_SIZE:
        raise SendGridInputError("page_size", size, f"must be an integer from 1 to {STATS_PAGE_SIZE}")


def _page_token(token: object) -> None:
    if token is not None and not (isinstance(token, str) and token):
        raise SendGridInputError("page_token", token, "must be a non-empty string")


def _paging(page_size: int, page_token: str | None) -> list[tuple[str, str]]:
    return [("page_size", str(page_size)), *([("page_token", page_token)] if page_token else [])]


def stats_page(call: Call, payload: Any) -> StatsPage:
    """The ``results`` of one stats page and the next ``page_token`` (None on the last page)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise shape_error(call, 'a {"results": [...]} object', payload)
    return _objects(call, payload["results"]), next_page_token(payload)


class _StatsRequest(Request[StatsPage]):
    def result(self, call: Call, payload: Any) -> StatsPage:
        return stats_page(call, payload)


@dataclass(frozen=True)
class ListSingleSendStats(_StatsRequest):
    """``GET /v3/marketing/stats/singlesends``: one page of all-time ``total`` rows (``ab_variation``
    and ``ab_phase`` ``"all"``), for up to 25 ``single_send_ids`` (none: every Single Send).

    :raises SendGridInputError: an id that is not a UUID, more than 25 ids, a bad page size/token.
    """

    single_send_ids: Sequence[str] = ()
    page_size: int = STATS_PAGE_SIZE
    page_token: str | None = None

    def __post_init__(self) -> None:
        ids = validation.single_send_ids(self.single_send_ids, "singlesend_ids", MAX_IDS_PER_LIST)
        _stats_page_size(self.page_size)
        _page_token(self.page_token)
        _normalise(self, single_send_ids=ids)

    def call(self) -> Call:
        ids = [("singlesend_ids", ",".join(self.single_send_ids))] if self.single_send_ids else []
        return Call("GET", STATS_PATH, params=(*ids, *_paging(self.page_size, self.page_token)))


@dataclass(frozen=True)
class GetSingleSendStats(_StatsRequest):
    """``GET /v3/marketing/stats/singlesends/{id}``: one page of rows, ``aggregated_by`` ``"total"``
    or ``"day"`` (dates ``YYYY-MM-DD`` in ``timezone``) between ``start_date`` and ``end_date``
    (both included; SendGrid's defaults are 2021-01-01 and 2021-12-31, so always give both), per
    A/B variation and/or phase when ``group_by`` names them.

    :raises SendGridInputError: a bad id, aggregation, date, time zone, ``group_by`` or page.
    """

    single_send_id: str
    start_date: str | datetime.date
    end_date: str | datetime.date
    aggregated_by: str = "total"
    timezone: str = "UTC"
    group_by: Sequence[str] = ()
    page_size: int = STATS_PAGE_SIZE
    page_token: str | None = None

    def __post_init__(self) -> None:
        start = stats_rules.stats_date(self.start_date, "start_date")
        end = stats_rules.stats_date(self.end_date, "end_date")
        if start > end:
            raise SendGridInputError("start_date", start, f"must not be after end_date ({end})")
        _stats_page_size(self.page_size)
        _page_token(self.page_token)
        _normalise(
            self,
            single_send_id=validation.single_send_id(self.single_send_id),
            start_date=start,
            end_date=end,
            aggregated_by=validation.aggregated_by(self.aggregated_by),
            timezone=validation.time_zone(self.timezone, "timezone"),
            group_by=validation.stats_group_by(self.group_by),
        )

    def call(self) -> Call:
        params = [
            ("aggregated_by", str(self.aggregated_by)),
            ("start_date", str(self.start_date)),
            ("end_date", str(self.end_date)),
            ("timezone", self.timezone),
            *([("group_by", ",".join(self.group_by))] if self.group_by else []),
            *_paging(self.page_size, self.page_token),
        ]
        return Call("GET", f"{STATS_PATH}/{self.single_send_id}", params=tuple(params))


@dataclass(frozen=True)
class GetSingleSendLinkStats(_StatsRequest):
    """``GET /v3/marketing/stats/singlesends/{id}/links``: one page of ``{"url", "url_location",
    "ab_variation", "ab_phase", "clicks"}`` rows (links nobody clicked are absent), per A/B
    variation and/or phase when ``group_by`` names them, optionally for one ``ab_variation_id``
    or ``ab_phase_id`` (``"test"``/``"send"``).

    :raises SendGridInputError: a bad id, ``group_by``, variation id, phase or page.
    """

    single_send_id: str
    group_by: Sequence[str] = ()
    ab_variation_id: str | None = None
    ab_phase_id: str | None = None
    page_size: int = STATS_PAGE_SIZE
    page_token: str | None = None

    def __post_init__(self) -> None:
        _stats_page_size(self.page_size)
        _page_token(self.page_token)
        variation = self.ab_variation_id
        _normalise(
            self,
            single_send_id=validation.single_send_id(self.single_send_id),
            group_by=validation.stats_group_by(self.group_by),
            ab_variation_id=None if variation is None else validation.uuid(variation, "ab_variation_id"),
            ab_phase_id=None if self.ab_phase_id is None else validation.ab_phase(self.ab_phase_id),
        )

    def call(self) -> Call:
        params = [
            *([("group_by", ",".join(self.group_by))] if self.group_by else []),
            *([("ab_variation_id", self.ab_variation_id)] if self.ab_variation_id else []),
            *([("ab_phase_id", self.ab_phase_id)] if self.ab_phase_id else []),
            *_paging(self.page_size, self.page_token),
        ]
        return Call("GET", f"{STATS_PATH}/{self.single_send_id}/links", params=tuple(params))


@dataclass(frozen=True)
class ExportSingleSendStats(Request[str]):
    """``GET /v3/marketing/stats/singlesends/export``: SendGrid's CSV of all-time totals, one line
    per Single Send after a header line, for 1 to 50 ``single_send_ids``; dates shown in
    ``timezone`` (which changes only their format).

    The spec types the 200 body as a JSON string holding the CSV while SendGrid documents it as
    plain CSV text; the hook reads both (by the answer's Content-Type). An answer over
    :data:`~airflow_provider_sgseg.rules.limits.MAX_STATS_EXPORT_BYTES` is refused.

    :raises SendGridInputError: no id, more than 50, an id that is not a UUID, a bad time zone.
    """

    single_send_ids: Sequence[str]
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        ids = validation.single_send_ids(self.single_send_ids, "single_send_ids", MAX_IDS_PER_EXPORT)
        if not ids:
            rule = f"must name 1 to {MAX_IDS_PER_EXPORT} Single Sends"
            raise SendGridInputError("single_send_ids", self.single_send_ids, rule)
        _normalise(self, single_send_ids=ids, timezone=validation.time_zone(self.timezone, "timezone"))

    def call(self) -> Call:
        params = (("ids", ",".join(self.single_send_ids)), ("timezone", self.timezone))
        return Call("GET", f"{STATS_PATH}/export", params=params, text=True)

    def result(self, call: Call, payload: Any) -> str:
        if not isinstance(payload, str):
            raise shape_error(call, "CSV text", payload)
        size = len(payload.encode())
        if size > MAX_STATS_EXPORT_BYTES:
            raise SendGridResponseError(
                f"SendGrid answered with {size} bytes of CSV, more than the {MAX_STATS_EXPORT_BYTES} "
                "bytes the totals of 50 Single Sends can take",
                method=call.method,
                path=call.path,
            )
        return payload
