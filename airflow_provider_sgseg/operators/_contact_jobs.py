"""What both contacts operators share beyond :class:`SendGridBaseOperator`: waiting for SendGrid's
contacts jobs (upsert/import jobs, exports), in poke mode or deferred to the triggerer."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_sgseg.exceptions import MAX_QUOTED_VALUE, SendGridError, shorten
from airflow_provider_sgseg.links import SendGridContactsLink, push_link_data
from airflow_provider_sgseg.operators.base import DEFAULT_CONN_ID, SendGridBaseOperator
from airflow_provider_sgseg.rules import pacing, validation, waiting
from airflow_provider_sgseg.rules.jobs import JobBoard
from airflow_provider_sgseg.task import default_deferrable
from airflow_provider_sgseg.version_compat import AirflowException

if TYPE_CHECKING:
    from airflow.sdk import BaseOperatorLink, Context

DEFAULT_WAIT_TIMEOUT = 6 * 3600.0
# How a contacts-job wait paces itself unless poll_interval says otherwise.
JOB_WAIT_BOUNDS = pacing.WaitBounds(floor=5.0, ceiling=300.0, interval=15.0)


class ContactsTask(SendGridBaseOperator):
    """What both contacts operators share beyond :class:`SendGridBaseOperator`: job waits (poke
    or deferred), and the "SendGrid contacts" link once a job started."""

    operator_extra_links: Sequence[BaseOperatorLink] = (SendGridContactsLink(),)

    def __init__(
        self,
        *,
        sendgrid_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool | None = None,
        poll_interval: float = JOB_WAIT_BOUNDS.interval,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(sendgrid_conn_id=sendgrid_conn_id, **kwargs)
        self.deferrable = default_deferrable(deferrable)
        poll_interval = validation.seconds("poll_interval", poll_interval)
        self.bounds = pacing.WaitBounds(
            floor=min(JOB_WAIT_BOUNDS.floor, poll_interval),
            ceiling=max(JOB_WAIT_BOUNDS.ceiling, poll_interval),
            interval=poll_interval,
        )
        self.wait_timeout = validation.seconds("wait_timeout", wait_timeout)

    def _wait_for_jobs(
        self, context: Context, kind: str, job_ids: list[str], method_name: str, resume: dict[str, Any]
    ) -> dict[str, Any]:
        """Wait until every job ended: here (poke) or in the triggerer (deferrable), at most
        ``wait_timeout`` and never past ``execution_timeout``. Returns the event payload
        (:class:`SendGridContactsJobsTrigger`'s shape); deferring never returns."""
        push_link_data(context, self.hook, job_id=job_ids[0] if job_ids else None)
        now = self.now()
        deadline = self.deferral_deadline(context, now + datetime.timedelta(seconds=self.wait_timeout))
        if self.deferrable:
            from airflow_provider_sgseg.triggers.contacts import SendGridContactsJobsTrigger

            self.defer(
                trigger=SendGridContactsJobsTrigger(
                    sendgrid_conn_id=self.sendgrid_conn_id,
                    job_kind=kind,
                    job_ids=job_ids,
                    bounds=self.bounds.to_arguments(),
                    deadline=deadline.isoformat(),
                    resume=resume,
                    hook_params=self.trigger_hook_params(),
                ),
                method_name=method_name,
                # The trigger ends at its deadline with a timeout event; this is a safety net for
                # a triggerer that is down.
                timeout=self.defer_timeout(deadline, now, self.bounds.ceiling),
            )
        from airflow_provider_sgseg.triggers.contacts import event_for

        board = JobBoard(kind, job_ids)
        state = waiting.WaitState()
        while True:
            for job_id in board.to_read():
                try:
                    answer = self.hook.run(board.request(job_id))
                    board.answered(job_id, answer)
                except SendGridError as error:
                    board.failed(job_id, error)
            action = waiting.step(state, board.outcome(), self.now(), self.bounds, deadline)
            if not isinstance(action, waiting.Wait):
                return event_for(action)
            self.log.info("SendGrid %s jobs: %s; next look in %.0f s", kind, action.reason, action.delay)
            state = action.state
            self.sleep(action.delay)

    def _jobs_ended(
        self, context: Context, event: Any, resume: dict[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(event, resume)`` once the jobs ended well, checked the same way as every resume
        (:meth:`~airflow_provider_sgseg.task.SendGridTaskMixin.resume_event`): a failed job is a
        definitive answer (no retries); a timeout or a streak of transient failures is retriable
        (a retry waits again for the jobs already accepted).

        :raises AirflowException: an unknown event, a timeout, transient failures, no resume data.
        :raises AirflowFailException: a job failed or is unknown to SendGrid.
        :raises AirflowTaskTimeout: ``execution_timeout`` ran out while deferred.
        """
        event = self.resume_event(context, event, "SendGridContactsJobsTrigger")
        resume = resume if resume is not None else event.get("resume")
        if not isinstance(resume, dict) or not resume:
            quoted = shorten(repr(event), MAX_QUOTED_VALUE)
            raise AirflowException(f"The contacts job wait ended without what the task needs: {quoted}")
        return event, resume
