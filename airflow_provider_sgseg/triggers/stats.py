"""Deferrable wait for a Single Send's stats to settle; the rule is in ``rules/stats.py``."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pendulum
from airflow.triggers.base import TriggerEvent

from airflow_provider_sgseg.exceptions import SendGridError
from airflow_provider_sgseg.rules import pacing, stats, waiting
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.requests import GetSingleSendStats
from airflow_provider_sgseg.triggers._base import SendGridWaitTrigger, failure_status

DEFAULT_BOUNDS = pacing.WaitBounds(floor=60.0, ceiling=3600.0, interval=1800.0)


@dataclass(frozen=True)
class StatsWait:
    """Where a stats wait stands: the Single Send's ``status`` and ``send_at`` once read (a
    ``triggered`` send is not read again), and the settle rule's :class:`~stats.Observation`."""

    status: str | None = None
    send_at: str | None = None
    observation: stats.Observation = field(default_factory=stats.Observation)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "send_at": self.send_at, "observation": self.observation.to_dict()}

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> StatsWait:
        value = value or {}
        return cls(
            value.get("status"), value.get("send_at"), stats.Observation.from_dict(value.get("observation"))
        )

    def seen(self, single_send: dict[str, Any] | None) -> StatsWait:
        """This wait after reading the Single Send (None: not read this time)."""
        if single_send is None:
            return self
        return StatsWait(single_send.get("status"), single_send.get("send_at"), self.observation)

    def judge(
        self, rows: list[dict[str, Any]] | None, now: datetime.datetime, settle_for: float, max_wait: float
    ) -> tuple[StatsWait, waiting.Outcome]:
        """The settle rule on this poll's total ``rows`` (None: not read, not sent yet): the new wait
        and the engine's outcome (:class:`~waiting.Finished` carries ``provisional``)."""
        verdict = stats.settle(
            self.observation,
            status=self.status,
            send_at=self.send_at,
            counts=None if rows is None else stats.total_counts(rows),
            now=now,
            settle_for=settle_for,
            max_wait=max_wait,
        )
        wait = StatsWait(self.status, self.send_at, verdict.observation)
        if verdict.done:
            return wait, waiting.Finished(verdict.provisional, verdict.reason)
        return wait, waiting.Pending(verdict.reason, verdict.next_at)


def totals_request(single_send_id: str, send_at: str | None, now: datetime.datetime) -> GetSingleSendStats:
    """The one read per poll once sent: all-time ``total`` counts, from the day before ``send_at``
    to the day after ``now`` (UTC), so no time zone can push a count outside the range."""
    day = datetime.timedelta(days=1)
    sent = parse_instant(send_at) or pendulum.instance(now)
    return GetSingleSendStats(single_send_id, (sent - day).date(), (now + day).date())


def result_of(single_send_id: str, wait: StatsWait, provisional: bool | None) -> dict[str, Any]:
    """The sensor's XCom (and the trigger event's result fields)."""
    observation = wait.observation
    return {
        "single_send_id": single_send_id,
        "send_at": wait.send_at,
        "provisional": provisional,
        "counts": dict(observation.counts) if observation.counts is not None else None,
        "changed_at": observation.changed_at,
    }


