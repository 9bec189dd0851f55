"""Deferrable wait for a task's SendGrid contacts jobs (upsert/import jobs, or an export)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_sgseg.exceptions import SendGridError
from airflow_provider_sgseg.rules import pacing, waiting
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.jobs import JOB_KINDS as JOB_KINDS
from airflow_provider_sgseg.rules.jobs import JobBoard, job_payload
from airflow_provider_sgseg.triggers._base import SendGridWaitTrigger, failure_status

# WaitBounds field names: how the ``bounds`` kwarg was spelled before it took the DAG-argument
# names of WaitBounds.to_arguments(); trigger rows stored that way still load.
_FIELD_NAMES = {
    "floor": "poll_floor",
    "ceiling": "poll_ceiling",
    "interval": "poke_interval",
    "slack": "poll_slack",
}


class SendGridContactsJobsTrigger(SendGridWaitTrigger):
    """Poll every job of one task until all have ended, then fire exactly one event.

    Import jobs: ``GET /v3/marketing/contacts/imports/{id}``; exports:
    ``GET /v3/marketing/contacts/exports/{id}``. Pacing, failure counting and the deadline are
    :func:`airflow_provider_sgseg.rules.waiting.step`: a transient failure (5xx, 429, no answer,
    a malformed 2xx body) is counted, not final; no read starts once ``deadline`` has come, and
    none outlives it.

    Event: ``{"status": "success" | "invalid" | "timeout" | "error", "message": str,
    "results": {job_id: {...}}}``; for imports each result has ``status``, the four counts and
    ``errors_url``; for exports ``export_id``, ``contact_count``, ``expires_at``.

    :param sendgrid_conn_id: connection id; the key itself is looked up in the triggerer.
    :param job_kind: ``import`` or ``export``.
    :param job_ids: the jobs to wait for.
    :param bounds: :meth:`WaitBounds.to_arguments` (seconds; the field names ``floor``,
        ``ceiling``, ``interval``, ``slack`` of earlier rows are still read).
    :param deadline: ISO timestamp after which the wait ends with a ``timeout`` event.
    :param resume: plain JSON the task needs after the wait, handed back as the event's
        ``resume`` (not through ``defer(kwargs=...)``, which ``airflow dags test`` drops).
    :param hook_params: the task's JSON-safe ``hook_params`` (``retry`` as its numbers); the
        hook tries each request once unless they name a ``retry``.
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
        hook_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.sendgrid_conn_id = sendgrid_conn_id
        self.job_kind = job_kind
        self.job_ids = list(job_ids)
        arguments = {_FIELD_NAMES.get(name, name): value for name, value in bounds.items()}
        self.bounds = pacing.WaitBounds.from_arguments(arguments)
        self.deadline = deadline
        self.resume = resume
        self.hook_params = dict(hook_params or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """``(classpath, kwargs)``: plain JSON values, never the API key (the triggerer resolves
        the connection itself)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sendgrid_conn_id": self.sendgrid_conn_id,
                "job_kind": self.job_kind,
                "job_ids": self.job_ids,
                "bounds": self.bounds.to_arguments(),
                "deadline": self.deadline,
                "resume": self.resume,
                **self._hook_params_kwarg(),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield exactly one event (shape in the class docstring), whatever goes wrong."""
        try:
            event = await self._wait()
        except Exception as error:  # any surprise still ends the wait with one event
            self.log.exception("Waiting for SendGrid %s jobs failed unexpectedly", self.job_kind)
            event = {
                "status": failure_status(error),
                "message": f"{type(error).__name__}: {error}",
                "results": {},
            }
        yield TriggerEvent({**event, "resume": self.resume})  # type: ignore[no-untyped-call]

    async def _wait(self) -> dict[str, Any]:
        hook = self.wait_hook()
        deadline = parse_instant(self.deadline)
        board = JobBoard(self.job_kind, self.job_ids)
        state = waiting.WaitState()
        reason = "no look yet"
        while True:
            for job_id in board.to_read():
                late = waiting.timed_out(deadline, self.now(), reason, state.failures)
                if late is not None:
                    return event_for(late)
                try:
                    answer = await self.before(deadline, hook.arun(board.request(job_id)))
                    board.answered(job_id, answer)
                except SendGridError as error:
                    board.failed(job_id, error)
            action = waiting.step(state, board.outcome(), self.now(), self.bounds, deadline)
            if not isinstance(action, waiting.Wait):
                return event_for(action)
            self.log.info(
                "SendGrid %s jobs: %s; next look in %.0f s", self.job_kind, action.reason, action.delay
            )
            state, reason = action.state, action.reason
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
