"""The retry rule and its arithmetic: which answers are retried per kind, server-named waits, backoff."""

from __future__ import annotations

import datetime
import math
from typing import Any

import httpx
import pytest

from airflow_provider_sgseg.exceptions import (
    SendGridConfigError,
    SendGridRateLimitError,
    SendGridResponseError,
    SendGridServerError,
    SendGridTransportError,
    SendGridValidationError,
)
from airflow_provider_sgseg.hooks._retry import (
    MAX_SERVER_WAIT,
    RetryPolicy,
    backoff,
    named_wait,
    next_wait,
    requested_wait,
    reset_time,
    retried,
)
from airflow_provider_sgseg.rules.requests import Retry

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


def _transport(cause: Exception) -> SendGridTransportError:
    error = SendGridTransportError("no answer")
    error.__cause__ = cause
    return error


READ, ONCE, SCHEDULE, REFRESH = Retry.IDEMPOTENT, Retry.SENT_ONCE, Retry.IF_NOTHING_SENT, Retry.NEVER
# docs/hook.md's retry table, row by row: the answer and the kinds that send the request again.
TABLE: list[tuple[str, BaseException, set[Retry]]] = [
    ("429", SendGridRateLimitError("limit", status_code=429), {READ, ONCE, SCHEDULE}),
    ("503", SendGridServerError("down", status_code=503), {READ}),
    ("501", SendGridServerError("no", status_code=501), set()),
    ("400", SendGridValidationError("bad", status_code=400), set()),
    ("connect refused", _transport(httpx.ConnectError("refused")), {READ, SCHEDULE}),
    ("read timeout", _transport(httpx.ReadTimeout("slow")), {READ}),
    ("dropped", _transport(httpx.RemoteProtocolError("gone")), {READ}),
    ("unsupported protocol", _transport(httpx.UnsupportedProtocol("ftp")), set()),
    ("TLS to plain HTTP", SendGridConfigError("tls"), set()),
    ("cut-short body", SendGridResponseError("cut", status_code=200), {READ}),
]


@pytest.mark.parametrize(("answer", "error", "retried_for"), TABLE, ids=[row[0] for row in TABLE])
def test_one_rule_decides_every_retry(answer: str, error: BaseException, retried_for: set[Retry]) -> None:
    assert {kind for kind in Retry if retried(kind, error)} == retried_for


@pytest.mark.parametrize(
    ("value", "expected"), [("1e20", 1e20), ("inf", math.inf), ("-inf", 0.0), ("1e400", math.inf)]
)
def test_requested_wait_survives_hostile_numbers(value: str, expected: float) -> None:
    assert requested_wait({"Retry-After": value}, NOW, rate_limited=True) == expected
    reset = requested_wait({"X-RateLimit-Reset": value}, NOW, rate_limited=True)
    assert reset == (expected if expected in (0.0, math.inf) else expected - NOW)


def test_named_waits_are_capped_at_a_day_and_logged() -> None:
    logged: list[tuple[Any, ...]] = []

    class Log:
        def warning(self, event: Any, *args: Any, **kw: Any) -> None:
            logged.append((event, *args))

    assert named_wait({"Retry-After": "inf"}, 429, NOW, Log(), "GET /x") == MAX_SERVER_WAIT == 86400
    assert named_wait({"Retry-After": "30"}, 429, NOW, Log(), "GET /x") == 30.0
    assert len(logged) == 1 and "capped" in logged[0][0]
    assert reset_time(NOW, math.inf) == datetime.datetime.fromtimestamp(NOW + 86400, datetime.timezone.utc)


def test_a_named_wait_gets_jitter_and_one_past_max_wait_is_not_sat_out() -> None:
    policy = RetryPolicy(initial_wait=1.0, max_wait=60.0, jitter=1.0)
    assert next_wait(1, 5.0, policy, rand=lambda: 0.25) == 5.25
    assert next_wait(3, None, policy, rand=lambda: 0.0) == 4.0
    assert next_wait(1, 61.0, policy) is None


def test_an_exact_named_wait_gets_no_jitter_but_the_backoff_keeps_it() -> None:
    policy = RetryPolicy(initial_wait=1.0, max_wait=60.0, jitter=1.0)
    assert next_wait(1, 5.0, policy, exact=True, rand=lambda: 0.25) == 5.0
    assert next_wait(3, None, policy, exact=True, rand=lambda: 0.5) == 4.5
    assert next_wait(1, 61.0, policy, exact=True) is None
