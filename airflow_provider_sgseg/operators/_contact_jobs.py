"""What both contacts operators share beyond :class:`SendGridBaseOperator`: waiting for SendGrid's
contacts jobs (upsert/import jobs, exports), in poke mode or deferred to the triggerer."""

from __future__ import annotations

import datetime
from typing import Any

from airflow_provider_sgseg.exceptions import SendGridError
from airflow_provider_sgseg.operators.base import DEFAULT_CONN_ID, SendGridBaseOperator
from airflow_provider_sgseg.rules import pacing, validation, waiting
from airflow_provider_sgseg.rules.jobs import JobBoard
from airflow_provider_sgseg.version_compat import conf

DEFAULT_WAIT_TIMEOUT = 6 * 3600.0
DEFAULT_BOUNDS = pacing.WaitBounds(floor=5.0, ceiling=300.0, interval=15.0)


def _default_deferrable() -> bool:
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


class ContactsTask(SendGridBaseOperator):
    """What both contacts operators share beyond :class:`SendGridBaseOperator`: job waits (poke
    or deferred)."""

    def __init__(
        self,
        *,
        sendgrid_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool | None = None,
        poll_interval: float = DEFAULT_BOUNDS.interval,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(sendgrid_conn_id=sendgrid_conn_id, **kwargs)
        self.deferrable = (
            _default_deferrable() if deferrable is None else validation.flag("deferrable", deferrable)
        )
        poll_interval = validation.seconds("poll_interval", poll_interval)
        self.bounds = pacing.WaitBounds(
            floor=min(DEFAULT_BOUNDS.floor, poll_interval),
            ceiling=max(DEFAULT_BOUNDS.ceiling, poll_interval),
            interval=poll_interval,
        )
        self.wait_timeout = validation.seconds("wait_timeout", wait_timeout)

    def _wait_for_jobs(
        self, kind: str, job_ids: list[str], method_name: str, resume: dict[str, Any]
    ) -> dict[str, Any]:
        """Wait until every job ended: here (poke) or in the triggerer (deferrable). Returns the
        event payload (:class:`SendGridContactsJobsTrigger`'s shape); deferring never returns."""
        deadline = self.now() + datetime.timedelta(seconds=self.wait_timeout)
        if self.deferrable:
            from airflow_provider_sgseg.triggers.contacts import SendGridContactsJobsTrigger

            self.defer(
                trigger=SendGridContactsJobsTrigger(
                    sendgrid_conn_id=self.sendgrid_conn_id,
                    job_kind=kind,
                    job_ids=job_ids,
                    bounds=self.bounds.to_dict(),
                    deadline=deadline.isoformat(),
                    resume=resume,
                ),
                method_name=method_name,
            )
        from airflow_provider_sgseg.triggers.contacts import event_for

        read = self.hook.get_import_status if kind == "import" else self.hook.get_export_status
        board = JobBoard(kind, job_ids)
        state = waiting.WaitState()
        while True:
            for job_id in board.to_read():
                try:
                    board.answered(job_id, read(job_id))
                except SendGridError as error:
                    board.failed(job_id, error)
            action = waiting.step(state, board.outcome(), self.now(), self.bounds, deadline)
            if not isinstance(action, waiting.Wait):
                return event_for(action)
            self.log.info("SendGrid %s jobs: %s; next look in %.0f s", kind, action.reason, action.delay)
            state = action.state
            self.sleep(action.delay)
