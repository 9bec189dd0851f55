"""The waiting engine: one pure state machine for every "poll until it ends" wait.

A wait feeds :func:`step` what the latest poll brought (an :class:`Outcome`) and gets back what
to do next: :class:`Done`, :class:`Invalid`, :class:`Timeout`, :class:`Failed` (too many
transient failures in a row) or :class:`Wait` (sleep ``delay`` seconds, then poll again with the
returned state). Poke-mode loops and triggers are thin I/O shells around it, so they cannot
disagree about failure counting, failure back-off or deadline capping.

Users: the segment sensor (poke and reschedule modes), the segment trigger (deferrable mode)
and the contacts import/export job waits (poke and deferrable). Each turns what it read into an
:class:`Outcome` (segment rules: :func:`airflow_provider_sgseg.rules.population.segment_outcome`;
job rules: :mod:`airflow_provider_sgseg.rules.jobs`) and does what the :class:`Action` says.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_sgseg.exceptions import (
    SendGridError,
    SendGridInputError,
    SendGridRateLimitError,
    SendGridServerError,
    SendGridTransportError,
)
from airflow_provider_sgseg.rules.instants import parse_instant

DEFAULT_MAX_CONSECUTIVE_FAILURES = 5
# Answers that say "try again later" rather than "this will never work".
TRANSIENT_ERRORS: tuple[type[SendGridError], ...] = (
    SendGridServerError,
    SendGridTransportError,
    SendGridRateLimitError,
)


@dataclass(frozen=True)
class WaitBounds:
    """How a wait paces itself (seconds): polls never sooner than ``floor`` nor later than
    ``ceiling``; ``interval`` between polls when the answer names no next moment; ``slack`` added
    to a named next moment (it is an estimate: looking a little after it avoids a wasted poll);
    ``max_consecutive_failures`` transient errors tolerated in a row (a healthy answer resets).

    :raises SendGridInputError: a value that is not a number (bool and NaN included), ``floor``
        or ``interval`` not > 0, ``ceiling`` below ``floor``, ``slack`` < 0, or a failure count
        that is not an integer >= 0. The error names the DAG argument: ``poll_floor``,
        ``poll_ceiling``, ``poke_interval``, ``poll_slack``, ``max_consecutive_failures``.
    """

    floor: float = 5.0
    ceiling: float = 300.0
    interval: float = 15.0
    slack: float = 0.0
    max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES

    def __post_init__(self) -> None:
        for field, argument in _ARGUMENTS.items():
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise SendGridInputError(argument, value, "must be a number of seconds")
        if self.floor <= 0:
            raise SendGridInputError("poll_floor", self.floor, "must be greater than 0 seconds")
        if self.ceiling < self.floor:
            rule = f"must be at least poll_floor ({self.floor} s)"
            raise SendGridInputError("poll_ceiling", self.ceiling, rule)
        if self.interval <= 0:
            raise SendGridInputError(_ARGUMENTS["interval"], self.interval, "must be greater than 0 seconds")
        if self.slack < 0:
            raise SendGridInputError("poll_slack", self.slack, "must not be negative")
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
        """The bounds under their DAG-argument names (plain JSON; ``from_arguments`` reads them)."""
        arguments = {argument: getattr(self, field) for field, argument in _ARGUMENTS.items()}
        return {**arguments, "max_consecutive_failures": self.max_consecutive_failures}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (for trigger kwargs); ``WaitBounds(**to_dict())`` rebuilds it."""
        return {
            "floor": self.floor,
            "ceiling": self.ceiling,
            "interval": self.interval,
            "slack": self.slack,
            "max_consecutive_failures": self.max_consecutive_failures,
        }


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

    Doubles from ``bounds.floor`` and stops at ``bounds.ceiling``; after a 429 it also waits
    until SendGrid's announced ``reset_at`` (still capped by the ceiling).
    """
    exponent = min(max(consecutive_failures - 1, 0), 32)
    delay = bounds.floor * 2.0**exponent
    reset, now_at = parse_instant(reset_at), parse_instant(now)
    if reset is not None and now_at is not None:
        delay = max(delay, (reset - now_at).total_seconds())
    return bounds.clamp(delay)


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


def transient(error: SendGridError) -> Transient:
    """A failed poll (one of :data:`TRANSIENT_ERRORS`) as an outcome; a 429 brings its reset time."""
    reset_at = error.reset_at if isinstance(error, SendGridRateLimitError) else None
    return Transient(str(error), reset_at)


Outcome = Finished | Rejected | Pending | Transient

# ------------------------------------------------------------------------------------ actions


@dataclass(frozen=True)
class Done:
    """Stop: finished well; ``value`` is the :class:`Finished` outcome's."""

    value: Any
    reason: str


@dataclass(frozen=True)
class Invalid:
    """Stop: the thing waited for ended badly."""

    reason: str


@dataclass(frozen=True)
class Timeout:
    """Stop: the deadline passed; ``reason`` names it and the last outcome's reason."""

    reason: str


@dataclass(frozen=True)
class Failed:
    """Stop: more transient failures in a row than tolerated (``failures`` of them)."""

    reason: str
    failures: int = 0


@dataclass(frozen=True)
class Wait:
    """Poll again after ``delay`` seconds with ``state``. ``failures`` > 0: the poll failed
    transiently (the n-th time in a row); ``reason`` says why it waits."""

    delay: float
    state: WaitState
    reason: str

    @property
    def failures(self) -> int:
        """Transient failures in a row so far (0 after a healthy answer)."""
        return self.state.failures


Action = Done | Invalid | Timeout | Failed | Wait

# A trigger's event reports how its wait ended, one status per terminal action.
EVENT_STATUS = {Done: "success", Invalid: "invalid", Timeout: "timeout", Failed: "error"}
EVENT_STATUSES = frozenset(EVENT_STATUS.values())


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
            return Failed(f"{failures} transient failures in a row: {outcome.reason}", failures)
        delay = failure_delay(failures, now, bounds, outcome.reset_at)
        tolerated = bounds.max_consecutive_failures
        reason = f"transient failure {failures} of {tolerated} tolerated ({outcome.reason})"
        state = replace(state, failures=failures)
    else:
        state = replace(state, failures=0)
        delay = poll_delay(outcome.next_at, now, bounds)
        reason = outcome.reason
    if deadline is not None:
        remaining = (deadline - now).total_seconds()
        if remaining <= 0:
            return Timeout(f"not finished by {deadline.isoformat()}: {reason}")
        delay = min(delay, remaining)
    return Wait(delay, state, reason)
