"""How a wait paces itself: its bounds (:class:`WaitBounds`, from the DAG arguments) and the
delay before the next poll, healthy (:func:`poll_delay`) or after failures (:func:`failure_delay`).

The waiting engine (:mod:`airflow_provider_sgseg.rules.waiting`) applies these at each step. They
live apart because tasks build their bounds when a DAG file is parsed (so a bad argument fails
there), while the engine's outcome and action classes are needed only once a wait runs.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules import validation
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.limits import MAX_SERVER_WAIT as MAX_SERVER_WAIT

DEFAULT_MAX_CONSECUTIVE_FAILURES = 5


@dataclass(frozen=True)
class WaitBounds:
    """How a wait paces itself (seconds): polls never sooner than ``floor`` nor later than
    ``ceiling``; ``interval`` between polls when the answer names no next moment; ``slack`` added
    to a named next moment (it is an estimate: looking a little after it avoids a wasted poll);
    ``max_consecutive_failures`` transient errors tolerated in a row (a healthy answer resets).

    :raises SendGridInputError: a value that is not a finite number (bool, NaN and infinity
        included), ``floor`` or ``interval`` not > 0, ``ceiling`` below ``floor``, ``slack`` < 0,
        or a failure count that is not an integer >= 0. The error names the DAG argument: ``poll_floor``,
        ``poll_ceiling``, ``poke_interval``, ``poll_slack``, ``max_consecutive_failures``.
    """

    floor: float = 5.0
    ceiling: float = 300.0
    interval: float = 15.0
    slack: float = 0.0
    max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES

    def __post_init__(self) -> None:
        # The same rule as every other number of seconds (validation.seconds): finite, > 0.
        validation.seconds(_ARGUMENTS["floor"], self.floor)
        validation.seconds(_ARGUMENTS["ceiling"], self.ceiling)
        validation.seconds(_ARGUMENTS["interval"], self.interval)
        validation.seconds(_ARGUMENTS["slack"], self.slack, allow_zero=True)
        if self.ceiling < self.floor:
            rule = f"must be at least poll_floor ({self.floor} s)"
            raise SendGridInputError("poll_ceiling", self.ceiling, rule)
        failures = self.max_consecutive_failures
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
            raise SendGridInputError("max_consecutive_failures", failures, "must be an integer >= 0")

    def clamp(self, seconds: float) -> float:
        """``seconds`` moved into ``[floor, ceiling]``."""
        return min(max(seconds, self.floor), self.ceiling)

    @classmethod
    def from_arguments(cls, arguments: dict[str, Any]) -> WaitBounds:
        """Bounds from DAG-argument names (``poll_floor``, ``poll_ceiling``, ``poke_interval``,
        ``poll_slack``, ``max_consecutive_failures``); absent ones keep their defaults.

        :raises TypeError: an argument that names no bound.
        """
        fields = {argument: field for field, argument in _ARGUMENTS.items()}
        fields["max_consecutive_failures"] = "max_consecutive_failures"
        unknown = sorted(set(arguments) - set(fields))
        if unknown:
            raise TypeError(f"unexpected keyword arguments: {unknown}")
        return cls(**{fields[name]: value for name, value in arguments.items()})

    def to_arguments(self) -> dict[str, Any]:
        """The bounds under their DAG-argument names: plain JSON, the one serial form (trigger
        kwargs); ``from_arguments`` reads them back."""
        arguments = {argument: getattr(self, field) for field, argument in _ARGUMENTS.items()}
        return {**arguments, "max_consecutive_failures": self.max_consecutive_failures}


# The DAG argument each bound comes from, for error messages.
_ARGUMENTS = {
    "floor": "poll_floor",
    "ceiling": "poll_ceiling",
    "interval": "poke_interval",
    "slack": "poll_slack",
}


def poll_delay(next_at: datetime.datetime | None, now: datetime.datetime, bounds: WaitBounds) -> float:
    """Seconds until the next poll of a healthy wait: ``next_at`` plus ``bounds.slack``, within the
    bounds; ``bounds.interval`` (clamped) when ``next_at`` is ``None``; ``bounds.floor`` when
    ``next_at`` has already passed (the source is late). Naive datetimes are UTC."""
    next_moment, now_at = parse_instant(next_at), parse_instant(now)
    if next_moment is None or now_at is None:
        return bounds.clamp(bounds.interval)
    if next_moment <= now_at:
        return bounds.floor
    return bounds.clamp((next_moment - now_at).total_seconds() + bounds.slack)


def failure_delay(
    consecutive_failures: int,
    now: datetime.datetime,
    bounds: WaitBounds,
    reset_at: datetime.datetime | None = None,
) -> float:
    """Seconds to wait after the n-th consecutive transient failure (n >= 1).

    Doubles from ``bounds.floor`` and stops at ``bounds.ceiling``. After a 429 that names its
    ``reset_at`` it is exactly the time until that reset (within the bounds), whatever the
    failure count and without jitter: waits refused together come back together when the
    reset comes, and none later than it has to.
    """
    reset, now_at = parse_instant(reset_at), parse_instant(now)
    if reset is not None and now_at is not None:
        return bounds.clamp((reset - now_at).total_seconds())
    exponent = min(max(consecutive_failures - 1, 0), 32)
    return bounds.clamp(bounds.floor * 2.0**exponent)
