"""Column mapping and row validation for contact upserts. Pure: rows in, SendGrid contacts out.

A source row (a mapping of column -> value) becomes a ``ContactRequest`` of
``PUT /v3/marketing/contacts``: reserved fields by name, custom fields under ``custom_fields`` keyed
by **field id** (ids come from ``GET /v3/marketing/field_definitions``). Every refusal is a
:class:`SendGridRowError` naming the row number (1-based, in source order), column, value and rule.
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
import sys
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_sgseg.exceptions import SendGridInputError, did_you_mean
from airflow_provider_sgseg.exceptions import SendGridRowError as SendGridRowError  # its first home
from airflow_provider_sgseg.rules.limits import MAX_ALTERNATE_EMAILS as MAX_ALTERNATE_EMAILS

IDENTIFIERS = ("email", "phone_number_id", "external_id", "anonymous_id")
NO_IDENTIFIER = f"no identifier ({', '.join(IDENTIFIERS[:-1])} or {IDENTIFIERS[-1]})"
# Writable reserved fields and their length limits (None: no documented limit). Source: the
# ContactRequest schema of tsg_mc_contacts_v3.json.
RESERVED_LIMITS: dict[str, int | None] = {
    "address_line_1": 100,
    "address_line_2": 100,
    "alternate_emails": 254,  # per address; at most MAX_ALTERNATE_EMAILS of them
    "city": 60,
    "country": 50,
    "email": 254,
    "phone_number_id": None,
    "external_id": 254,
    "anonymous_id": 254,
    "first_name": 50,
    "last_name": 50,
    "postal_code": None,
    "state_province_region": 50,
}
# Reserved fields SendGrid sets itself: "read_only": true in the spec's Get All Field Definitions
# example. Never sent, also when an account's answer does not mark them.
SET_BY_SENDGRID = frozenset(
    {
        *("contact_id", "created_at", "updated_at", "email_domains", "last_clicked", "last_opened"),
        *("last_emailed", "singlesend_id", "automation_id"),
    }
)
CUSTOM_FIELD_TYPES = ("Text", "Number", "Date")
# Deliberately loose: one @, no spaces, a dot in the domain. SendGrid has the last word.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class CustomField:
    """A custom field definition: SendGrid's ``id`` (e.g. ``w1``), ``name`` and ``field_type``."""

    id: str
    name: str
    field_type: str


@dataclass(frozen=True)
class FieldCatalog:
    """The account's field definitions, read from ``GET /v3/marketing/field_definitions``.

    ``reserved_ids`` maps reserved names to their ids when SendGrid lists them (the CSV import's
    ``field_mappings`` needs ids; upserts use names); ``read_only`` holds the reserved names the
    answer marks ``"read_only": true``.
    """

    custom: dict[str, CustomField]  # by lower-cased name: SendGrid names are case-insensitive
    reserved_ids: dict[str, str | None]
    read_only: frozenset[str] = frozenset()

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> FieldCatalog:
        """The catalog from a ``GET /v3/marketing/field_definitions`` answer."""
        custom = {}
        for item in answer.get("custom_fields") or []:
            if isinstance(item, Mapping) and item.get("id") and item.get("name"):
                field = CustomField(str(item["id"]), str(item["name"]), str(item.get("field_type") or "Text"))
                custom[field.name.lower()] = field
        reserved: dict[str, str | None] = {}
        read_only = set()
        for item in answer.get("reserved_fields") or []:
            if isinstance(item, Mapping) and item.get("name"):
                name = str(item["name"]).lower()
                reserved[name] = str(item["id"]) if item.get("id") else None
                if item.get("read_only") is True:
                    read_only.add(name)
        return cls(custom, reserved, frozenset(read_only))

    def with_custom(self, fields: Iterable[CustomField]) -> FieldCatalog:
        """This catalog with ``fields`` added (or replaced, by name)."""
        return replace(self, custom={**self.custom, **{field.name.lower(): field for field in fields}})

    def custom_field(self, name_or_id: str) -> CustomField | None:
        """The custom field named ``name_or_id`` (any case) or with that id."""
        found = self.custom.get(name_or_id.lower())
        return found or next((field for field in self.custom.values() if field.id == name_or_id), None)

    def is_writable(self, name: str) -> bool:
        """Whether reserved field ``name`` (lower-case) may be sent: in ``ContactRequest`` or listed
        by the account, and neither marked read-only there nor documented as set by SendGrid."""
        if name in RESERVED_LIMITS:
            return True
        return name in self.reserved_ids and name not in self.read_only and name not in SET_BY_SENDGRID

    def is_read_only(self, name: str) -> bool:
        """Whether ``name`` (lower-case) is a reserved field SendGrid sets itself."""
        return name not in RESERVED_LIMITS and (name in self.read_only or name in SET_BY_SENDGRID)