class SendGridSingleSendStatsTrigger(SendGridWaitTrigger):
    """Poll a Single Send until its stats settle (or ``max_wait`` after ``send_at``), then fire
    exactly one event: ``{"status": "success" | "timeout" | "error" | "invalid", "message", "single_send_id",
    "send_at", "provisional", "counts", "changed_at"}``.

    Each poll reads ``GET /v3/marketing/singlesends/{id}`` until the send is ``triggered``, then only
    ``GET /v3/marketing/stats/singlesends/{id}`` (totals). One attempt per poll: the loop is the retry.

    :param sendgrid_conn_id: connection id; the key is looked up in the triggerer.
    :param single_send_id: the Single Send.
    :param settle_for: seconds the counts must stay unchanged.
    :param max_wait: seconds after ``send_at`` when still-changing counts are taken as provisional.
    :param wait: :meth:`StatsWait.to_dict` of the sensor's last look (survives a triggerer restart).
    :param deadline: ISO timestamp after which the wait ends with a ``timeout`` event.
    :param first_poll_at: ISO timestamp of the first poll (None: at once).
    :param hook_params: the task's JSON-safe ``hook_params`` (``retry`` as its numbers); the
        hook tries each request once unless they name a ``retry`` policy.
    :param bounds: ``poll_floor``, ``poll_ceiling``, ``poke_interval``, ``poll_slack``,
        ``max_consecutive_failures`` (:meth:`~airflow_provider_sgseg.rules.pacing.WaitBounds.to_arguments`).
    """

    def __init__(
        self,
        *,
        sendgrid_conn_id: str,
        single_send_id: str,
        settle_for: float,
        max_wait: float,
        wait: dict[str, Any] | None = None,
        deadline: str | None = None,
        first_poll_at: str | None = None,
        hook_params: dict[str, Any] | None = None,
        **bounds: float,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.sendgrid_conn_id = sendgrid_conn_id
        self.single_send_id = single_send_id
        self.settle_for = settle_for
        self.max_wait = max_wait
        self.wait = StatsWait.from_dict(wait)
        self.deadline = deadline
        self.first_poll_at = first_poll_at
        self.hook_params = dict(hook_params or {})
        self.bounds = pacing.WaitBounds.from_arguments({**DEFAULT_BOUNDS.to_arguments(), **bounds})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """``(classpath, kwargs)``: plain JSON; the API key is never among them."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sendgrid_conn_id": self.sendgrid_conn_id,
                "single_send_id": self.single_send_id,
                "settle_for": self.settle_for,
                "max_wait": self.max_wait,
                "wait": self.wait.to_dict(),
                "deadline": self.deadline,
                "first_poll_at": self.first_poll_at,
                **self._hook_params_kwarg(),
                **self.bounds.to_arguments(),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield exactly one event (shape in the class docstring), whatever goes wrong."""
        try:
            event = await self._poll()
        except Exception as error:
            self.log.exception("Waiting for Single Send %s stats failed unexpectedly", self.single_send_id)
            event = self._event(
                failure_status(error),
                f"Waiting for Single Send {self.single_send_id} stats failed: {error!r}",
            )
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    async def _poll(self) -> dict[str, Any]:
        hook = self.wait_hook()
        deadline = parse_instant(self.deadline)
        first = parse_instant(self.first_poll_at)
        if first is not None:
            moment = min(first, deadline) if deadline else first
            remaining = moment.timestamp() - self.now().timestamp()
            if remaining > 0:
                await self.sleep(remaining)
        state = waiting.WaitState()
        while True:
            try:
                outcome = await self._look(hook, deadline)
            except waiting.TRANSIENT_ERRORS as error:
                outcome = waiting.transient(error)
            except SendGridError as error:
                return self._event(
                    failure_status(error), f"Reading Single Send {self.single_send_id} stats failed: {error}"
                )
            action = waiting.step(state, outcome, self.now(), self.bounds, deadline)
            if isinstance(action, waiting.Done):
                return self._event("success", action.reason, provisional=action.value)
            if not isinstance(action, waiting.Wait):
                message = f"Single Send {self.single_send_id}: {action.reason}"
                return self._event(waiting.EVENT_STATUS[type(action)], message)
            (self.log.warning if action.failures else self.log.info)(
                "Single Send %s stats: %s; next look in %.0f s",
                self.single_send_id,
                action.reason,
                action.delay,
            )
            state = action.state
            await self.sleep(action.delay)

    async def _look(self, hook: Any, deadline: datetime.datetime | None) -> waiting.Outcome:
        """One look; each answer is cut off at ``deadline`` (a transient failure)."""
        single_send = rows = None
        if self.wait.status != "triggered":
            single_send = await self.before(deadline, hook.aget_single_send(self.single_send_id))
        wait = self.wait.seen(single_send)
        if wait.status == "triggered":
            request = totals_request(self.single_send_id, wait.send_at, self.now())
            rows = await self.before(deadline, hook.aget_single_send_stats(request))
        self.wait, outcome = wait.judge(rows, self.now(), self.settle_for, self.max_wait)
        return outcome

    def _event(self, status: str, message: str, provisional: bool | None = None) -> dict[str, Any]:
        return {
            "status": status,
            "message": message,
            **result_of(self.single_send_id, self.wait, provisional),
        }
