"""Deferrable wait for a SendGrid segment to populate, polling on SendGrid's own schedule."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_sgseg.exceptions import SendGridError
from airflow_provider_sgseg.rules import pacing, waiting
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.population import (
    SEGMENT_WAIT_BOUNDS,
    Deadline,
    Verdict,
    poll_log_line,
    segment_outcome,
    verdict,
)
from airflow_provider_sgseg.triggers._base import SendGridWaitTrigger, failure_status


class SendGridSegmentPopulatedTrigger(SendGridWaitTrigger):
    """Poll a segment until it is populated, then fire exactly one event.

    "Populated" is :func:`airflow_provider_sgseg.rules.population.verdict`; the time between polls is
    :func:`airflow_provider_sgseg.rules.waiting.step` (SendGrid's ``next_sample_update`` plus
    slack, within ``[poll_floor, poll_ceiling]``). A transient failure (5xx, 429, no answer, a
    malformed 2xx body) is counted, not final. No poll starts once ``deadline`` has come, and
    none outlives it.

    The event is ``{"status": "success" | "invalid" | "timeout" | "error", "message": ...,
    "segment_id", "contacts_count", "sample_updated_at", "segment_name"}`` (the last three as
    last seen; the name is for the sensor's summary, which has no state store before Airflow 3.3).

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
    :param hook_params: the task's JSON-safe ``hook_params`` (``retry`` as its numbers); the
        hook tries each request once unless they name a ``retry``.
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
        hook_params: dict[str, Any] | None = None,
        **bounds: float,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.sendgrid_conn_id = sendgrid_conn_id
        self.segment_id = segment_id
        self.watermark = watermark
        self.min_contacts = min_contacts
        if "poll_default" in bounds:
            bounds["poke_interval"] = bounds.pop("poll_default")
        self.bounds = pacing.WaitBounds.from_arguments({**SEGMENT_WAIT_BOUNDS.to_arguments(), **bounds})
        self.deadline = deadline
        self.first_poll_at = first_poll_at
        self.hook_params = dict(hook_params or {})

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
                **self._hook_params_kwarg(),
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

    async def _wait(self) -> dict[str, Any]:
        """Poll until a terminal answer; return the one event payload, whatever goes wrong.

        Without an event the task would hang until the sensor's safety-net timeout. Cancellation
        (triggerer shutdown, task cleared) is a BaseException and still propagates.
        """
        self._last_seen: Verdict | None = None
        self._last_name: str | None = None
        try:
            return await self._poll()
        except Exception as error:
            self.log.exception("Waiting for segment %s failed unexpectedly", self.segment_id)
            return self._event(
                failure_status(error),
                f"Waiting for segment {self.segment_id} failed unexpectedly in the triggerer "
                f"(connection {self.sendgrid_conn_id!r}): {type(error).__name__}: {error}",
            )

    async def _poll(self) -> dict[str, Any]:
        hook = self.wait_hook()
        watermark = parse_instant(self.watermark)
        deadline = parse_instant(self.deadline)
        state = waiting.WaitState()
        reason = "no poll yet"

        first_poll_at = parse_instant(self.first_poll_at)
        if first_poll_at is not None:
            await self._sleep_until(first_poll_at, deadline)
        while True:
            late = waiting.timed_out(deadline, self.now(), reason, state.failures)
            if late is not None:
                return self._event("timeout", self._message(late, deadline))
            result: Verdict | None = None  # this poll's verdict, if it got an answer
            try:
                segment = await self.before(
                    deadline, hook.aget_segment(self.segment_id, contacts_sample=False)
                )
            except waiting.TRANSIENT_ERRORS as error:
                outcome: waiting.Outcome = waiting.transient(error)
            except SendGridError as error:
                return self._event(
                    failure_status(error), f"Polling segment {self.segment_id} failed: {error}"
                )
            else:
                result = self._last_seen = verdict(segment, watermark, self.min_contacts)
                self._last_name = segment.get("name")
                outcome = segment_outcome(result, segment)
            now = self.now()
            action = waiting.step(state, outcome, now, self.bounds, deadline)
            if not isinstance(action, waiting.Wait):
                message = self._message(action, deadline)
                return self._event(waiting.EVENT_STATUS[type(action)], message)
            log = self.log.warning if action.failures else self.log.info
            cut_off = (
                Deadline(deadline, "the deadline (timeout or execution_timeout)")
                if deadline is not None
                else None
            )
            log("%s", poll_log_line(self.segment_id, action, result, watermark, now, cut_off))
            state, reason = action.state, action.reason
            await self.sleep(action.delay)

    def _message(self, action: waiting.Action, deadline: datetime.datetime | None) -> str:
        """The event message for a terminal action."""
        if isinstance(action, waiting.Failed):
            return f"Polling segment {self.segment_id}: {action.reason}"
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
            "segment_name": self._last_name,
        }


def __getattr__(name: str) -> Any:
    """0.2.0's module constants (deprecated, removed in 1.0): see ``_deprecated.WAIT_CONSTANTS``."""
    from airflow_provider_sgseg._deprecated import WAIT_CONSTANTS, moved_names

    return moved_names(__name__, WAIT_CONSTANTS)(name)