@dataclass(frozen=True)
class ColumnTarget:
    """Where one source column goes: a reserved field by name or a custom field by id."""

    column: str
    field: str  # the SendGrid field name
    custom: CustomField | None = None


@dataclass(frozen=True)
class ColumnPlan:
    """Where every source column goes: ``targets`` (sent) and ``unsent`` (column -> why not)."""

    targets: list[ColumnTarget]
    unsent: dict[str, str]


def missing_custom_fields(
    columns: Iterable[str],
    mapping: Mapping[str, str] | None,
    catalog: FieldCatalog,
    ignore: Collection[str] = (),
) -> list[str]:
    """Field names the columns refer to that are neither reserved nor defined custom fields."""
    missing = []
    for column in columns:
        field = None if column in ignore else _field_of(column, mapping)
        if field is not None and not _is_reserved(field, catalog) and catalog.custom_field(field) is None:
            missing.append(field)
    return missing


def _is_reserved(field: str, catalog: FieldCatalog) -> bool:
    return (
        field.lower() in RESERVED_LIMITS
        or field.lower() in catalog.reserved_ids
        or field.lower() in SET_BY_SENDGRID
    )


def plan_columns(
    columns: Iterable[str],
    mapping: Mapping[str, str] | None,
    catalog: FieldCatalog,
    ignore: Collection[str] = (),
) -> list[ColumnTarget]:
    """The columns that are sent, each resolved to its field (see :func:`column_plan`)."""
    return column_plan(columns, mapping, catalog, ignore).targets


def column_plan(
    columns: Iterable[str],
    mapping: Mapping[str, str] | None,
    catalog: FieldCatalog,
    ignore: Collection[str] = (),
) -> ColumnPlan:
    """Resolve every column to its field, or say why it is not sent.

    :param columns: the source's column names.
    :param mapping: source column -> SendGrid field name; ``None``: each column is the field of the
        same name. With a mapping, only mapped columns are sent (the others are ``unsent``).
    :param ignore: columns the DAG named in ``ignore_columns``: not sent.
    Field names are matched ignoring case, reserved and custom alike (an export's ``EMAIL``,
    ``FIRST_NAME`` headers map to ``email``, ``first_name``); custom fields also by id. Every
    reserved field the account lists is writable unless read-only (marked so in the answer, or
    documented as set by SendGrid: :data:`SET_BY_SENDGRID`). Without a mapping, a column named
    after a read-only field (an export's ``CONTACT_ID``, ``CREATED_AT``) is not sent.

    :raises SendGridInputError: columns map to no field SendGrid takes (all of them named), two
        columns map to the same field (e.g. ``email`` and ``EMAIL``), a mapped or ignored column is
        absent from the source, or none maps to an identifier.
    """
    columns = list(columns)
    for name, named in (("column_mapping", mapping or {}), ("ignore_columns", ignore)):
        absent = [column for column in named if column not in columns]
        if absent and columns:
            raise SendGridInputError(
                name,
                absent,
                f"names columns the source does not have (it has {columns})"
                + _suggestions("column", absent, columns),
            )
    targets, unsent, unknown, unknown_fields = [], {}, [], []
    for column in columns:
        field = _field_of(column, mapping)
        if column in ignore:
            unsent[column] = "named in ignore_columns"
        elif field is None:
            unsent[column] = "not in column_mapping"
        elif catalog.is_writable(field.lower()):
            targets.append(ColumnTarget(column, field.lower()))
        elif mapping is None and catalog.is_read_only(field.lower()):
            unsent[column] = f"{field.lower()} is read-only: SendGrid sets it"
        elif (custom := catalog.custom_field(field)) is not None:
            targets.append(ColumnTarget(column, custom.name, custom))
        else:
            unknown.append(column if field == column else f"{column} -> {field}")
            unknown_fields.append(field)
    if unknown:
        known = [name for name in {*RESERVED_LIMITS, *catalog.reserved_ids} if catalog.is_writable(name)]
        known += [field.name for field in catalog.custom.values()]
        raise SendGridInputError(
            "columns",
            unknown,
            "name no field SendGrid takes: neither a writable reserved field nor a custom field of this "
            "account (create it first, or pass create_missing_fields=True with its type in "
            "custom_field_types; or name the column in ignore_columns to leave it out)"
            + _suggestions("column" if mapping is None else "field", unknown_fields, sorted(known)),
        )
    by_field: dict[str, list[str]] = {}
    for target in targets:
        by_field.setdefault(target.field, []).append(target.column)
    for field, same in by_field.items():
        if len(same) > 1:
            raise SendGridInputError(
                "columns", same, f"all map to field {field!r} (field names ignore case): keep one"
            )
    if not any(target.field in IDENTIFIERS for target in targets) and targets:
        raise SendGridInputError("columns", columns, f"none maps to an identifier ({', '.join(IDENTIFIERS)})")
    return ColumnPlan(targets, unsent)


