"""The hook's retry rule, in one place: which failed answers are sent again, after how long.

Both the API requests (``hooks/marketing.py``) and the export downloads (``hooks/_transfer.py``)
ask :func:`retried` whether to send again and :func:`next_wait` how long to wait first; docs/hook.md
("Retries") draws the same rule as a table. No HTTP and no sleeping here: the callers do both.

By request kind (:class:`~airflow_provider_sgseg.rules.requests.Retry`):

* ``IDEMPOTENT`` (reads, PATCH, DELETE, downloads): again after a 429, a 500/502/503/504, a
  transport error that may pass (timeout, dropped connection) or a cut-short 2xx body.
* ``SENT_ONCE`` (POSTs, job-starting PUTs): again only where SendGrid did nothing: a 429.
* ``IF_NOTHING_SENT`` (the schedule PUT): also after a connection that failed before a byte was
  sent.
* ``NEVER`` (the segment refresh, whose 429 is the daily quota; ``test_connection``'s probe).

A wait SendGrid names (``Retry-After``, or ``X-RateLimit-Reset`` on a 429) is used instead of the
backoff, plus up to ``jitter`` seconds so callers refused together do not return together (not
in a trigger's hook, ``exact_named_waits``: a wait in the triggerer lasts until the named reset). Named
waits are capped at :data:`MAX_SERVER_WAIT`; one longer than ``policy.max_wait`` is not sat out:
the call fails at once with the error's ``reset_at``.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import tenacity

from airflow_provider_sgseg.exceptions import (
    SendGridRateLimitError,
    SendGridResponseError,
    SendGridServerError,
    SendGridTransportError,
)
from airflow_provider_sgseg.rules.pacing import MAX_SERVER_WAIT
from airflow_provider_sgseg.rules.requests import Retry

# X-RateLimit-Reset is documented as a Unix epoch, but one SendGrid spec calls it "seconds until
# the window is over". Anything this large can only be an epoch (it is 2001-09-09).
EPOCH_THRESHOLD = 1_000_000_000

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# Transport errors raised before a single byte was sent.
NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport errors worth another try of an idempotent request (others, e.g. an unsupported URL
# scheme, are configuration).
TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class _Log(Protocol):
    def warning(self, event: Any, *args: Any, **kw: Any) -> Any: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how patiently the hook sends a request again.

    ``max_attempts`` counts the first try. Waits grow ``initial_wait * 2**(n-1)`` plus up to
    ``jitter`` random seconds, never above ``max_wait``. When SendGrid names a wait
    (``Retry-After`` / ``X-RateLimit-Reset``) that wait plus up to ``jitter`` seconds is used
    instead; if it is longer than ``max_wait`` the hook gives up at once with the reset time
    rather than sleep inside a task. Which answers are retried at all: the module docstring.
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


# One attempt per call: for callers whose own loop is the retry (a sensor's or a trigger's poll).
NO_RETRY = RetryPolicy(max_attempts=1)


def retried(kind: Retry, error: BaseException) -> bool:
    """Whether a request of ``kind`` that failed with ``error`` may be sent again (the wait aside)."""
    if kind is Retry.NEVER:
        return False
    if isinstance(error, SendGridTransportError):
        cause = error.__cause__
        if kind is Retry.IF_NOTHING_SENT:
            return isinstance(cause, NOTHING_SENT)
        return kind is Retry.IDEMPOTENT and isinstance(cause, TRANSIENT)
    if isinstance(error, SendGridRateLimitError):
        return True  # SendGrid did nothing: even a write sent once may go again after the wait
    if kind is not Retry.IDEMPOTENT:
        return False
    if isinstance(error, SendGridResponseError):
        return True  # a cut-short or malformed body; the request can simply be repeated
    return isinstance(error, SendGridServerError) and error.status_code in RETRYABLE_STATUSES


@dataclass
class Attempts:
    """One call's retry state: the wait SendGrid named in its latest answer (the caller reports a
    refusal with :meth:`refused` and sets ``named`` to ``None`` otherwise) and the wait decided next."""

    kind: Retry
    policy: RetryPolicy
    named: float | None = None
    wait: float = 0.0
    exact_named_waits: bool = False

    def refused(
        self, headers: Mapping[str, str], status: int, now: float, log: _Log, what: str
    ) -> datetime.datetime | None:
        """Note the wait a non-2xx answer names (:func:`named_wait`); its ``reset_at`` on a 429."""
        self.named = named_wait(headers, status, now, log, what)
        return reset_time(now, self.named) if status == 429 else None

    def decide(self, state: tenacity.RetryCallState) -> bool:
        """Tenacity's ``retry``: whether to send again, deciding the wait on the way."""
        error = state.outcome.exception() if state.outcome is not None else None
        if error is None or not retried(self.kind, error):
            return False
        wait = next_wait(state.attempt_number, self.named, self.policy, exact=self.exact_named_waits)
        self.wait = wait or 0.0
        return wait is not None

    def options(self, sleep: Any, before_sleep: Callable[[tenacity.RetryCallState], None]) -> dict[str, Any]:
        """Keyword arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` (re-raising the last error)."""
        attempts = 1 if self.kind is Retry.NEVER else self.policy.max_attempts
        return {
            "stop": tenacity.stop_after_attempt(attempts),
            "retry": self.decide,
            "wait": lambda state: self.wait,
            "before_sleep": before_sleep,
            "sleep": sleep,
            "reraise": True,
        }


