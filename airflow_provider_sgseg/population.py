"""Pure rules for waiting on a segment: "is it populated?" and "when do we look again?".

The sensor (poke and reschedule modes) and the trigger (deferrable mode) both decide with
these functions, so the two ways of waiting can never disagree. No I/O here.

SendGrid refreshes a segment's ``contacts_count`` and sample about hourly (backing off to
24 h) and announces the next refresh in ``next_sample_update``. A segment counts as populated
when its query is ``VALID``, its sample is newer than a watermark (the moment we started
caring, e.g. the sample time before a manual refresh), and the count reaches a minimum.
"""

from __future__ import annotations

import ast
import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pendulum

from airflow_provider_sgseg.exceptions import SendGridInputError

VerdictStatus = Literal["populated", "waiting", "invalid"]

DEFAULT_POLL_FLOOR = 60.0
DEFAULT_POLL_CEILING = 3600.0
DEFAULT_POLL_INTERVAL = 300.0
# SendGrid's next_sample_update is an estimate; looking a little after it avoids a wasted GET
# that still shows the old sample.
DEFAULT_POLL_SLACK = 30.0

# Strings a template renders when the upstream value was absent (e.g. an empty XCom).
_EMPTY_TEMPLATE_RENDERINGS = frozenset({"", "none", "null"})


@dataclass(frozen=True)
class Verdict:
    """The answer for one look at a segment, with a sentence a person can read in the task log."""

    status: VerdictStatus
    reason: str
    contacts_count: int | None
    sample_updated_at: pendulum.DateTime | None

    @property
    def populated(self) -> bool:
        return self.status == "populated"


@dataclass(frozen=True)
class PollBounds:
    """How often to poll: never sooner than ``floor``, never later than ``ceiling`` (seconds)."""

    floor: float = DEFAULT_POLL_FLOOR
    ceiling: float = DEFAULT_POLL_CEILING
    default: float = DEFAULT_POLL_INTERVAL
    slack: float = DEFAULT_POLL_SLACK

    def __post_init__(self) -> None:
        for name in ("floor", "ceiling", "default", "slack"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise SendGridInputError(f"poll_{name}", value, "must be a number of seconds")
        if self.floor <= 0:
            raise SendGridInputError("poll_floor", self.floor, "must be greater than 0 seconds")
        if self.ceiling < self.floor:
            raise SendGridInputError(
                "poll_ceiling", self.ceiling, f"must be at least poll_floor ({self.floor} s)"
            )
        if self.default <= 0:
            raise SendGridInputError("poll_default", self.default, "must be greater than 0 seconds")
        if self.slack < 0:
            raise SendGridInputError("poll_slack", self.slack, "must not be negative")

    def clamp(self, seconds: float) -> float:
        return min(max(seconds, self.floor), self.ceiling)


def parse_timestamp(value: object) -> pendulum.DateTime | None:
    """Read a SendGrid timestamp leniently: ISO 8601 with ``Z``, an offset or fractional seconds.

    Naive values are taken as UTC; a bare date is midnight UTC. Returns ``None`` for a missing
    or unreadable value, so the caller decides what "unknown" means.
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
    if isinstance(parsed, pendulum.Date):  # e.g. a rendered {{ ds }}: midnight UTC
        return pendulum.datetime(parsed.year, parsed.month, parsed.day)
    return None  # a bare time or a duration is not a moment


def watermark_from(value: object) -> pendulum.DateTime | None:
    """Turn the sensor's ``refreshed_after`` argument into a watermark.

    Accepts ``None`` (no watermark given), an ISO string, a ``datetime``, or the refresh
    operator's XCom dict (its ``sample_updated_at_before``, else its ``requested_at``; a refresh
    skipped for quota with neither is no watermark), also when a template rendered that dict to
    text. Anything else is a :class:`SendGridInputError`.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _EMPTY_TEMPLATE_RENDERINGS:
            return None
        if text.startswith("{"):
            return watermark_from(_dict_from_text(text))
        parsed = parse_timestamp(text)
        if parsed is None:
            raise SendGridInputError("refreshed_after", value, "must be an ISO 8601 timestamp")
        return parsed
    if isinstance(value, datetime.datetime):
        return parse_timestamp(value)
    if isinstance(value, Mapping):
        for key in ("sample_updated_at_before", "requested_at"):
            if value.get(key):
                parsed = parse_timestamp(value[key])
                if parsed is None:
                    raise SendGridInputError(
                        f"refreshed_after[{key!r}]", value[key], "must be an ISO 8601 timestamp"
                    )
                return parsed
        if value.get("skipped"):
            return None
        raise SendGridInputError(
            "refreshed_after",
            value,
            "a dict must be the refresh operator's XCom, with sample_updated_at_before or requested_at",
        )
    raise SendGridInputError(
        "refreshed_after", value, "must be an ISO 8601 string, a datetime or the refresh operator's XCom"
    )