def _suggestions(kind: str, names: Iterable[str], known: Iterable[str]) -> str:
    """``; unknown column 'emial': did you mean 'email'?`` for each name with a near known name."""
    known = list(known)
    hints = [f"unknown {kind} {name!r}: {hint}" for name in names if (hint := did_you_mean(name, known))]
    return "".join(f"; {hint}" for hint in hints)


def _field_of(column: str, mapping: Mapping[str, str] | None) -> str | None:
    return column if mapping is None else mapping.get(column)


def contact_from_row(row_number: int, row: Mapping[str, Any], plan: list[ColumnTarget]) -> dict[str, Any]:
    """The ``ContactRequest`` for one row. ``None`` and empty strings mean "not given".

    :raises SendGridRowError: no identifier, an invalid email, a value longer than its field's
        limit, a value that does not fit its custom field's type.
    """
    contact: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for target in plan:
        value = row.get(target.column)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if target.custom is not None:
            custom[target.custom.id] = _custom_value(row_number, target, value)
        else:
            contact[target.field] = _reserved_value(row_number, target, value)
    if not any(name in contact for name in IDENTIFIERS):
        raise SendGridRowError(row_number, ",".join(IDENTIFIERS), None, NO_IDENTIFIER, quote=False)
    if custom:
        contact["custom_fields"] = custom
    return contact


def _reserved_value(row_number: int, target: ColumnTarget, value: Any) -> Any:
    if target.field == "alternate_emails":
        return _alternate_emails(row_number, target.column, value)
    text = _text(value)
    if text is None:
        raise SendGridRowError(row_number, target.column, value, f"{target.field} must be text")
    text = text.strip()
    limit = RESERVED_LIMITS.get(target.field)
    if limit is not None and len(text) > limit:
        raise SendGridRowError(
            row_number, target.column, value, f"{target.field} is at most {limit} characters, got {len(text)}"
        )
    if target.field == "email":
        return _email(row_number, target.column, text)
    return text


def _email(row_number: int, column: str, text: str) -> str:
    if not _EMAIL.match(text):
        raise SendGridRowError(row_number, column, text, "not a valid email address")
    return text.lower()  # SendGrid stores emails lower-cased; duplicates must compare alike


