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
    SendGridRateLimitError,
    SendGridResponseError,
    SendGridServerError,
    SendGridTransportError,
)
from airflow_provider_sgseg.rules.pacing import WaitBounds, failure_delay, poll_delay

# Answers that say "try again later" rather than "this will never work". A truncated or
# malformed 2xx body is one of them: the hook retries it everywhere else, so a wait does too.
TRANSIENT_ERRORS: tuple[type[SendGridError], ...] = (
    SendGridServerError,
    SendGridTransportError,
    SendGridRateLimitError,
    SendGridResponseError,
)


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
    """Stop: the deadline passed; ``reason`` names it and the last outcome's reason.
    ``failures``: transient failures in a row up to and including the last poll."""

    reason: str
    failures: int = 0


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
    back off from ``floor``, doubling, and honour a 429's ``reset_at``), capped so the wait never
    sleeps past the deadline (where :func:`timed_out` ends it).
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
    late = timed_out(deadline, now, reason, state.failures)
    if late is not None:
        return late
    if deadline is not None:
        delay = min(delay, (deadline - now).total_seconds())
    return Wait(delay, state, reason)


def timed_out(
    deadline: datetime.datetime | None, now: datetime.datetime, reason: str, failures: int = 0
) -> Timeout | None:
    """:class:`Timeout` when ``now`` is at or past ``deadline`` (``reason``: why the wait was
    still going), else ``None``. A wait asks before each poll too: no request starts once its
    deadline has come."""
    if deadline is None or now < deadline:
        return None
    return Timeout(f"not finished by {deadline.isoformat()}: {reason}", failures)