def _dict_from_text(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise SendGridInputError("refreshed_after", text, "text starting with '{' must be a dict") from None


def verdict(segment: Mapping[str, Any], watermark: datetime.datetime | None, min_contacts: int) -> Verdict:
    """Decide whether ``segment`` (a Get Segment body) is populated.

    Populated means: ``status.query_validation`` is ``VALID``, ``sample_updated_at`` is after
    ``watermark`` (any sample will do when there is no watermark), and ``contacts_count`` is at
    least ``min_contacts``. ``INVALID`` is final; everything else is "waiting".
    """
    reported_status = segment.get("status")
    status: Mapping[str, Any] = reported_status if isinstance(reported_status, Mapping) else {}
    validation = str(status.get("query_validation") or "").upper()
    count = segment.get("contacts_count")
    contacts_count = count if isinstance(count, int) and not isinstance(count, bool) else None
    sample_at = parse_timestamp(segment.get("sample_updated_at"))
    mark = parse_timestamp(watermark)

    def decide(verdict_status: VerdictStatus, reason: str) -> Verdict:
        return Verdict(verdict_status, reason, contacts_count, sample_at)

    if validation == "INVALID":
        message = status.get("error_message") or "no error message given"
        return decide("invalid", f"SendGrid rejected the segment's query_dsl as INVALID: {message}")
    if validation != "VALID":
        return decide("waiting", f"query validation is {validation or 'not reported yet'}")
    if sample_at is None:
        return decide("waiting", "SendGrid has not produced a sample yet (no sample_updated_at)")
    seen = f"sample of {sample_at.isoformat()} (watermark {mark.isoformat() if mark else 'none'})"
    if mark is not None and sample_at <= mark:
        return decide("waiting", f"{seen} is not newer than the watermark; waiting for the next sample")
    if contacts_count is None:
        return decide("waiting", f"{seen} has no contacts_count")
    if contacts_count < min_contacts:
        return decide(
            "waiting",
            f"fresh {seen} counts {contacts_count} contacts, fewer than min_contacts={min_contacts}",
        )
    return decide("populated", f"fresh {seen} counts {contacts_count} contacts (min_contacts={min_contacts})")


def waiting_summary(
    result: Verdict, watermark: datetime.datetime | None, polled_at: datetime.datetime, delay: float
) -> str:
    """The log line for a poll that found the segment not populated yet."""
    mark = parse_timestamp(watermark)
    sample_at = result.sample_updated_at
    next_poll = polled_at + datetime.timedelta(seconds=delay)
    return (
        f"not populated yet: {result.reason}. contacts_count={result.contacts_count}, "
        f"sample_updated_at={sample_at.isoformat() if sample_at else None}, "
        f"watermark={mark.isoformat() if mark else None}; "
        f"next poll at {next_poll.isoformat()} (in {delay:.0f} s)"
    )


def next_poll_delay(
    segment: Mapping[str, Any],
    now: datetime.datetime,
    floor: float = DEFAULT_POLL_FLOOR,
    ceiling: float = DEFAULT_POLL_CEILING,
    default: float = DEFAULT_POLL_INTERVAL,
    slack: float = DEFAULT_POLL_SLACK,
) -> float:
    """Seconds until the next look: SendGrid's ``next_sample_update`` plus ``slack``.

    Clamped to ``[floor, ceiling]``. Without a readable ``next_sample_update`` the ``default``
    interval is used (also clamped); when it is already in the past SendGrid is late, so we
    look again after ``floor``.
    """
    bounds = PollBounds(floor, ceiling, default, slack)
    next_update = parse_timestamp(segment.get("next_sample_update"))
    if next_update is None:
        return bounds.clamp(bounds.default)
    now_at = parse_timestamp(now)
    assert now_at is not None  # a datetime always parses
    if next_update <= now_at:
        return bounds.floor
    return bounds.clamp((next_update - now_at).total_seconds() + bounds.slack)


def failure_delay(
    consecutive_failures: int,
    now: datetime.datetime,
    floor: float = DEFAULT_POLL_FLOOR,
    ceiling: float = DEFAULT_POLL_CEILING,
    reset_at: datetime.datetime | None = None,
) -> float:
    """Seconds to wait after the n-th consecutive transient failure (n >= 1).

    Doubles from ``floor`` and stops at ``ceiling``; after a 429 it also waits until
    SendGrid's announced ``reset_at`` (still capped by ``ceiling``).
    """
    bounds = PollBounds(floor, ceiling)
    exponent = min(max(consecutive_failures - 1, 0), 32)
    delay = floor * 2.0**exponent
    reset = parse_timestamp(reset_at)
    now_at = parse_timestamp(now)
    if reset is not None and now_at is not None:
        delay = max(delay, (reset - now_at).total_seconds())
    return bounds.clamp(delay)
