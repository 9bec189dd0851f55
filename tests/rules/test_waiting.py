"""The waiting engine: pure decisions for one poll."""

from __future__ import annotations

import datetime

from airflow_provider_sgseg.rules import pacing, waiting

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
BOUNDS = pacing.WaitBounds(floor=10, ceiling=300, interval=30, max_consecutive_failures=2)


def test_finished_and_rejected_end_the_wait_even_past_the_deadline() -> None:
    past = NOW - datetime.timedelta(hours=1)
    done = waiting.step(waiting.WaitState(), waiting.Finished({"a": 1}, "ok"), NOW, BOUNDS, past)
    assert done == waiting.Done({"a": 1}, "ok")
    invalid = waiting.step(waiting.WaitState(), waiting.Rejected("bad"), NOW, BOUNDS, past)
    assert invalid == waiting.Invalid("bad")


def test_pending_waits_the_interval_or_until_next_at_within_bounds() -> None:
    action = waiting.step(waiting.WaitState(failures=1), waiting.Pending("running"), NOW, BOUNDS)
    assert action == waiting.Wait(30, waiting.WaitState(failures=0), "running")  # a healthy answer resets
    soon = waiting.step(
        waiting.WaitState(), waiting.Pending("x", NOW + datetime.timedelta(seconds=1)), NOW, BOUNDS
    )
    assert isinstance(soon, waiting.Wait) and soon.delay == 10  # floor
    late = waiting.step(
        waiting.WaitState(), waiting.Pending("x", NOW + datetime.timedelta(days=1)), NOW, BOUNDS
    )
    assert isinstance(late, waiting.Wait) and late.delay == 300  # ceiling


def test_transient_failures_back_off_then_fail_past_the_tolerance() -> None:
    first = waiting.step(waiting.WaitState(), waiting.Transient("503"), NOW, BOUNDS)
    assert isinstance(first, waiting.Wait) and first.delay == 10 and first.state.failures == 1
    second = waiting.step(first.state, waiting.Transient("503"), NOW, BOUNDS)
    assert isinstance(second, waiting.Wait) and second.delay == 20 and second.state.failures == 2
    third = waiting.step(second.state, waiting.Transient("503"), NOW, BOUNDS)
    assert isinstance(third, waiting.Failed) and "3 transient failures in a row: 503" in third.reason


def test_a_429_waits_until_its_reset_time() -> None:
    reset = NOW + datetime.timedelta(seconds=120)
    action = waiting.step(waiting.WaitState(), waiting.Transient("429", reset), NOW, BOUNDS)
    assert isinstance(action, waiting.Wait) and action.delay == 120


def test_waits_refused_together_by_a_429_come_back_together_at_its_reset() -> None:
    # Mapped sensors meet the same 429 with different failure streaks behind them: each waits
    # exactly until the named reset, not its own longer back-off.
    reset = NOW + datetime.timedelta(seconds=25)
    bounds = pacing.WaitBounds(floor=5, ceiling=300, interval=30, max_consecutive_failures=9)
    delays = {
        failures: waiting.step(waiting.WaitState(failures), waiting.Transient("429", reset), NOW, bounds)
        for failures in range(4)
    }
    assert {failures: action.delay for failures, action in delays.items()} == {0: 25, 1: 25, 2: 25, 3: 25}


def test_the_deadline_caps_the_delay_and_then_times_out() -> None:
    deadline = NOW + datetime.timedelta(seconds=7)
    capped = waiting.step(waiting.WaitState(), waiting.Pending("running"), NOW, BOUNDS, deadline)
    assert isinstance(capped, waiting.Wait) and capped.delay == 7  # the last look is at the deadline
    over = waiting.step(waiting.WaitState(), waiting.Pending("running"), deadline, BOUNDS, deadline)
    assert isinstance(over, waiting.Timeout) and "running" in over.reason


def test_a_timeout_carries_the_failures_in_a_row_so_no_shell_counts_them_again() -> None:
    past = NOW - datetime.timedelta(seconds=1)
    late = waiting.step(waiting.WaitState(failures=1), waiting.Transient("503"), NOW, BOUNDS, past)
    assert isinstance(late, waiting.Timeout) and late.failures == 2
    healthy = waiting.step(waiting.WaitState(failures=1), waiting.Pending("running"), NOW, BOUNDS, past)
    assert isinstance(healthy, waiting.Timeout) and healthy.failures == 0


def test_no_poll_starts_at_or_past_the_deadline() -> None:
    assert waiting.timed_out(NOW + datetime.timedelta(seconds=1), NOW, "running") is None
    assert waiting.timed_out(None, NOW, "running") is None
    at = waiting.timed_out(NOW, NOW, "running", 1)
    assert at == waiting.Timeout(f"not finished by {NOW.isoformat()}: running", 1)


def test_a_malformed_answer_is_a_transient_failure_like_a_5xx() -> None:
    from airflow_provider_sgseg.exceptions import SendGridResponseError

    assert issubclass(SendGridResponseError, waiting.TRANSIENT_ERRORS)
