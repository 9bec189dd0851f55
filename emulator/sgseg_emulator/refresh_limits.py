"""Pure rules for SendGrid's manual segment refresh quotas.

Documented: two refreshes per segment per day, reset at midnight in the time zone stored for the
segment; never twice within one hour; ten per account per day, reset at 00:00 UTC.

These are the emulator's own copies of SendGrid's quota rules, written apart from the provider's
``refresh_quota`` on purpose: the emulator is the oracle the provider is tested against, so a
misreading shared by both could never show up in a test.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True)
class Limits:
    """Refresh quotas: per segment per day, minimum spacing in seconds, per account per day."""

    per_segment_per_day: int
    min_spacing: float
    per_account_per_day: int


@dataclass(frozen=True)
class Denial:
    """Why a refresh is refused, and when (aware UTC) it would be allowed."""

    message: str
    retry_at: datetime


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_iana_zone(name: object) -> bool:
    return isinstance(name, str) and name in _known_zones()


def local_day_start(now: datetime, zone: str) -> datetime:
    """The UTC instant of the most recent local midnight in ``zone`` (DST-correct)."""
    tz = zoneinfo.ZoneInfo(zone)
    local = now.astimezone(tz)
    midnight = datetime(local.year, local.month, local.day, tzinfo=tz)
    return midnight.astimezone(timezone.utc)


def next_local_midnight(now: datetime, zone: str) -> datetime:
    tz = zoneinfo.ZoneInfo(zone)
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz).astimezone(timezone.utc)


def utc_day_start(now: datetime) -> datetime:
    utc = now.astimezone(timezone.utc)
    return datetime(utc.year, utc.month, utc.day, tzinfo=timezone.utc)


def refreshes_used(now: datetime, zone: str, segment_refreshes: Sequence[datetime]) -> int:
    """Refreshes of one segment since the start of today in its time zone."""
    day_start = local_day_start(now, zone)
    return sum(1 for moment in segment_refreshes if day_start <= moment <= now)


def check_refresh(
    now: datetime,
    zone: str,
    segment_refreshes: Sequence[datetime],
    account_refreshes: Sequence[datetime],
    limits: Limits,
) -> Denial | None:
    """None when a refresh is allowed now; otherwise which limits block it and until when."""
    reasons: list[str] = []
    retry_at = now
    if refreshes_used(now, zone, segment_refreshes) >= limits.per_segment_per_day:
        reasons.append(
            f"segment refresh limit reached: {limits.per_segment_per_day} refreshes per segment per day "
            f"(resets at midnight {zone})"
        )
        retry_at = max(retry_at, next_local_midnight(now, zone))
    if segment_refreshes:
        spacing_ends = max(segment_refreshes) + timedelta(seconds=limits.min_spacing)
        if now < spacing_ends:
            reasons.append(
                f"segment was refreshed less than {limits.min_spacing:g} seconds ago "
                "(1 refresh per segment per hour)"
            )
            retry_at = max(retry_at, spacing_ends)
    account_day_start = utc_day_start(now)
    used_by_account = sum(1 for moment in account_refreshes if account_day_start <= moment <= now)
    if used_by_account >= limits.per_account_per_day:
        reasons.append(
            f"account refresh limit reached: {limits.per_account_per_day} refreshes per day "
            "across all segments (resets at 00:00 UTC)"
        )
        retry_at = max(retry_at, account_day_start + timedelta(days=1))
    if not reasons:
        return None
    return Denial(message="; ".join(reasons), retry_at=retry_at)
