"""The waiting engine: one pure state machine for every "poll until it ends" wait.

A wait feeds :func:`step` what the latest poll brought (an :class:`Outcome`) and gets back what
to do next: :class:`Done`, :class:`Invalid`, :class:`Timeout`, :class:`Failed` (too many
transient failures in a row) or :class:`Wait` (sleep ``delay`` seconds, then poll again with the
returned state). Poke-mode loops and triggers are thin I/O shells around it, so they cannot
disagree about failure counting, failure back-off or deadline capping.

The contacts import/export job waits use it today; the segment sensor and trigger are meant to
move onto it (issue 13).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.population import failure_delay

DEFAULT_MAX_CONSECUTIVE_FAILURES = 5


@dataclass(frozen=True)
class WaitBounds:
    """How a wait paces itself (seconds): polls never sooner than ``floor`` nor later than
    ``ceiling``; ``interval`` between polls when the answer names no next moment;
    ``max_consecutive_failures`` transient errors tolerated in a row (a healthy answer resets)."""

    floor: float = 5.0
    ceiling: float = 300.0
    interval: float = 15.0
    max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES

    def __post_init__(self) -> None:
        for name in ("floor", "ceiling", "interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise SendGridInputError(f"poll_{name}", value, "must be a number of seconds > 0")
        if self.ceiling < self.floor:
            raise SendGridInputError("poll_ceiling", self.ceiling, f"must be >= poll_floor ({self.floor})")
        failures = self.max_consecutive_failures
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
            raise SendGridInputError("max_consecutive_failures", failures, "must be an integer >= 0")

    def clamp(self, seconds: float) -> float:
        return min(max(seconds, self.floor), self.ceiling)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (for trigger kwargs)."""
        return {
            "floor": self.floor,
            "ceiling": self.ceiling,
            "interval": self.interval,
            "max_consecutive_failures": self.max_consecutive_failures,
        }


@dataclass(frozen=True)
class WaitState:
    """What a wait remembers between polls: transient failures in a row."""

    failures: int = 0


# ----------------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Finished:
    """The thing waited for ended well (``value`` is handed back in :class:`Done`)."""

    value: Any
    reason: str = ""


@dataclass(frozen=True)
class Rejected:
    """The thing waited for ended badly and waiting longer cannot help."""

    reason: str


@dataclass(frozen=True)
class Pending:
    """Not there yet. ``next_at``: when the answer says to look again (None: ``interval``)."""

    reason: str
    next_at: datetime.datetime | None = None


@dataclass(frozen=True)
class Transient:
    """The poll got no usable answer (5xx, 429, no answer); ``reset_at`` from a 429, if given."""

    reason: str
    reset_at: datetime.datetime | None = None


Outcome = Finished | Rejected | Pending | Transient

# ------------------------------------------------------------------------------------ actions


@dataclass(frozen=True)
class Done:
    value: Any
    reason: str


@dataclass(frozen=True)
class Invalid:
    reason: str


@dataclass(frozen=True)
class Timeout:
    reason: str


@dataclass(frozen=True)
class Failed:
    reason: str


@dataclass(frozen=True)
class Wait:
    delay: float
    state: WaitState
    reason: str


Action = Done | Invalid | Timeout | Failed | Wait


def step(
    state: WaitState,
    outcome: Outcome,
    now: datetime.datetime,
    bounds: WaitBounds,
    deadline: datetime.datetime | None = None,
) -> Action:
    """What to do after one poll.

    A finished/rejected outcome ends the wait whatever the deadline. Otherwise: past the
    ``deadline`` -> :class:`Timeout`; more than ``bounds.max_consecutive_failures`` transient
    failures in a row -> :class:`Failed`; else :class:`Wait` for a delay within the bounds (failures
    back off from ``floor``, doubling, and honour a 429's ``reset_at``), capped so the last look
    happens at the deadline.
    """
    if isinstance(outcome, Finished):
        return Done(outcome.value, outcome.reason)
    if isinstance(outcome, Rejected):
        return Invalid(outcome.reason)
    if isinstance(outcome, Transient):
        failures = state.failures + 1
        if failures > bounds.max_consecutive_failures:
            return Failed(f"{failures} transient failures in a row: {outcome.reason}")
        delay = failure_delay(failures, now, bounds.floor, bounds.ceiling, outcome.reset_at)
        tolerated = bounds.max_consecutive_failures
        reason = f"transient failure {failures} of {tolerated} tolerated ({outcome.reason})"
        state = replace(state, failures=failures)
    else:
        state = replace(state, failures=0)
        if outcome.next_at is None:
            delay = bounds.clamp(bounds.interval)
        else:
            delay = bounds.clamp((outcome.next_at - now).total_seconds())
        reason = outcome.reason
    if deadline is not None:
        remaining = (deadline - now).total_seconds()
        if remaining <= 0:
            return Timeout(f"not finished by {deadline.isoformat()}: {reason}")
        delay = min(delay, remaining)
    return Wait(delay, state, reason)
