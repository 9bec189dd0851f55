"""Client-side validators: each returns the normalised value or raises :class:`SendGridInputError`.

Ids (UUIDs) are normalised to lowercase, the form SendGrid answers in; an error names the value
as given.

Pure functions (no I/O). The hook calls them before sending anything, so a bad value costs zero
requests and leaves nothing half-done on SendGrid.

Values often come from Jinja templates. A template whose expression is ``None`` renders to the
string ``"None"`` (or to ``None`` with native rendering); both are rejected with a message that
says so, instead of being sent to SendGrid as a name or an id.
"""

from __future__ import annotations

import ast
import datetime
import functools
import json
import math
import re
import zoneinfo
from collections.abc import Callable, Sequence

import pendulum

from airflow_provider_sgseg.exceptions import SendGridInputError, did_you_mean
from airflow_provider_sgseg.rules.limits import LIST_FILTER_MAX_IDS as LIST_FILTER_MAX_IDS
from airflow_provider_sgseg.rules.limits import NAME_MAX_LENGTH as NAME_MAX_LENGTH
from airflow_provider_sgseg.rules.limits import SINGLE_SEND_MAX_CATEGORIES as SINGLE_SEND_MAX_CATEGORIES
from airflow_provider_sgseg.rules.limits import SINGLE_SEND_MAX_LISTS as SINGLE_SEND_MAX_LISTS
from airflow_provider_sgseg.rules.limits import SINGLE_SEND_MAX_SEGMENTS as SINGLE_SEND_MAX_SEGMENTS

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RENDERED_NONE = "is required (got None: did a template render to None?)"


