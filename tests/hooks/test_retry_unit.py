"""Pure retry arithmetic: server-requested waits and backoff."""

from __future__ import annotations

import pytest

from airflow_provider_sgseg.hooks._retry import RetryPolicy, backoff, requested_wait

NOW = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC, an epoch like X-RateLimit-Reset


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"Retry-After": "Mon, 21 Sep 2026 14:13:40 GMT"}, 20.0),
        ({"Retry-After": "Mon, 21 Sep 2026 13:13:20 GMT"}, 0.0),  # in the past
        ({"X-RateLimit-Reset": str(int(NOW) + 42)}, 42.0),  # epoch seconds
        ({"X-RateLimit-Reset": "42"}, 42.0),  # seconds to go
        ({"x-ratelimit-reset": str(int(NOW) - 5)}, 0.0),  # epoch already passed
        ({"X-RateLimit-Reset": "soon"}, None),
        ({"X-RateLimit-Reset": "nan"}, None),
        ({"Retry-After": "garbage", "X-RateLimit-Reset": "9"}, 9.0),  # falls through
        ({"Retry-After": "3", "X-RateLimit-Reset": "9"}, 3.0),  # Retry-After wins
        ({"Retry-After": "-4"}, 0.0),
    ],
)
def test_requested_wait_reads_both_headers_both_ways(headers: dict[str, str], expected: float | None) -> None:
    assert requested_wait(headers, NOW, rate_limited=True) == expected


def test_rate_limit_reset_means_wait_only_on_a_429() -> None:
    # SendGrid sends X-RateLimit-Reset on every answer; on a 503 it is not a request to wait.
    headers = {"X-RateLimit-Reset": str(int(NOW) + 3000)}
    assert requested_wait(headers, NOW, rate_limited=False) is None
    assert requested_wait({**headers, "Retry-After": "4"}, NOW, rate_limited=False) == 4.0


def test_backoff_doubles_adds_jitter_and_is_capped() -> None:
    policy = RetryPolicy(initial_wait=1.0, max_wait=10.0, jitter=0.5)
    no_jitter = [backoff(n, policy, rand=lambda: 0.0) for n in range(1, 6)]
    assert no_jitter == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert backoff(1, policy, rand=lambda: 1.0) == 1.5
    assert backoff(2, policy, rand=lambda: 0.5) == 2.25
    assert backoff(30, policy, rand=lambda: 1.0) == 10.0


def test_backoff_jitter_varies_between_calls() -> None:
    policy = RetryPolicy(initial_wait=1.0, max_wait=60.0, jitter=1.0)
    waits = {backoff(3, policy) for _ in range(50)}
    assert len(waits) > 1
    assert all(4.0 <= wait <= 5.0 for wait in waits)


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"initial_wait": -1.0}, {"max_wait": -1.0}, {"jitter": -0.1}]
)
def test_retry_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
