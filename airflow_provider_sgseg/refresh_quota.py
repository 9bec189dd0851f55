"""Deprecated: :mod:`airflow_provider_sgseg.rules.refresh_quota` since 0.3.0; removed in 1.0.

Importing it warns once. ``decide`` keeps 0.2.0's ``account_exhausted_until`` and
``parse_instant`` is :func:`airflow_provider_sgseg.rules.instants.parse_instant`.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from airflow_provider_sgseg._deprecated import warn_renamed
from airflow_provider_sgseg.rules import refresh_quota
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.refresh_quota import (
    ACCOUNT_DAILY_LIMIT,
    HOURLY_SPACING,
    MIDNIGHT_RESET_TOLERANCE,
    MIN_SPACING,
    SEGMENT_DAILY_LIMIT,
    SERVER_RATE_LIMIT,
    RefreshDecision,
    Zone,
    decide_after_rate_limit,
    next_utc_midnight,
    start_of_local_day,
)

__all__ = [
    "ACCOUNT_DAILY_LIMIT",
    "HOURLY_SPACING",
    "MIDNIGHT_RESET_TOLERANCE",
    "MIN_SPACING",
    "SEGMENT_DAILY_LIMIT",
    "SERVER_RATE_LIMIT",
    "RefreshDecision",
    "Zone",
    "decide",
    "decide_after_rate_limit",
    "next_utc_midnight",
    "parse_instant",
    "start_of_local_day",
]

warn_renamed(
    "airflow_provider_sgseg.refresh_quota", "airflow_provider_sgseg.rules.refresh_quota", stacklevel=2
)


def decide(
    segment: Mapping[str, Any],
    user_time_zone: str,
    now: datetime.datetime,
    account_exhausted_until: datetime.datetime | None = None,
) -> RefreshDecision:
    """:func:`airflow_provider_sgseg.rules.refresh_quota.decide`, also blocked until
    ``account_exhausted_until`` (aware) when that is later: the rule that lifts last wins."""
    decision = refresh_quota.decide(segment, user_time_zone, now)
    until = parse_instant(account_exhausted_until)
    current = parse_instant(now)
    if until is None or current is None or until <= current:
        return decision
    if decision.next_allowed_at is not None and decision.next_allowed_at >= until:
        return decision
    return RefreshDecision(
        allowed=False,
        next_allowed_at=until,
        blocked_by=ACCOUNT_DAILY_LIMIT,
        reason=f"the account's daily refresh limit is used up; next refresh allowed at {until.isoformat()}",
    )