def rendered_literal(name: str, text: str, rule: str) -> object:
    """The value a template rendered to text: JSON, or Python's repr of it (Jinja's default for a
    list or dict). Anything else raises :class:`SendGridInputError` with ``rule``."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        raise SendGridInputError(name, text if len(text) <= 80 else text[:80] + "...", rule) from None


def _text(name: str, value: object) -> str:
    """A stripped string; rejects None, the rendered string "None" and non-strings."""
    if value is None or (isinstance(value, str) and value.strip() == "None"):
        raise SendGridInputError(name, value, _RENDERED_NONE)
    if not isinstance(value, str):
        raise SendGridInputError(name, value, f"must be a string, not {type(value).__name__}")
    return value.strip()


def _uuid(name: str, value: object) -> str:
    """A UUID in SendGrid's lowercase form: SendGrid answers ids in lowercase, and every id the
    provider compares (a watched segment, an explicit Single Send) must match its answers."""
    text = _text(name, value)
    if not _UUID.match(text):
        raise SendGridInputError(
            name, value, "must be a 36-character UUID like 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'"
        )
    return text.lower()


def _name(name: str, value: object) -> str:
    text = _text(name, value)
    if not 1 <= len(text) <= NAME_MAX_LENGTH:
        raise SendGridInputError(name, value, f"must be 1..{NAME_MAX_LENGTH} characters (got {len(text)})")
    return text


def _item(check: Callable[[str, object], str], name: str, index: int, item: object) -> str:
    """``check`` one list item; an error names the list, reports the bad item and its position."""
    try:
        return check(name, item)
    except SendGridInputError as error:
        raise SendGridInputError(name, item, f"item {index} {error.rule}") from None


def _id_list(name: str, value: object, *, max_items: int | None) -> list[str]:
    """A list of UUIDs, duplicates dropped (order kept); a single string counts as one id."""
    if value is None:
        return []
    if isinstance(value, str):
        return [_uuid(name, value)] if value.strip() else []
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise SendGridInputError(name, value, f"must be a list of ids, not {type(value).__name__}")
    ids = list(dict.fromkeys(_item(_uuid, name, index, item) for index, item in enumerate(value)))
    if max_items is not None and len(ids) > max_items:
        raise SendGridInputError(name, value, f"at most {max_items} ids allowed (got {len(ids)})")
    return ids


def segment_id(value: object) -> str:
    """A segment id: a 36-character UUID."""
    return _uuid("segment_id", value)


def single_send_id(value: object) -> str:
    """A Single Send id: a 36-character UUID."""
    return _uuid("single_send_id", value)


_NOT_ZONE_NAMES = frozenset({"posixrules", "localtime", "Factory"})
TIME_ZONE_RULE = (
    "must be an IANA time zone name in its exact case, such as 'America/Chicago', 'UTC' or "
    "'Etc/GMT+5' (not an offset, not a posix/ or right/ path, not localtime)"
)


@functools.cache
def time_zone_names() -> frozenset[str]:
    """The IANA zone names SendGrid takes: the tz database's (``zoneinfo.available_timezones()``:
    the tzdata package pendulum depends on, plus the host's) without the host's ``localtime``,
    the ``posix/`` and ``right/`` copies, ``posixrules`` and ``Factory``."""
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if name not in _NOT_ZONE_NAMES and not name.startswith(("posix/", "right/"))
    )


def time_zone(value: object, name: str = "user_time_zone") -> str:
    """An IANA time zone name (``"America/Chicago"``, ``"UTC"``, ``"Etc/GMT+5"``), exact case, as
    listed by :func:`time_zone_names`; offsets, ``utc`` and host-dependent names are refused.

    :param name: the argument to name in the error (SendGrid's ``user_time_zone``).
    :raises SendGridInputError: naming ``name``, the value and the rule.
    """
    text = _text(name, value)
    if text not in time_zone_names():
        raise SendGridInputError(name, value, TIME_ZONE_RULE)
    return text


def segment_name(value: object) -> str:
    """A segment name: 1..100 characters after stripping surrounding whitespace."""
    return _name("segment_name", value)


def single_send_name(value: object) -> str:
    """A Single Send name: 1..100 characters after stripping surrounding whitespace."""
    return _name("single_send_name", value)


def query_dsl(value: object) -> str:
    """A Segments V2 SQL query: non-empty after stripping."""
    text = _text("query_dsl", value)
    if not text:
        raise SendGridInputError("query_dsl", value, "must not be empty")
    return text


def parent_list_ids(value: object) -> list[str] | None:
    """The parent list of a new segment: at most one list id (SendGrid's current limit)."""
    ids = _id_list("parent_list_ids", value, max_items=1)
    return ids or None


def list_filter_ids(value: object) -> list[str] | None:
    """Parent-list filter for listing segments: up to 50 list ids; a comma-separated string works."""
    if isinstance(value, str) and "," in value:
        value = [part for part in value.split(",") if part.strip()]
    ids = _id_list("parent_list_ids", value, max_items=LIST_FILTER_MAX_IDS)
    return ids or None


def segment_ids(value: object) -> list[str] | None:
    """Segment ids to look up (any number); None or empty means no filter."""
    ids = _id_list("ids", value, max_items=None)
    return ids or None


def single_send_segment_ids(value: object) -> list[str]:
    """Segments a Single Send goes to: at most 10 UUIDs."""
    return _id_list("segment_ids", value, max_items=SINGLE_SEND_MAX_SEGMENTS)


def single_send_list_ids(value: object) -> list[str]:
    """Lists a Single Send goes to: at most 50 UUIDs."""
    return _id_list("list_ids", value, max_items=SINGLE_SEND_MAX_LISTS)


def categories(value: object) -> list[str]:
    """Single Send categories: at most 10 distinct non-empty strings."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise SendGridInputError("categories", value, "must be a list of strings")
    names = list(dict.fromkeys(_item(_text, "categories", index, item) for index, item in enumerate(value)))
    if "" in names:
        raise SendGridInputError("categories", value, "must not contain empty strings")
    if len(names) > SINGLE_SEND_MAX_CATEGORIES:
        raise SendGridInputError(
            "categories", value, f"at most {SINGLE_SEND_MAX_CATEGORIES} allowed (got {len(names)})"
        )
    return names


def send_at(value: object) -> str:
    """When a Single Send goes out: ``"now"``, or a timezone-aware datetime / ISO-8601 string.

    Returns ``"now"`` or the instant in UTC as ``YYYY-MM-DDTHH:MM:SSZ`` (SendGrid's format).
    """
    rule = "must be 'now', a timezone-aware datetime or an ISO-8601 timestamp with an offset"
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = _text("send_at", value)
        if text.lower() == "now":
            return "now"
        try:
            parsed = pendulum.parse(text, exact=True)
        except Exception:
            raise SendGridInputError("send_at", value, rule) from None
        if not isinstance(parsed, datetime.datetime):
            raise SendGridInputError("send_at", value, rule)
        if not _has_explicit_offset(text):
            raise SendGridInputError("send_at", value, rule)
        moment = parsed
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SendGridInputError("send_at", value, rule)
    utc = moment.astimezone(datetime.timezone.utc)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}Z"  # RFC 3339: four-digit years, also before 1000


def _has_explicit_offset(text: str) -> bool:
    # pendulum assumes UTC for a string without an offset; refuse that guess for a send time.
    return bool(re.search(r"(Z|[+-]\d{2}(:?\d{2})?)$", text.strip(), flags=re.IGNORECASE))


def flag(name: str, value: object) -> bool:
    """A yes/no option: a bool, or the strings ``"true"``/``"false"`` a template renders to."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if value is None or value == "None":
        raise SendGridInputError(name, value, _RENDERED_NONE)
    raise SendGridInputError(name, value, "must be True or False")


# ------------------------------------------------------------------ contacts, imports, exports

CUSTOM_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FIELD_TYPES = ("Text", "Number", "Date")
EXPORT_FILE_TYPES = ("csv", "json")
_JOB_ID = re.compile(r"^(?!\.+$)[A-Za-z0-9_.:-]{1,100}$")  # not "." or "..": a path would collapse them


def custom_field_name(value: object) -> str:
    """A custom field name: 1..100 of ``A-Z a-z 0-9 _``, not starting with a digit."""
    text = _name("custom field name", value)
    if not CUSTOM_FIELD_NAME.match(text):
        raise SendGridInputError(
            "custom field name", value, "use only letters, digits and _, starting with a letter or _"
        )
    return text


def field_type(value: object) -> str:
    """A custom field type: ``Text``, ``Number`` or ``Date``."""
    text = _text("field_type", value)
    if text not in FIELD_TYPES:
        hint = did_you_mean(text, FIELD_TYPES)
        raise SendGridInputError(
            "field_type", value, f"must be one of {', '.join(FIELD_TYPES)}" + (f": {hint}" if hint else "")
        )
    return text


def list_id(value: object) -> str:
    """A contact list id: a 36-character UUID."""
    return _uuid("list_id", value)


def contact_list_ids(value: object) -> list[str]:
    """Contact lists (to add upserted contacts to, or to export): UUIDs, duplicates dropped."""
    return _id_list("list_ids", value, max_items=None)


def export_segment_ids(value: object) -> list[str]:
    """Segments whose members to export: UUIDs, duplicates dropped."""
    return _id_list("segment_ids", value, max_items=None)


def job_id(value: object, name: str = "job_id") -> str:
    """An import/upsert job id or an export id (safe to put in a URL path); errors say ``name``."""
    text = _text(name, value)
    if not _JOB_ID.match(text):
        rule = "must be 1..100 of letters, digits, '_', '-', '.', ':' (not dots only)"
        raise SendGridInputError(name, value, rule)
    return text


def export_file_type(value: object) -> str:
    """``csv`` or ``json``."""
    text = _text("file_type", value).lower()
    if text not in EXPORT_FILE_TYPES:
        raise SendGridInputError("file_type", value, f"must be one of {', '.join(EXPORT_FILE_TYPES)}")
    return text


def max_file_size(value: object) -> int | None:
    """Export file size cap in MB: a positive integer, or None for SendGrid's default (5000)."""
    return None if value is None else positive_int("max_file_size", value, "MB")


def positive_int(name: str, value: object, unit: str = "") -> int:
    """``value`` if it is an integer >= 1 (a bool is not).

    :raises SendGridInputError: naming ``name`` (and the ``unit``, when given).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SendGridInputError(
            name, value, f"must be a positive integer{' number of ' + unit if unit else ''}"
        )
    return value


def choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``.

    :raises SendGridInputError: naming ``name`` and the allowed values.
    """
    if value not in allowed:
        raise SendGridInputError(name, value, f"must be one of {', '.join(map(repr, allowed))}")
    return str(value)


def seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a float number of seconds: > 0 (>= 0 with ``allow_zero``).

    :raises SendGridInputError: naming ``name``, for a bool, a non-number, NaN, infinity or an
        out-of-range value.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        rule = "must be a number of seconds >= 0" if allow_zero else "must be a positive number of seconds"
        raise SendGridInputError(name, value, rule)
    return float(value)


def single_send_ids(value: object, name: str = "single_send_ids", max_items: int | None = None) -> list[str]:
    """Single Send ids: a list of UUIDs (or one id as a string), duplicates dropped, order kept."""
    return _id_list(name, value, max_items=max_items)


def uuid(value: object, name: str) -> str:
    """A 36-character UUID, the error naming ``name``."""
    return _uuid(name, value)


# ------------------------------------------------------------------------- Single Send stats

STATS_AGGREGATIONS = ("day", "total")
STATS_GROUP_BY = ("ab_variation", "ab_phase")
AB_PHASES = ("test", "send")


def aggregated_by(value: object) -> str:
    """``"day"`` or ``"total"`` (the stats' ``aggregated_by``)."""
    if value not in STATS_AGGREGATIONS:
        raise SendGridInputError("aggregated_by", value, "must be 'day' or 'total'")
    return str(value)


def stats_group_by(value: object, name: str = "group_by") -> tuple[str, ...]:
    """A subset of ``("ab_variation", "ab_phase")`` (a single string counts as one), order kept."""
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or any(item not in STATS_GROUP_BY for item in items):
        raise SendGridInputError(name, value, "must be a list of 'ab_variation' and/or 'ab_phase'")
    return tuple(dict.fromkeys(items))


def ab_phase(value: object) -> str:
    """``"test"`` or ``"send"`` (the links filter ``ab_phase_id``)."""
    if value not in AB_PHASES:
        raise SendGridInputError("ab_phase_id", value, "must be 'test' or 'send'")
    return str(value)


def duration(name: str, value: object) -> float:
    """A positive number of seconds, or a ``timedelta``; as :func:`seconds`."""
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    return seconds(name, value)
