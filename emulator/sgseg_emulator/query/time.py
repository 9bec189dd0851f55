"""Pure time helpers for the query_dsl translator: timestamp literals and intervals.

The store keeps every timestamp as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC), a format whose text order is
its time order. So a timestamp literal is normalised to that format once, at compile time, and
SQLite compares plain strings: no per-row parsing, and indexes stay usable.
"""

from __future__ import annotations

import datetime
import re

STORED_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# Dates and date-times as people write them in queries: 2024-06-19, 2024-06-19 00:00,
# 2024-06-19T00:00:00Z, 2024-06-19T02:00:00.123+02:00.
_ISO_LIKE = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?"
    r"\s*(?:Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$"
)

# Date/time units with the spellings Snowflake accepts -> canonical unit.
_UNIT_SPELLINGS = {
    "second": ("s", "sec", "secs", "second", "seconds"),
    "minute": ("m", "mi", "min", "mins", "minute", "minutes"),
    "hour": ("h", "hr", "hrs", "hour", "hours"),
    "day": ("d", "dd", "day", "days"),
    "week": ("w", "wk", "week", "weeks"),
    "month": ("mm", "mon", "mons", "month", "months"),
    "year": ("y", "yy", "yyyy", "yr", "yrs", "year", "years"),
}
_CANONICAL_UNITS = {spelling: unit for unit, spellings in _UNIT_SPELLINGS.items() for spelling in spellings}
# Canonical unit -> (SQLite date modifier unit, multiplier).
_SQLITE_UNITS = {
    "second": ("seconds", 1),
    "minute": ("minutes", 1),
    "hour": ("hours", 1),
    "day": ("days", 1),
    "week": ("days", 7),
    "month": ("months", 1),
    "year": ("years", 1),
}

_INTERVAL_PART = re.compile(r"\s*([+-]?\d+)\s*([a-zA-Z]+)\s*")


def is_timestamp_text(text: str) -> bool:
    """True when ``text`` reads as an ISO 8601 date or date-time."""
    return _ISO_LIKE.match(text.strip()) is not None


def normalise_timestamp(text: str) -> str | None:
    """``text`` as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, or None when it is not an ISO date/date-time.

    A date alone means midnight UTC; a time without offset is UTC; fractions of a second are
    dropped (the store keeps whole seconds).
    """
    cleaned = text.strip()
    if not is_timestamp_text(cleaned):
        return None
    cleaned = re.sub(r"\s*(Z|z|UTC)$", "+00:00", cleaned)
    cleaned = re.sub(r"\s+([+-]\d{2}(?::?\d{2})?)$", r"\1", cleaned)
    try:
        parsed = datetime.datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc).strftime(STORED_FORMAT)


def canonical_unit(spelling: str) -> str | None:
    """``second``, ``minute``, ``hour``, ``day``, ``week``, ``month`` or ``year``; None if unknown."""
    return _CANONICAL_UNITS.get(spelling.strip().lower())


def unit_modifier(quantity: int, unit: str) -> str | None:
    """SQLite date modifier for ``quantity`` ``unit`` (e.g. ``-7 days``), None for an unknown unit."""
    canonical = canonical_unit(unit)
    if canonical is None:
        return None
    sqlite_unit, factor = _SQLITE_UNITS[canonical]
    return f"{quantity * factor:+d} {sqlite_unit}"


def interval_modifiers(text: str, unit: str | None) -> list[str] | None:
    """SQLite date modifiers for an interval literal, None when it cannot be read.

    Accepts ``'10'`` with a separate unit (``INTERVAL '10' DAY``) and ``'1 day 2 hours'``.
    """
    if unit:
        quantity = text.strip()
        if not re.fullmatch(r"[+-]?\d+", quantity):
            return None
        modifier = unit_modifier(int(quantity), unit)
        return None if modifier is None else [modifier]
    parts = _INTERVAL_PART.findall(text)
    if not parts or _INTERVAL_PART.sub("", text).strip():
        return None
    modifiers = [unit_modifier(int(quantity), part_unit) for quantity, part_unit in parts]
    if any(modifier is None for modifier in modifiers):
        return None
    return [modifier for modifier in modifiers if modifier is not None]


def negate_modifier(modifier: str) -> str:
    """``+7 days`` -> ``-7 days`` and back."""
    sign, rest = modifier[0], modifier[1:]
    return ("-" if sign == "+" else "+") + rest
