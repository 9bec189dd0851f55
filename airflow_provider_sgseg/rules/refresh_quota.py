"""Pure rules for SendGrid's manual segment refresh quota.

SendGrid allows a manual refresh (``POST /v3/marketing/segments/2.0/refresh/{id}``):

* at most ``max_refreshes`` (2) per segment per day, the count resetting at midnight in the
  segment's ``user_time_zone``;
* at most one per segment per hour;
* at most 10 per account per day, resetting at 00:00 UTC. The segment does not report this one:
  it is learned only from a 429.

:func:`decide` applies the segment rules to what ``GET /segments/2.0/{id}`` returned;
:func:`decide_after_rate_limit` turns a 429 into a decision. When a field is missing or has an
unexpected type (older segments lack the refresh fields) the rule that needs it is skipped and
the server has the last word.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pendulum

from airflow_provider_sgseg.rules.instants import parse_instant

SEGMENT_DAILY_LIMIT = "segment_daily_limit"
HOURLY_SPACING = "hourly_spacing"
ACCOUNT_DAILY_LIMIT = "account_daily_limit"
SERVER_RATE_LIMIT = "server_rate_limit"

MIN_SPACING = datetime.timedelta(hours=1)
# Seconds around the next 00:00 UTC within which a 429's reset time means the account limit.
MIDNIGHT_RESET_TOLERANCE = 2.0

Zone = pendulum.Timezone | pendulum.FixedTimezone


@dataclass(frozen=True)
class RefreshDecision:
    """Whether a manual refresh may be sent now; if not, when and which rule blocks it."""

    allowed: bool
    next_allowed_at: datetime.datetime | None
    blocked_by: str | None
    reason: str


@dataclass(frozen=True)
class _Block:
    rule: str
    until: pendulum.DateTime
    why: str


def decide(
    segment: Mapping[str, Any],
    user_time_zone: str,
    now: datetime.datetime,
) -> RefreshDecision:
    """Decide whether ``segment`` (a Get Segment body) may be refreshed at ``now``.

    ``now`` must be timezone-aware. When several rules block, the one that lifts last wins: that
    is the earliest moment every rule allows a refresh. The account's daily limit is not visible
    in a segment: it shows as a 429, which :func:`decide_after_rate_limit` reads.

    :raises TypeError: ``now`` is not a datetime. :raises ValueError: ``now`` is naive, or
        ``user_time_zone`` is not an IANA zone name.
    """
    zone = pendulum.timezone(user_time_zone)
    current = _aware(now, "now")
    blocks = [
        block
        for block in (
            _segment_daily_block(segment, zone, current),
            _spacing_block(segment, current),
        )
        if block is not None
    ]
    if not blocks:
        return RefreshDecision(True, None, None, "refresh allowed by every known quota rule")
    latest = max(blocks, key=lambda block: block.until)
    return RefreshDecision(
        allowed=False,
        next_allowed_at=latest.until,
        blocked_by=latest.rule,
        reason=f"{latest.why}; next refresh allowed at {latest.until.isoformat()}",
    )


def decide_after_rate_limit(
    segment: Mapping[str, Any],
    user_time_zone: str,
    now: datetime.datetime,
    reset_at: datetime.datetime | None,
) -> RefreshDecision:
    """Turn a 429 from the refresh endpoint into a decision that is never "allowed".

    If the segment rules explain the 429 (e.g. the segment read was stale), they decide. Otherwise
    the server's ``reset_at`` is used when it lies in the future; without one, the only rule left
    is the account's daily limit, which resets at the next 00:00 UTC.
    """
    current = _aware(now, "now")
    by_segment = decide(segment, user_time_zone, current)
    reset = _aware(reset_at, "reset_at") if reset_at is not None else None
    if reset is not None and reset > current:
        segment_until = by_segment.next_allowed_at
        if segment_until is not None and segment_until >= reset:
            return by_segment
        rule = ACCOUNT_DAILY_LIMIT if _is_utc_midnight_reset(reset, current) else SERVER_RATE_LIMIT
        return RefreshDecision(
            allowed=False,
            next_allowed_at=reset,
            blocked_by=rule,
            reason=f"SendGrid answered 429 ({rule}); next refresh allowed at {reset.isoformat()}",
        )
    if not by_segment.allowed:
        return by_segment
    account_reset = next_utc_midnight(current)
    return RefreshDecision(
        allowed=False,
        next_allowed_at=account_reset,
        blocked_by=ACCOUNT_DAILY_LIMIT,
        reason=(
            "SendGrid answered 429 and the segment's own limits allow a refresh, so the account's "
            f"10 refreshes per UTC day are used up; next refresh allowed at {account_reset.isoformat()}"
        ),
    )


def _is_utc_midnight_reset(reset: pendulum.DateTime, now: pendulum.DateTime) -> bool:
    # A reset computed as "now + Retry-After" (whole seconds) lands near, not on, the midnight.
    return abs((reset - next_utc_midnight(now)).total_seconds()) <= MIDNIGHT_RESET_TOLERANCE


def next_utc_midnight(now: datetime.datetime) -> pendulum.DateTime:
    """The first 00:00 UTC strictly after ``now``."""
    current = _aware(now, "now").in_tz("UTC")
    tomorrow = current.date() + datetime.timedelta(days=1)
    return pendulum.datetime(tomorrow.year, tomorrow.month, tomorrow.day, tz="UTC")


def start_of_local_day(day: datetime.date, zone: Zone) -> pendulum.DateTime:
    """The first instant of ``day`` in ``zone``.

    Built from the date, not by adding 24 h or a day to a DateTime: days last 23 or 25 h around
    DST changes, and where midnight is skipped (America/Santiago) the day starts at 01:00.
    """
    return pendulum.datetime(day.year, day.month, day.day, tz=zone)


def _segment_daily_block(segment: Mapping[str, Any], zone: Zone, now: pendulum.DateTime) -> _Block | None:
    used = _count(segment.get("refreshes_used"))
    allowed = _count(segment.get("max_refreshes"))
    last = parse_instant(segment.get("last_refreshed_at"))
    if used is None or allowed is None or last is None or used < allowed:
        return None
    last_day = last.in_tz(zone).date()
    if last_day < now.in_tz(zone).date():
        # The last refresh was before today's local midnight: refreshes_used is a stale count
        # from an earlier day and SendGrid has reset it.
        return None
    next_day = last_day + datetime.timedelta(days=1)
    return _Block(
        rule=SEGMENT_DAILY_LIMIT,
        until=start_of_local_day(next_day, zone),
        why=f"segment used {used} of {allowed} manual refreshes for {last_day.isoformat()} in {zone.name}",
    )


def _spacing_block(segment: Mapping[str, Any], now: pendulum.DateTime) -> _Block | None:
    last = parse_instant(segment.get("last_refreshed_at"))
    if last is None or now - last >= MIN_SPACING:
        return None
    return _Block(
        rule=HOURLY_SPACING,
        until=last + MIN_SPACING,
        why=f"segment was last refreshed at {last.isoformat()}, less than an hour before {now.isoformat()}",
    )


def _count(value: object) -> int | None:
    # bool is an int subclass, but True is not a refresh count.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _aware(value: datetime.datetime, name: str) -> pendulum.DateTime:
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return pendulum.instance(value)


def refreshes_left(segment: Mapping[str, Any], user_time_zone: str, now: datetime.datetime) -> int | None:
    """Manual refreshes the segment has left today (its ``max_refreshes`` less the ones used since
    midnight in ``user_time_zone``); None when the segment does not report its counts."""
    used = _count(segment.get("refreshes_used"))
    allowed = _count(segment.get("max_refreshes"))
    if used is None or allowed is None:
        return None
    last = parse_instant(segment.get("last_refreshed_at"))
    zone = pendulum.timezone(user_time_zone)
    if last is None or last.in_tz(zone).date() < _aware(now, "now").in_tz(zone).date():
        used = 0  # a count from an earlier day: SendGrid has reset it
    return max(allowed - used, 0)


def after_refresh(
    segment: Mapping[str, Any], user_time_zone: str, refreshed_at: datetime.datetime
) -> tuple[int | None, datetime.datetime | None]:
    """What a refresh sent at ``refreshed_at`` leaves of the segment's quota (``segment``: as read
    before it): refreshes left today and when the next one is allowed (None: the segment does not
    report enough to tell)."""
    left = refreshes_left(segment, user_time_zone, refreshed_at)
    allowed = _count(segment.get("max_refreshes"))
    after = {
        "last_refreshed_at": _aware(refreshed_at, "refreshed_at").isoformat(),
        "refreshes_used": None if left is None or allowed is None else allowed - left + 1,
        "max_refreshes": allowed,
    }
    decision = decide(after, user_time_zone, refreshed_at)
    return (None if left is None else max(left - 1, 0)), decision.next_allowed_at
