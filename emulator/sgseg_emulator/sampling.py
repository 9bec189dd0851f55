"""Pure rules for when a segment's sample (count + contacts_sample) is recomputed.

SendGrid checks membership on an hourly schedule and refreshes samples hourly while contacts
enter or leave the segment; when nothing changed at a sample, the next one comes after twice the
previous interval (2 h, 4 h, ... at most 24 h). A manual refresh recomputes the sample once
without touching that backoff. No I/O here: ``membership.Membership`` evaluates the query and
calls these. They are the emulator's own copy of SendGrid's sampling rules (it is the oracle the
provider is tested against, so it never imports the provider's ``population`` rules).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Timings:
    """Sampling intervals in seconds."""

    membership_check_interval: float
    sample_interval: float
    sample_max_interval: float


@dataclass(frozen=True)
class Schedule:
    """A segment's next check, next sample, current backoff interval (seconds) and pending refresh."""

    next_sample_update: datetime
    next_check_at: datetime
    interval: float  # seconds between scheduled samples; 0 until the first sample
    pending_refresh_at: datetime | None = None


@dataclass(frozen=True)
class Step:
    """The next sampling event: when, and whether it is a manual refresh's sample."""

    at: datetime
    is_refresh: bool


def first_schedule(first_sample_at: datetime) -> Schedule:
    """A new segment (or one whose query changed) first samples at ``first_sample_at``."""
    return Schedule(next_sample_update=first_sample_at, next_check_at=first_sample_at, interval=0)


def next_step(schedule: Schedule) -> Step:
    """The next moment something happens: a pending manual refresh, a check or a sample."""
    regular = min(schedule.next_sample_update, schedule.next_check_at)
    refresh = schedule.pending_refresh_at
    if refresh is not None and refresh <= regular:
        return Step(at=refresh, is_refresh=True)
    return Step(at=regular, is_refresh=False)


def after_refresh(schedule: Schedule) -> Schedule:
    """A manual refresh sampled: the backoff schedule stays exactly as it was."""
    return replace(schedule, pending_refresh_at=None)


def after_check(schedule: Schedule, at: datetime, changed: bool, timings: Timings) -> tuple[Schedule, bool]:
    """Apply the membership check or scheduled sample at ``at``; return (schedule, take_sample).

    ``changed`` says whether membership at ``at`` differs from the last sample (always True
    before the first sample).
    """
    next_check_at = schedule.next_check_at
    if at >= next_check_at:
        next_check_at = at + timedelta(seconds=timings.membership_check_interval)
    if at >= schedule.next_sample_update:
        if changed or schedule.interval == 0:
            interval = timings.sample_interval
        else:
            interval = min(schedule.interval * 2, timings.sample_max_interval)
    elif changed and schedule.interval > 0:
        # Contacts entered or left between samples: sample now and go back to hourly.
        interval = timings.sample_interval
    else:
        return replace(schedule, next_check_at=next_check_at), False
    updated = replace(
        schedule,
        next_sample_update=at + timedelta(seconds=interval),
        next_check_at=next_check_at,
        interval=interval,
    )
    return updated, True


def reported_next_update(schedule: Schedule) -> datetime:
    """``next_sample_update`` as the API reports it: a pending refresh comes first if earlier."""
    if schedule.pending_refresh_at is not None and schedule.pending_refresh_at < schedule.next_sample_update:
        return schedule.pending_refresh_at
    return schedule.next_sample_update


def skip_quiet(schedule: Schedule, now: datetime, timings: Timings) -> tuple[Schedule, datetime | None]:
    """Jump over every check and sample due by ``now`` while membership stays as last sampled.

    For the caller that knows membership cannot change (the query does not read the time, no
    contact changes while catching up) and has no manual refresh due by ``now``: the result is
    what stepping through :func:`after_check` one check at a time gives, without a step per
    ``membership_check_interval``. Returns the schedule and when the last sample was taken (None:
    no sample was due). Needs a segment sampled at least once (``interval`` > 0).
    """
    sample, interval, last = schedule.next_sample_update, schedule.interval, None
    while sample <= now and interval != timings.sample_max_interval:  # backing off: 2x each time
        last = sample
        interval = min(interval * 2, timings.sample_max_interval)
        sample = last + timedelta(seconds=interval)
    if sample <= now:  # steady: one sample per sample_max_interval
        period = timedelta(seconds=interval)
        last = sample + ((now - sample) // period) * period
        sample = last + period
    check = schedule.next_check_at
    if check <= now:
        step = timedelta(seconds=timings.membership_check_interval)
        check += ((now - check) // step + 1) * step
    return replace(schedule, next_sample_update=sample, next_check_at=check, interval=interval), last