def _alternate_emails(row_number: int, column: str, value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise SendGridRowError(row_number, column, value, "must be a list or comma-separated text")
    emails = [str(item).strip() for item in items if str(item).strip()]
    if len(emails) > MAX_ALTERNATE_EMAILS:
        raise SendGridRowError(row_number, column, value, f"at most {MAX_ALTERNATE_EMAILS} alternate_emails")
    for email in emails:
        if len(email) > 254:
            raise SendGridRowError(
                row_number, column, email, "each alternate email is at most 254 characters"
            )
    return [_email(row_number, column, email) for email in emails]


def _custom_value(row_number: int, target: ColumnTarget, value: Any) -> Any:
    assert target.custom is not None
    kind = target.custom.field_type
    convert: Callable[[Any], Any] = _number if kind == "Number" else _date if kind == "Date" else _text
    converted = convert(value)
    if converted is None:
        rule = f"custom field {target.field!r} is " + {
            "Number": "a Number",
            "Date": f"a Date ({DATE_FORMS})",
        }.get(kind, kind)
        raise SendGridRowError(row_number, target.column, value, rule)
    return converted


def _text(value: Any) -> str | None:
    """A Text field's value: text as is, numbers as written (a ``Decimal`` exactly, without an
    exponent), ``true``/``false``, a UUID in its canonical form, a date or datetime as for a Date
    field; None for anything else (bytes, lists, mappings...)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value, "f") if value.is_finite() else None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN is how pandas and many drivers spell "missing": never the text "nan"
    if isinstance(value, int | float | uuid.UUID):
        return str(value)
    if isinstance(value, datetime.date):
        return _date(value)
    return None


_LARGEST_NUMBER = sys.float_info.max  # a Number field holds a double


def _number(value: Any) -> int | float | None:
    """A Number field's value: an int stays one, a ``Decimal`` or float becomes a JSON number (an
    integral ``Decimal`` an int), text is parsed; None for a bool, NaN, infinity or anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) <= _LARGEST_NUMBER else None
    if isinstance(value, decimal.Decimal) and value.is_finite() and value == value.to_integral_value():
        return _number(int(value))
    if isinstance(value, str):
        try:
            return _number(int(value.strip()))  # "42" stays an integer
        except ValueError:
            pass
    if not isinstance(value, str | float | decimal.Decimal):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# The Date forms taken: SendGrid's custom fields guide shows MM/DD/YYYY; its API answers and
# exports give ISO 8601 (YYYY-MM-DDTHH:MM:SSZ), which its query language also uses.
DATE_FORMS = "YYYY-MM-DD, MM/DD/YYYY or ISO 8601 date-time"
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}:?\d{2})?")


def _date(value: Any) -> str | None:
    """A Date field's value: ``YYYY-MM-DD`` for a date (a ``date``, ``YYYY-MM-DD`` or
    ``MM/DD/YYYY``), ``YYYY-MM-DDTHH:MM:SSZ`` in UTC for a date-time (a ``datetime`` or ISO 8601
    text; without an offset it is taken as UTC; fractions of a second dropped); None otherwise."""
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
        try:
            moment = moment.astimezone(datetime.timezone.utc)
        except OverflowError:  # e.g. 0001-01-01T00:00+05:00: no UTC moment in years 1-9999
            return None
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _ISO_DATE.fullmatch(text):
            return datetime.date.fromisoformat(text).isoformat()
        if found := _US_DATE.fullmatch(text):
            month, day, year = (int(part) for part in found.groups())
            return datetime.date(year, month, day).isoformat()
        if _ISO_DATETIME.fullmatch(text):
            return _date(datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")))
    except ValueError:
        return None
    return None


def identifier_keys(contact: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The contact's identifiers as ``(kind, value)`` pairs; equal pairs mean the same contact."""
    return [(name, str(contact[name])) for name in IDENTIFIERS if contact.get(name)]


def merge_contacts(earlier: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
    """Two rows for one contact, as two upserts in sequence would leave it: later values win."""
    merged = {**earlier, **later}
    if "custom_fields" in earlier or "custom_fields" in later:
        merged["custom_fields"] = {**earlier.get("custom_fields", {}), **later.get("custom_fields", {})}
    return merged
