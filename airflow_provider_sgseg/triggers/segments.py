"""Deferrable wait for a SendGrid segment to populate, polling on SendGrid's own schedule."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from typing import Any

import pendulum
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_sgseg.exceptions import (
    SendGridError,
    SendGridRateLimitError,
    SendGridServerError,
    SendGridTransportError,
)
from airflow_provider_sgseg.population import (
    DEFAULT_POLL_CEILING,
    DEFAULT_POLL_FLOOR,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_POLL_SLACK,
    PollBounds,
    Verdict,
    failure_delay,
    next_poll_delay,
    parse_timestamp,
    verdict,
    waiting_summary,
)

# Answers that say "try again later" rather than "this will never work".
TRANSIENT_ERRORS: tuple[type[SendGridError], ...] = (
    SendGridServerError,
    SendGridTransportError,
    SendGridRateLimitError,
)
DEFAULT_MAX_CONSECUTIVE_FAILURES = 5
EVENT_STATUSES = frozenset({"success", "invalid", "timeout", "error"})


class SendGridSegmentPopulatedTrigger(BaseTrigger):
    """Poll a segment until it is populated, then fire exactly one event.

    "Populated" is :func:`airflow_provider_sgseg.population.verdict`; the time between polls is
    :func:`~airflow_provider_sgseg.population.next_poll_delay` (SendGrid's
    ``next_sample_update`` plus slack, within ``[poll_floor, poll_ceiling]``).

    The event is ``{"status": "success" | "invalid" | "timeout" | "error", "message": ...,
    "segment_id", "contacts_count", "sample_updated_at"}`` (the last two as last seen).

    :param sendgrid_conn_id: connection id; the key itself is looked up in the triggerer.
    :param segment_id: the segment to watch.
    :param watermark: ISO timestamp; the sample must be newer than this. ``None``: any sample.
    :param min_contacts: the sample must count at least this many contacts.
    :param deadline: ISO timestamp after which the wait ends with a ``timeout`` event.
    :param first_poll_at: ISO timestamp of the first poll (the sensor just looked, so the
        trigger need not look again before SendGrid's next sample). ``None``: poll at once.
    :param max_consecutive_failures: transient errors (5xx, 429, no answer) tolerated in a row;
        a healthy answer resets the count.
    """

    def __init__(
        self,
        *,
        sendgrid_conn_id: str,
        segment_id: str,
        watermark: str | None,
        min_contacts: int = 1,
        poll_floor: float = DEFAULT_POLL_FLOOR,
        poll_ceiling: float = DEFAULT_POLL_CEILING,
        poll_default: float = DEFAULT_POLL_INTERVAL,
        poll_slack: float = DEFAULT_POLL_SLACK,
        deadline: str | None = None,
        first_poll_at: str | None = None,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.sendgrid_conn_id = sendgrid_conn_id
        self.segment_id = segment_id
        self.watermark = watermark
        self.min_contacts = min_contacts
        self.bounds = PollBounds(poll_floor, poll_ceiling, poll_default, poll_slack)
        self.deadline = deadline
        self.first_poll_at = first_poll_at
        self.max_consecutive_failures = max_consecutive_failures

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # Plain JSON values only. The API key is deliberately absent: the triggerer resolves
        # the connection id itself, so the key never lands in the trigger table.
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sendgrid_conn_id": self.sendgrid_conn_id,
                "segment_id": self.segment_id,
                "watermark": self.watermark,
                "min_contacts": self.min_contacts,
                "poll_floor": self.bounds.floor,
                "poll_ceiling": self.bounds.ceiling,
                "poll_default": self.bounds.default,
                "poll_slack": self.bounds.slack,
                "deadline": self.deadline,
                "first_poll_at": self.first_poll_at,
                "max_consecutive_failures": self.max_consecutive_failures,
            },
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} segment_id={self.segment_id!r} conn_id={self.sendgrid_conn_id!r} "
            f"watermark={self.watermark!r} min_contacts={self.min_contacts} deadline={self.deadline!r}>"
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TriggerEvent(await self._wait())  # type: ignore[no-untyped-call]

    # Test seams: what time it is and how to wait. Methods, so a test can patch them on the
    # class (making a sleep advance the emulator's clock) without anything being serialised.
    def now(self) -> datetime.datetime:
        return pendulum.now("UTC")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _wait(self) -> dict[str, Any]:
        """Poll until a terminal answer; return the one event payload, whatever goes wrong.

        Without an event the task would hang until the sensor's safety-net timeout. Cancellation
        (triggerer shutdown, task cleared) is a BaseException and still propagates.
        """
        self._last_seen: Verdict | None = None
        try:
            return await self._poll()
        except Exception as error:
            self.log.exception("Waiting for segment %s failed unexpectedly", self.segment_id)
            return self._event(
                "error",
                f"Waiting for segment {self.segment_id} failed unexpectedly in the triggerer "
                f"(connection {self.sendgrid_conn_id!r}): {type(error).__name__}: {error}",
                self._last_seen,
            )

    async def _poll(self) -> dict[str, Any]:
        from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook

        # One attempt per poll: this loop is the retry, and it waits by SendGrid's schedule.
        hook = SendGridMarketingHook(self.sendgrid_conn_id, retry=RetryPolicy(max_attempts=1))
        watermark = parse_timestamp(self.watermark)
        deadline = parse_timestamp(self.deadline)
        last_seen: Verdict | None = None
        failures = 0

        first_poll_at = parse_timestamp(self.first_poll_at)
        if first_poll_at is not None:
            await self._sleep_until(first_poll_at, deadline)
        while True:
            problem = None  # why this poll did not get an answer, if it did not
            try:
                segment = await hook.aget_segment(self.segment_id, contacts_sample=False)
            except TRANSIENT_ERRORS as error:
                failures += 1
                if failures > self.max_consecutive_failures:
                    return self._event(
                        "error",
                        f"{failures} transient failures in a row polling segment {self.segment_id}: {error}",
                        last_seen,
                    )
                reset_at = error.reset_at if isinstance(error, SendGridRateLimitError) else None
                floor, ceiling = self.bounds.floor, self.bounds.ceiling
                delay = failure_delay(failures, self.now(), floor, ceiling, reset_at)
                tolerated = self.max_consecutive_failures
                problem = f"transient failure {failures} of {tolerated} tolerated ({error})"
            except SendGridError as error:
                return self._event("error", f"Polling segment {self.segment_id} failed: {error}", last_seen)
            else:
                failures = 0
                last_seen = self._last_seen = verdict(segment, watermark, self.min_contacts)
                if last_seen.status == "populated":
                    return self._event("success", last_seen.reason, last_seen)
                if last_seen.status == "invalid":
                    return self._event("invalid", last_seen.reason, last_seen)
                delay = next_poll_delay(segment, self.now(), *self._bounds_args())

            now = self.now()
            if deadline is not None:
                if now >= deadline:
                    reason = last_seen.reason if last_seen else "no successful poll"
                    return self._event(
                        "timeout",
                        f"Segment {self.segment_id} not populated by {deadline.isoformat()}: {reason}",
                        last_seen,
                    )
                delay = min(delay, deadline.timestamp() - now.timestamp())  # a last look at the deadline
            if problem is not None:
                next_poll = (now + datetime.timedelta(seconds=delay)).isoformat()
                self.log.warning("Segment %s: %s; next poll at %s", self.segment_id, problem, next_poll)
            elif last_seen is not None:
                summary = waiting_summary(last_seen, watermark, now, delay)
                self.log.info("Segment %s %s", self.segment_id, summary)
            await self.sleep(delay)

    async def _sleep_until(self, moment: datetime.datetime, deadline: datetime.datetime | None) -> None:
        if deadline is not None:
            moment = min(moment, deadline)
        remaining = moment.timestamp() - self.now().timestamp()
        if remaining > 0:
            await self.sleep(remaining)

    def _bounds_args(self) -> tuple[float, float, float, float]:
        return (self.bounds.floor, self.bounds.ceiling, self.bounds.default, self.bounds.slack)

    def _event(self, status: str, message: str, seen: Verdict | None) -> dict[str, Any]:
        sample_at = seen.sample_updated_at if seen else None
        return {
            "status": status,
            "message": message,
            "segment_id": self.segment_id,
            "contacts_count": seen.contacts_count if seen else None,
            "sample_updated_at": sample_at.isoformat() if sample_at else None,
        }
