"""Deprecated: :mod:`airflow_provider_sgseg.rules.population` since 0.3.0; removed in 1.0.

Importing it warns once. Its 0.2.0 names keep their 0.2.0 signatures: ``PollBounds`` (whose
``interval`` is ``default`` here), ``parse_timestamp`` (now ``rules.instants.parse_instant``),
``next_poll_delay`` and ``failure_delay`` taking the bounds as separate numbers.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from airflow_provider_sgseg._deprecated import warn_renamed
from airflow_provider_sgseg.rules import pacing
from airflow_provider_sgseg.rules.instants import parse_instant as parse_timestamp
from airflow_provider_sgseg.rules.population import (
    DEFAULT_POLL_CEILING,
    DEFAULT_POLL_FLOOR,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_POLL_SLACK,
    Verdict,
    VerdictStatus,
    verdict,
    waiting_summary,
    watermark_from,
)

__all__ = [
    "DEFAULT_POLL_CEILING",
    "DEFAULT_POLL_FLOOR",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_POLL_SLACK",
    "PollBounds",
    "Verdict",
    "VerdictStatus",
    "failure_delay",
    "next_poll_delay",
    "parse_timestamp",
    "verdict",
    "waiting_summary",
    "watermark_from",
]

warn_renamed("airflow_provider_sgseg.population", "airflow_provider_sgseg.rules.population", stacklevel=2)


class PollBounds(pacing.WaitBounds):
    """0.2.0's poll bounds: a :class:`~airflow_provider_sgseg.rules.pacing.WaitBounds` whose
    ``interval`` was called ``default``."""

    def __init__(
        self,
        floor: float = DEFAULT_POLL_FLOOR,
        ceiling: float = DEFAULT_POLL_CEILING,
        default: float = DEFAULT_POLL_INTERVAL,
        slack: float = DEFAULT_POLL_SLACK,
    ) -> None:
        super().__init__(floor, ceiling, default, slack)

    @property
    def default(self) -> float:
        """The interval when SendGrid names no next sample (seconds)."""
        return self.interval


def next_poll_delay(
    segment: Mapping[str, Any],
    now: datetime.datetime,
    floor: float = DEFAULT_POLL_FLOOR,
    ceiling: float = DEFAULT_POLL_CEILING,
    default: float = DEFAULT_POLL_INTERVAL,
    slack: float = DEFAULT_POLL_SLACK,
) -> float:
    """Seconds until the next look at ``segment``: SendGrid's ``next_sample_update`` plus
    ``slack``, within ``[floor, ceiling]`` (``default`` without one)."""
    bounds = PollBounds(floor, ceiling, default, slack)
    return pacing.poll_delay(parse_timestamp(segment.get("next_sample_update")), now, bounds)


def failure_delay(
    consecutive_failures: int,
    now: datetime.datetime,
    floor: float = DEFAULT_POLL_FLOOR,
    ceiling: float = DEFAULT_POLL_CEILING,
    reset_at: datetime.datetime | None = None,
) -> float:
    """Seconds to wait after the n-th transient failure in a row: doubling from ``floor`` up to
    ``ceiling``, and not before a 429's ``reset_at``."""
    return pacing.failure_delay(consecutive_failures, now, PollBounds(floor, ceiling), reset_at)
