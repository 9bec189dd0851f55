"""The pure sample schedule rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

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
