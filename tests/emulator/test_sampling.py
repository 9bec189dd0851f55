"""The pure sample schedule rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from sgseg_emulator import sampling

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOURLY = sampling.Timings(membership_check_interval=3600, sample_interval=3600, sample_max_interval=86400)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def test_first_sample_then_backoff_doubles_to_the_cap() -> None:
    schedule = sampling.first_schedule(T0)
    gaps = []
    for _ in range(8):
        step = sampling.next_step(schedule)
        while True:
            schedule, took = sampling.after_check(schedule, step.at, changed=False, timings=HOURLY)
            if took:
                break
            step = sampling.next_step(schedule)
        gaps.append(schedule.interval / 3600)
    assert gaps == [1, 2, 4, 8, 16, 24, 24, 24]


def test_change_between_samples_samples_at_once_and_resets() -> None:
    schedule = sampling.Schedule(
        next_sample_update=T0 + hours(4), next_check_at=T0 + hours(1), interval=4 * 3600
    )
    schedule, took = sampling.after_check(schedule, T0 + hours(1), changed=True, timings=HOURLY)
    assert took
    assert schedule.next_sample_update == T0 + hours(2)
    assert schedule.interval == 3600


def test_quiet_check_between_samples_only_moves_the_check() -> None:
    schedule = sampling.Schedule(
        next_sample_update=T0 + hours(4), next_check_at=T0 + hours(1), interval=4 * 3600
    )
    schedule, took = sampling.after_check(schedule, T0 + hours(1), changed=False, timings=HOURLY)
    assert not took
    assert schedule.next_sample_update == T0 + hours(4)
    assert schedule.next_check_at == T0 + hours(2)


def test_refresh_comes_first_and_leaves_the_backoff_alone() -> None:
    schedule = sampling.Schedule(
        next_sample_update=T0 + hours(8),
        next_check_at=T0 + hours(1),
        interval=8 * 3600,
        pending_refresh_at=T0 + hours(0.5),
    )
    assert sampling.reported_next_update(schedule) == T0 + hours(0.5)
    step = sampling.next_step(schedule)
    assert step == sampling.Step(at=T0 + hours(0.5), is_refresh=True)
    after = sampling.after_refresh(schedule)
    assert after.pending_refresh_at is None
    assert (after.next_sample_update, after.interval) == (T0 + hours(8), 8 * 3600)
    assert sampling.reported_next_update(after) == T0 + hours(8)


def _step_through(
    schedule: sampling.Schedule, now: datetime, timings: sampling.Timings
) -> tuple[sampling.Schedule, datetime | None]:
    last = None
    while (step := sampling.next_step(schedule)).at <= now:
        schedule, take = sampling.after_check(schedule, step.at, False, timings)
        if take:
            last = step.at
    return schedule, last


@given(
    check=st.integers(300, 7200),
    first=st.integers(1, 7200),
    cap=st.integers(1, 86400),
    interval=st.integers(1, 86400),
    offset=st.integers(0, 7200),
    elapsed=st.integers(0, 3 * 86400),
)
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
def test_skipping_a_quiet_stretch_equals_stepping_through_it(
    check: int, first: int, cap: int, interval: int, offset: int, elapsed: int
) -> None:
    timings = sampling.Timings(
        membership_check_interval=check, sample_interval=first, sample_max_interval=cap
    )
    schedule = sampling.Schedule(
        next_sample_update=T0 + timedelta(seconds=offset), next_check_at=T0, interval=float(interval)
    )
    now = T0 + timedelta(seconds=elapsed)
    assert sampling.skip_quiet(schedule, now, timings) == _step_through(schedule, now, timings)


def test_a_year_of_one_second_checks_is_skipped_in_few_steps() -> None:
    timings = sampling.Timings(membership_check_interval=1, sample_interval=1, sample_max_interval=1)
    schedule = sampling.Schedule(next_sample_update=T0, next_check_at=T0, interval=1.0)
    skipped, last = sampling.skip_quiet(schedule, T0 + timedelta(days=366), timings)
    assert last == T0 + timedelta(days=366)
    assert skipped.next_sample_update == skipped.next_check_at == T0 + timedelta(days=366, seconds=1)