def next_wait(
    attempt: int,
    named: float | None,
    policy: RetryPolicy,
    *,
    exact: bool = False,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): the wait SendGrid
    ``named`` plus jitter (none when ``exact``), else :func:`backoff`; ``None`` when the named
    wait exceeds ``policy.max_wait`` (give up now: the error carries ``reset_at``)."""
    if named is not None and named > policy.max_wait:
        return None
    if named:
        return named if exact else named + policy.jitter * rand()
    return backoff(attempt, policy, rand=rand)


def backoff(attempt: int, policy: RetryPolicy, *, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter after failed attempt number ``attempt`` (1-based), capped."""
    base = policy.initial_wait * 2.0 ** max(attempt - 1, 0)
    return min(policy.max_wait, base + policy.jitter * rand())


def named_wait(headers: Mapping[str, str], status: int, now: float, log: _Log, what: str) -> float | None:
    """The wait a non-2xx answer names (:func:`requested_wait`), capped at :data:`MAX_SERVER_WAIT`;
    a cap is logged as a warning naming ``what`` was answered."""
    seconds = requested_wait(headers, now, rate_limited=status == 429)
    if seconds is not None and seconds > MAX_SERVER_WAIT:
        log.warning(
            "%s answered %d naming a wait of %.6g s; capped at %.0f s (SendGrid's quotas reset "
            "within 24 hours)",
            what,
            status,
            seconds,
            MAX_SERVER_WAIT,
        )
        return MAX_SERVER_WAIT
    return seconds


def reset_time(now: float, seconds: float | None) -> datetime.datetime | None:
    """When a named wait of ``seconds`` (capped, so always a representable time) ends, in UTC."""
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(now + min(seconds, MAX_SERVER_WAIT), tz=datetime.timezone.utc)


def requested_wait(headers: Mapping[str, str], now: float, *, rate_limited: bool) -> float | None:
    """Seconds the server asked us to wait, from ``Retry-After`` or ``X-RateLimit-Reset``, as named
    (not capped: see :func:`named_wait`); ``math.inf`` for an infinite one.

    ``Retry-After`` is seconds or an HTTP date. ``X-RateLimit-Reset`` is an epoch when above
    :data:`EPOCH_THRESHOLD`, otherwise seconds to go; SendGrid sends it on every response (it
    is the end of the current rate-limit window), so it only means "wait" on a 429
    (``rate_limited``). Unparseable and NaN values are ignored. A time in the past gives 0.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    retry_after = lowered.get("retry-after")
    if retry_after is not None:
        seconds = _retry_after_seconds(retry_after.strip(), now)
        if seconds is not None:
            return seconds
    reset = lowered.get("x-ratelimit-reset")
    if reset is not None and rate_limited:
        value = _number(reset)
        if value is None:
            return None
        return max(0.0, value - now) if value > EPOCH_THRESHOLD else max(0.0, value)
    return None


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _retry_after_seconds(value: str, now: float) -> float | None:
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - now)
