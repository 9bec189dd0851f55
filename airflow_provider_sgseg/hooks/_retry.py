"""Retry policy and wait arithmetic for the hook. Pure: no HTTP, no sleeping.

The hook feeds these functions the response headers and the attempt number; they say how long
to wait, or that the server asked for a wait too long to sit out inside a task.
"""

from __future__ import annotations

import asyncio
import datetime
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# X-RateLimit-Reset is documented as a Unix epoch, but one SendGrid spec calls it "seconds until
# the window is over". Anything this large can only be an epoch (it is 2001-09-09).
EPOCH_THRESHOLD = 1_000_000_000

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How the hook retries idempotent requests.

    ``max_attempts`` counts the first try. Waits grow ``initial_wait * 2**(n-1)`` plus up to
    ``jitter`` random seconds, never above ``max_wait``. When SendGrid names a wait
    (``Retry-After`` / ``X-RateLimit-Reset``) that wait is used instead; if it is longer than
    ``max_wait`` the hook gives up at once with the reset time rather than sleep inside a task.
    ``sleep``, ``async_sleep`` and ``clock`` are injectable for tests.
    """

    max_attempts: int = 5
    initial_wait: float = 1.0
    max_wait: float = 60.0
    jitter: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_wait < 0 or self.max_wait < 0 or self.jitter < 0:
            raise ValueError("RetryPolicy waits and jitter must not be negative")


NO_RETRY = RetryPolicy(max_attempts=1)


def backoff(attempt: int, policy: RetryPolicy, *, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter after failed attempt number ``attempt`` (1-based), capped."""
    base = policy.initial_wait * 2.0 ** max(attempt - 1, 0)
    return min(policy.max_wait, base + policy.jitter * rand())


def requested_wait(headers: Mapping[str, str], now: float, *, rate_limited: bool) -> float | None:
    """Seconds the server asked us to wait, from ``Retry-After`` or ``X-RateLimit-Reset``.

    ``Retry-After`` is seconds or an HTTP date. ``X-RateLimit-Reset`` is an epoch when above
    :data:`EPOCH_THRESHOLD`, otherwise seconds to go; SendGrid sends it on every response (it
    is the end of the current rate-limit window), so it only means "wait" on a 429
    (``rate_limited``). Unparseable values are ignored. A time in the past gives 0.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    retry_after = lowered.get("retry-after")
    if retry_after is not None:
        seconds = _retry_after_seconds(retry_after.strip(), now)
        if seconds is not None:
            return seconds
    reset = lowered.get("x-ratelimit-reset")
    if reset is not None and rate_limited:
        try:
            value = float(reset.strip())
        except ValueError:
            return None
        if value != value or value in (float("inf"), float("-inf")):  # NaN / inf
            return None
        return max(0.0, value - now) if value > EPOCH_THRESHOLD else max(0.0, value)
    return None


def _retry_after_seconds(value: str, now: float) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - now)
