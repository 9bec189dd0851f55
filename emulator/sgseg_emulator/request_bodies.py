"""Request bodies declared from the SendGrid OpenAPI files, and their check (pure, no I/O).

Each body is a ``TypedDict`` read by pydantic: field names, types, required fields, string
lengths, array sizes and enums as the spec's request schema gives them (a test compares every
declaration here with the vendored spec). :func:`checked` validates a body against one and
raises SendGrid's 400 ``{"errors": [{"field", "message"}]}`` naming each bad field; rules the
spec cannot express (unique names, UUID format, lists that exist...) stay with the resources.

Every bound here is the emulator's own copy of SendGrid's (the emulator is the oracle the
provider is tested against), deliberately not imported from the provider.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, with_config
from typing_extensions import NotRequired, TypedDict

from .contact_rules import MAX_CONTACTS_PER_UPSERT
from .errors import FieldErrors
from .field_definitions import FieldType

# Own copy: every name in these bodies (segment, list, field, Single Send) is 1 to 100 characters.
NAME_LENGTH = (1, 100)
Name = Annotated[str, StringConstraints(min_length=NAME_LENGTH[0], max_length=NAME_LENGTH[1])]
MAX_INT64 = 2**63 - 1
# No coercion: a number where the spec says string is refused, as SendGrid does.
strict = with_config(ConfigDict(strict=True))


@strict
class SegmentCreate(TypedDict):
    """``POST /v3/marketing/segments/2.0`` (spec: ``SegmentWriteV2``)."""

    name: Name
    query_dsl: str
    parent_list_ids: NotRequired[list[str] | None]


@strict
class SegmentUpdate(TypedDict, total=False):
    """``PATCH /v3/marketing/segments/2.0/{segment_id}`` (spec: ``segment_update``)."""

    name: Name
    query_dsl: str


@strict
class NameOnly(TypedDict):
    """``POST /v3/marketing/lists`` and ``PATCH /v3/marketing/field_definitions/{custom_field_id}``."""

    name: Name


@strict
class FieldDefinitionCreate(TypedDict):
    """``POST /v3/marketing/field_definitions``."""

    name: Name
    field_type: FieldType


@strict
class ExportNotifications(TypedDict, total=False):
    """``notifications`` of an export request."""

    email: bool


@strict
class ExportCreate(TypedDict, total=False):
    """``POST /v3/marketing/contacts/exports`` (every field optional; no body = {})."""

    list_ids: list[str]
    segment_ids: list[str]
    notifications: ExportNotifications
    file_type: Literal["csv", "json"]
    # The spec sets no bound; the emulator's: what a 64-bit integer holds (SQLite's range).
    max_file_size: Annotated[int, Field(le=MAX_INT64)]


@strict
class ImportCreate(TypedDict):
    """``PUT /v3/marketing/contacts/imports``."""

    list_ids: NotRequired[list[str] | None]
    file_type: Literal["csv"]
    field_mappings: Annotated[list[str | None], Field(min_length=1)]


@strict
class ContactsUpsert(TypedDict):
    """``PUT /v3/marketing/contacts``. Each contact's fields are ``contact_rules``' to check: a bad
    one is refused by field name with the ContactRequest limits."""

    list_ids: NotRequired[list[str] | None]
    contacts: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_CONTACTS_PER_UPSERT)]


@strict
class SendTo(TypedDict, total=False):
    """``send_to`` of a Single Send: list and segment ids (UUIDs) or all contacts."""

    list_ids: Annotated[list[str], Field(max_length=50)]
    segment_ids: Annotated[list[str], Field(max_length=10)]
    all: bool


@strict
class EmailConfig(TypedDict, total=False):
    """``email_config`` of a Single Send (ids are integers, as the spec types them)."""

    subject: str | None
    html_content: str | None
    plain_content: str | None
    generate_plain_content: bool
    design_id: str | None
    editor: Literal["code", "design"]
    suppression_group_id: int | None
    custom_unsubscribe_url: str | None
    sender_id: int | None
    ip_pool: str | None


@strict
class SingleSendCreate(TypedDict):
    """``POST /v3/marketing/singlesends`` (spec: ``SinglesendRequest``)."""

    name: Name
    categories: NotRequired[Annotated[list[str], Field(max_length=10)] | None]
    send_at: NotRequired[str | None]
    send_to: NotRequired[SendTo | None]
    email_config: NotRequired[EmailConfig | None]


@functools.cache
def adapter(body_type: Any) -> TypeAdapter[Any]:
    """The pydantic reader of a body type declared here (built once)."""
    return TypeAdapter(body_type)


def checked(body_type: Any, body: Any) -> Any:
    """``body`` itself once it fits ``body_type``; else ``ApiError`` 400 naming every bad field.

    Unknown members are let through, as SendGrid ignores them.
    """
    try:
        adapter(body_type).validate_python(body)
    except ValidationError as error:
        errors = FieldErrors()
        for problem in error.errors(include_url=False):
            field = field_path(problem["loc"])
            errors.add(field or "body", _message(field or "the request body", problem))
        errors.raise_if_any()
    return body


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("send_to", "list_ids", 3)`` -> ``send_to.list_ids[3]``, as SendGrid names fields."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else part
    return path


def _message(field: str, problem: Any) -> str:
    kind, context = problem["type"], problem.get("ctx") or {}
    if kind == "missing":
        return f"{field} is required"
    if kind in ("string_too_short", "string_too_long"):  # only Name has bounds here
        return f"{field} must be a string of {NAME_LENGTH[0]} to {NAME_LENGTH[1]} characters"
    if kind == "too_long":
        return f"{field} accepts at most {context['max_length']} items, got {context['actual_length']}"
    if kind == "too_short":
        return f"{field} must have at least {context['min_length']} item(s)"
    if kind in ("less_than_equal", "greater_than_equal"):
        bound = context.get("le", context.get("ge"))
        side = "at most" if kind == "less_than_equal" else "at least"
        return f"{field} must be {side} {bound}, got {problem['input']!r}"
    if kind == "literal_error":
        expected = context["expected"].replace("'", "").replace(" or ", ", ")
        return f"{field} must be one of {expected}, got {problem['input']!r}"
    shape = _TYPE_WORDS.get(kind)
    if shape is not None:
        return f"{field} must be {shape}, got {problem['input']!r}"
    return f"{field}: {problem['msg']}"


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
}
