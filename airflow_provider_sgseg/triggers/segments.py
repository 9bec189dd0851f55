"""Deferrable wait for a SendGrid segment to populate, polling on SendGrid's own schedule."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from typing import Any

import pendulum
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_sgseg.exceptions import SendGridError
from airflow_provider_sgseg.rules import pacing, waiting
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.population import (
    DEFAULT_BOUNDS,
    Verdict,
    poll_log_line,
    segment_outcome,
    verdict,
)


class SendGridSegmentPopulatedTrigger(BaseTrigger):
    """Poll a segment until it is populated, then fire exactly one event.

    "Populated" is :func:`airflow_provider_sgseg.rules.population.verdict`; the time between polls is
    :func:`~airflow_provider_sgseg.rules.population.next_poll_delay` (SendGrid's
    ``next_sample_update`` plus slack, within ``[poll_floor, poll_ceiling]``).

    The event is ``{"status": "success" | "invalid" | "timeout" | "error", "message": ...,
    "segment_id", "contacts_count", "sample_updated_at"}`` (the last two as last seen).

    :param sendgrid_conn_id: connection id; the key itself is looked up in the triggerer.
    :param segment_id: the segment to watch.
    :param watermark: ISO timestamp; the sample must be newer than this. ``None``: any sample.
    :param min_contacts: the sample must count at least this many contacts.
    :param bounds: ``poll_floor``, ``poll_ceiling``, ``poke_interval``, ``poll_slack`` (seconds)
        and ``max_consecutive_failures``, as the sensor takes them
        (:meth:`~airflow_provider_sgseg.rules.pacing.WaitBounds.to_arguments`); absent ones
        keep the sensor's defaults. ``poll_default``: ``poke_interval`` in triggers serialised
        by 0.2.0, still read.
    :param deadline: ISO timestamp after which the wait ends with a ``timeout`` event.
    :param first_poll_at: ISO timestamp of the first poll (the sensor just looked, so the
        trigger need not look again before SendGrid's next sample). ``None``: poll at once.
    :raises SendGridInputError: bad bounds (when the trigger is built).
    """

    def __init__(
        self,
        *,
        sendgrid_conn_id: str,
        segment_id: str,
        watermark: str | None,
        min_contacts: int = 1,
        deadline: str | None = None,
        first_poll_at: str | None = None,
        **bounds: float,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.sendgrid_conn_id = sendgrid_conn_id
        self.segment_id = segment_id
        self.watermark = watermark
        self.min_contacts = min_contacts
        if "poll_default" in bounds:
            bounds["poke_interval"] = bounds.pop("poll_default")
        self.bounds = pacing.WaitBounds.from_arguments({**DEFAULT_BOUNDS.to_arguments(), **bounds})
        self.deadline = deadline
        self.first_poll_at = first_poll_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """``(classpath, kwargs)``: plain JSON values only. The API key is deliberately absent:
        the triggerer resolves the connection id itself, so the key never lands in the trigger
        table."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sendgrid_conn_id": self.sendgrid_conn_id,
                "segment_id": self.segment_id,
                "watermark": self.watermark,
                "min_contacts": self.min_contacts,
                "deadline": self.deadline,
                "first_poll_at": self.first_poll_at,
                **self.bounds.to_arguments(),
            },
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} segment_id={self.segment_id!r} conn_id={self.sendgrid_conn_id!r} "
            f"watermark={self.watermark!r} min_contacts={self.min_contacts} deadline={self.deadline!r}>"
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield exactly one event (shape in the class docstring), whatever goes wrong."""
        yield TriggerEvent(await self._wait())  # type: ignore[no-untyped-call]

    # Test seams: what time it is and how to wait. Methods, so a test can patch them on the
    # class (making a sleep advance the emulator's clock) without anything being serialised.
    def now(self) -> datetime.datetime:
        """The current time (aware, UTC); a test seam."""
        return pendulum.now("UTC")

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; a test seam."""
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
            )

    async def _poll(self) -> dict[str, Any]:
        from airflow_provider_sgseg.hooks.marketing import NO_RETRY, SendGridMarketingHook

        # One attempt per poll: this loop is the retry, and it waits by SendGrid's schedule.
        hook = SendGridMarketingHook(self.sendgrid_conn_id, retry=NO_RETRY)
        watermark = parse_instant(self.watermark)
        deadline = parse_instant(self.deadline)
        state = waiting.WaitState()

        first_poll_at = parse_instant(self.first_poll_at)
        if first_poll_at is not None:
            await self._sleep_until(first_poll_at, deadline)
        while True:
            result: Verdict | None = None  # this poll's verdict, if it got an answer
            try:
                segment = await hook.aget_segment(self.segment_id, contacts_sample=False)
            except waiting.TRANSIENT_ERRORS as error:
                outcome: waiting.Outcome = waiting.transient(error)
            except SendGridError as error:
                return self._event("error", f"Polling segment {self.segment_id} failed: {error}")
            else:
                result = self._last_seen = verdict(segment, watermark, self.min_contacts)
                outcome = segment_outcome(result, segment)
            now = self.now()
            action = waiting.step(state, outcome, now, self.bounds, deadline)
            if not isinstance(action, waiting.Wait):
                return self._event(
                    waiting.EVENT_STATUS[type(action)], self._message(action, outcome, deadline)
                )
            log = self.log.warning if action.failures else self.log.info
            log("%s", poll_log_line(self.segment_id, action, result, watermark, now))
            state = action.state
            await self.sleep(action.delay)

    def _message(
        self, action: waiting.Action, outcome: waiting.Outcome, deadline: datetime.datetime | None
    ) -> str:
        """The event message for a terminal action."""
        if isinstance(action, waiting.Failed):
            return (
                f"{action.failures} transient failures in a row polling segment {self.segment_id}: "
                f"{outcome.reason}"
            )
        if isinstance(action, waiting.Timeout):
            reason = self._last_seen.reason if self._last_seen else "no successful poll"
            at = deadline.isoformat() if deadline else None
            return f"Segment {self.segment_id} not populated by {at}: {reason}"
        return getattr(action, "reason", "")

    async def _sleep_until(self, moment: datetime.datetime, deadline: datetime.datetime | None) -> None:
        if deadline is not None:
            moment = min(moment, deadline)
        remaining = moment.timestamp() - self.now().timestamp()
        if remaining > 0:
            await self.sleep(remaining)

    def _event(self, status: str, message: str) -> dict[str, Any]:
        seen = self._last_seen
        sample_at = seen.sample_updated_at if seen else None
        return {
            "status": status,
            "message": message,
            "segment_id": self.segment_id,
            "contacts_count": seen.contacts_count if seen else None,
            "sample_updated_at": sample_at.isoformat() if sample_at else None,
        }
