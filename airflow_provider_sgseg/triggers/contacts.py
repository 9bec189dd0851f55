"""Deferrable wait for a task's SendGrid contacts jobs (upsert/import jobs, or an export)."""

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
from airflow_provider_sgseg.rules.jobs import JOB_KINDS as JOB_KINDS
from airflow_provider_sgseg.rules.jobs import JobBoard, job_payload


class SendGridContactsJobsTrigger(BaseTrigger):
    """Poll every job of one task until all have ended, then fire exactly one event.

    Import jobs: ``GET /v3/marketing/contacts/imports/{id}``; exports:
    ``GET /v3/marketing/contacts/exports/{id}``. Pacing, failure counting and the deadline are
    :func:`airflow_provider_sgseg.rules.waiting.step`.

    Event: ``{"status": "success" | "invalid" | "timeout" | "error", "message": str,
    "results": {job_id: {...}}}``; for imports each result has ``status``, the four counts and
    ``errors_url``; for exports ``export_id``, ``contact_count``, ``expires_at``.

    :param sendgrid_conn_id: connection id; the key itself is looked up in the triggerer.
    :param job_kind: ``import`` or ``export``.
    :param job_ids: the jobs to wait for.
    :param bounds: :meth:`WaitBounds.to_dict` (seconds).
    :param deadline: ISO timestamp after which the wait ends with a ``timeout`` event.
    :param resume: plain JSON the task needs after the wait, handed back as the event's
        ``resume`` (not through ``defer(kwargs=...)``, which ``airflow dags test`` drops).
    """

    def __init__(
        self,
        *,
        sendgrid_conn_id: str,
        job_kind: str,
        job_ids: list[str],
        bounds: dict[str, Any],
        deadline: str | None = None,
        resume: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.sendgrid_conn_id = sendgrid_conn_id
        self.job_kind = job_kind
        self.job_ids = list(job_ids)
        self.bounds = pacing.WaitBounds(**bounds)
        self.deadline = deadline
        self.resume = resume

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # Plain JSON values; the API key stays out (the triggerer resolves the connection itself).
        """``(classpath, kwargs)``: plain JSON values, never the API key."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sendgrid_conn_id": self.sendgrid_conn_id,
                "job_kind": self.job_kind,
                "job_ids": self.job_ids,
                "bounds": self.bounds.to_dict(),
                "deadline": self.deadline,
                "resume": self.resume,
            },
        )

    # Test seams, as in the segment trigger.
    def now(self) -> datetime.datetime:
        """The current time (aware, UTC); a test seam."""
        return pendulum.now("UTC")

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; a test seam."""
        await asyncio.sleep(seconds)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield exactly one event (shape in the class docstring), whatever goes wrong."""
        try:
            event = await self._wait()
        except Exception as error:  # any surprise still ends the wait with one event
            self.log.exception("Waiting for SendGrid %s jobs failed unexpectedly", self.job_kind)
            event = {"status": "error", "message": f"{type(error).__name__}: {error}", "results": {}}
        yield TriggerEvent({**event, "resume": self.resume})  # type: ignore[no-untyped-call]

    async def _wait(self) -> dict[str, Any]:
        from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook

        hook = SendGridMarketingHook(self.sendgrid_conn_id, retry=RetryPolicy(max_attempts=1))
        deadline = parse_instant(self.deadline)
        board = JobBoard(self.job_kind, self.job_ids)
        state = waiting.WaitState()
        while True:
            for job_id in board.to_read():
                try:
                    answer = await hook.arun(board.request(job_id))
                    board.answered(job_id, answer)
                except SendGridError as error:
                    board.failed(job_id, error)
            action = waiting.step(state, board.outcome(), self.now(), self.bounds, deadline)
            if not isinstance(action, waiting.Wait):
                return event_for(action)
            self.log.info(
                "SendGrid %s jobs: %s; next look in %.0f s", self.job_kind, action.reason, action.delay
            )
            state = action.state
            await self.sleep(action.delay)


def event_for(action: waiting.Action) -> dict[str, Any]:
    """The event payload for a terminal action of the waiting engine."""
    if isinstance(action, waiting.Done):
        results = {job: job_payload(value) for job, value in action.value.items()}
        return {"status": "success", "message": action.reason, "results": results}
    return {
        "status": waiting.EVENT_STATUS[type(action)],
        "message": getattr(action, "reason", ""),
        "results": {},
    }
