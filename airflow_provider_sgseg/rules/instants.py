"""The one instant parser: every timestamp the provider reads (SendGrid bodies, DAG arguments,
trigger kwargs, XComs) goes through :func:`parse_instant`.

The rule for naive values: a timestamp without an offset, a naive ``datetime`` and a bare date
are UTC (SendGrid writes UTC; Airflow's logical dates are UTC). A bare date is midnight UTC.
"""

from __future__ import annotations

import datetime

import pendulum


def parse_instant(value: object) -> pendulum.DateTime | None:
    """An aware instant from ISO 8601 text (``Z``, an offset, fractional seconds, a bare date) or
    a ``datetime``; naive values are UTC. Returns ``None`` for a missing or unreadable value (a
    bare time or a duration is not an instant), so the caller decides what "unknown" means.
    """
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return pendulum.instance(value)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = pendulum.parse(value.strip(), exact=True)
    except (ValueError, OverflowError):  # pendulum's ParserError is a ValueError
        return None
    if isinstance(parsed, pendulum.DateTime):
        return parsed
    if isinstance(parsed, pendulum.Date):  # e.g. a rendered {{ ds }}
        return pendulum.datetime(parsed.year, parsed.month, parsed.day)
    return None
