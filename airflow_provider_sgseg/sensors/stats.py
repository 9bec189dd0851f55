"""Wait until a Single Send has been sent and its stats have settled."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.bases.sensor import PokeReturnValue

from airflow_provider_sgseg.rules import pacing, summaries, validation
from airflow_provider_sgseg.sensors._base import SendGridSensorMixin
from airflow_provider_sgseg.task import DEFAULT_CONN_ID, default_deferrable
from airflow_provider_sgseg.version_compat import AirflowException, AirflowSensorTimeout

if TYPE_CHECKING:
    from airflow.sdk import Context

# Task state store key: the wait's last look (status, send_at, counts and since when, failures).
STATE_KEY = "sgseg_single_send_stats_wait"
RESULT_KEYS = ("single_send_id", "send_at", "provisional", "counts", "changed_at")
DEFAULT_SETTLE_FOR = 4 * 3600.0
DEFAULT_MAX_WAIT = 3 * 24 * 3600.0


class SendGridSingleSendStatsSensor(SendGridSensorMixin, BaseSensorOperator):
    """Succeed once a Single Send has been sent (status ``triggered``) and its stats have settled.

    Settled: its total counts have not changed for ``settle_for``; or ``max_wait`` after
    ``send_at`` they still change, and the sensor succeeds with ``provisional: True`` (the rule:
    :mod:`airflow_provider_sgseg.rules.stats`). A draft never settles: the sensor waits until
    ``timeout``. Polls are paced by the rule (the next look is when the current counts would
    settle), within ``[poll_floor, poll_ceiling]``: at most about ``max_wait / min(settle_for,
    poll_ceiling)`` stats reads per send.

    Endpoints: ``GET /v3/marketing/singlesends/{id}`` until it is sent, then
    ``GET /v3/marketing/stats/singlesends/{id}`` (totals) only; one attempt per poll.

    :param single_send_id: the Single Send (templated).
    :param settle_for: seconds (or a ``timedelta``) the counts must stay unchanged; default 4 h.
    :param max_wait: seconds (or a ``timedelta``) after ``send_at`` to accept provisional
        results; default 3 days.
    :param sendgrid_conn_id: connection of type ``sendgrid_marketing`` (templated).
    :param hook_params: keyword arguments for the hook (default: one attempt per poll); the
        JSON-safe ones reach the trigger (never anything that may hold a key).
    :param poke_interval: seconds between looks before the send when no ``send_at`` is known.
    :param poll_floor: seconds; never look sooner than this.
    :param poll_ceiling: seconds; never look later than this.
    :param poll_slack: seconds added to the moment the rule names.
    :param max_consecutive_failures: transient errors (5xx, 429, no answer) tolerated in a row.
    :param deferrable: wait in the triggerer (never past ``execution_timeout``); default
        ``[operators] default_deferrable``.
    :raises SendGridInputError: (at DAG parse time) a bad ``settle_for``, ``max_wait`` or bound;
        (at run time) a bad ``single_send_id``, before any request.

    Returns (XCom) ``{"single_send_id", "send_at", "provisional", "counts", "changed_at"}``
    (``counts``: the 12 metrics; ``changed_at``: when they last changed) and attaches it to
    each ``outlets`` Asset event's ``extra``.
    """

    template_fields: Sequence[str] = ("single_send_id", "sendgrid_conn_id")
    single_attempt_hook = True
    state_key = STATE_KEY
    ui_color = "#e3f2fd"

    def __init__(
        self,
        *,
        single_send_id: str,
        settle_for: float | datetime.timedelta = DEFAULT_SETTLE_FOR,
        max_wait: float | datetime.timedelta = DEFAULT_MAX_WAIT,
        sendgrid_conn_id: str = DEFAULT_CONN_ID,
        hook_params: dict[str, Any] | None = None,
        poke_interval: float = 1800.0,
        poll_floor: float = 60.0,
        poll_ceiling: float = 3600.0,
        poll_slack: float = 0.0,
        max_consecutive_failures: int = pacing.DEFAULT_MAX_CONSECUTIVE_FAILURES,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        settle_seconds, max_wait_seconds = (
            validation.duration("settle_for", settle_for),
            validation.duration("max_wait", max_wait),
        )
        self.bounds = pacing.WaitBounds(
            poll_floor, poll_ceiling, poke_interval, poll_slack, max_consecutive_failures
        )
        super().__init__(poke_interval=poke_interval, **kwargs)
        # BaseSensorOperator has a max_wait of its own (exponential backoff's cap, unused here:
        # this sensor paces itself), so ours is set after its __init__.
        self.settle_for: float = settle_seconds
        self.max_wait: float = max_wait_seconds  # type: ignore[assignment]
        self.single_send_id = single_send_id
        self.sendgrid_conn_id = sendgrid_conn_id
        self.hook_params = dict(hook_params or {})
        self.deferrable = default_deferrable(deferrable)
        # Poke and reschedule modes: when ``timeout`` runs out (set by execute).
        self._deadline: datetime.datetime | None = None

    def execute(self, context: Context) -> Any:
        """Poke until settled; deferrable: one look, then defer to
        :class:`~airflow_provider_sgseg.triggers.stats.SendGridSingleSendStatsTrigger`."""
        if not self.deferrable:
            self._deadline = self.timeout_deadline(context)
            done = super().execute(context)  # Airflow's poke loop logs "Success criteria met" last
            self.log.info("%s", summaries.stats_settled(done))
            return done
        first = self.poke(context)
        if first:
            self.log.info("%s", summaries.stats_settled(first.xcom_value or {}))
            return first.xcom_value
        from airflow_provider_sgseg.rules.validation import single_send_id
        from airflow_provider_sgseg.triggers.stats import SendGridSingleSendStatsTrigger

        now, deadline, first_poll_at = self.deferral_moments(context)
        self.defer(
            trigger=SendGridSingleSendStatsTrigger(
                sendgrid_conn_id=self.sendgrid_conn_id,
                single_send_id=single_send_id(self.single_send_id),
                settle_for=self.settle_for,
                max_wait=self.max_wait,
                wait=self._load_state(context).get("wait"),
                deadline=deadline.isoformat(),
                first_poll_at=first_poll_at,
                hook_params=self.trigger_hook_params(),
                **self.bounds.to_arguments(),
            ),
            method_name="execute_complete",
            # The trigger ends at its own deadline; this is a safety net for a triggerer that is down.
            timeout=self.defer_timeout(deadline, now, self.bounds.ceiling),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """One look (the I/O shell around the settle rule and the waiting engine).

        :raises SendGridInputError: a bad ``single_send_id`` (before any request).
        :raises AirflowSensorTimeout: past ``timeout`` (poke and reschedule modes).
        :raises SendGridError: a non-transient error (e.g. 404), or more transient ones in a row
            than ``max_consecutive_failures``.
        """
        from airflow_provider_sgseg.rules import waiting
        from airflow_provider_sgseg.rules.requests import GetSingleSend
        from airflow_provider_sgseg.triggers.stats import StatsWait, result_of, totals_request

        read = GetSingleSend(self.single_send_id)
        state = self._load_state(context)
        wait = StatsWait.from_dict(state.get("wait"))
        try:
            wait = wait.seen(self.hook.run(read) if wait.status != "triggered" else None)
            rows = None
            if wait.status == "triggered":
                totals = totals_request(read.single_send_id, wait.send_at, self.now())
                rows = list(self.hook.stats_pages(totals))
            wait, outcome = wait.judge(rows, self.now(), self.settle_for, self.max_wait)
            failure: Exception | None = None
        except waiting.TRANSIENT_ERRORS as error:
            failure, outcome = error, waiting.transient(error)
        action = waiting.step(
            waiting.WaitState(int(state.get("failures", 0))), outcome, self.now(), self.bounds, self._deadline
        )
        failures = action.state.failures if isinstance(action, waiting.Wait) else 0
        self._save_state(context, {"wait": wait.to_dict(), "failures": failures})
        if isinstance(action, waiting.Failed) and failure is not None:
            raise failure
        if isinstance(action, waiting.Timeout):
            raise AirflowSensorTimeout(f"Single Send {read.single_send_id}: {action.reason}")
        if isinstance(action, waiting.Done):
            self.log.info("Single Send %s stats: %s", read.single_send_id, action.reason)
            result = result_of(read.single_send_id, wait, bool(action.value))
            return PokeReturnValue(is_done=True, xcom_value=self._finish(context, result))
        assert isinstance(action, waiting.Wait)
        self.poke_interval = action.delay
        (self.log.warning if action.failures else self.log.info)(
            "Single Send %s stats: %s; next look in %.0f s", read.single_send_id, action.reason, action.delay
        )
        return PokeReturnValue(is_done=False)

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the trigger: check its event (:func:`airflow_provider_sgseg.task.resume_event`)
        and fail loudly on anything unexpected.

        :raises AirflowTaskTimeout: ``execution_timeout`` ran out while deferred (retries apply).
        :raises AirflowSensorTimeout: ``timeout`` passed.
        :raises AirflowException: transient failures in a row, or an unknown or malformed event.
        """
        event = self.resume_event(
            context, event, "SendGridSingleSendStatsTrigger", timeout_error=AirflowSensorTimeout
        )
        message = str(event.get("message") or "")
        result = {key: event.get(key) for key in RESULT_KEYS}
        if not isinstance(result["single_send_id"], str) or not isinstance(result["provisional"], bool):
            raise AirflowException(f"Success event from the trigger is missing result fields: {event!r}")
        self.log.info("Single Send %s stats: %s", result["single_send_id"], message)
        finished = self._finish(context, result)
        self.log.info("%s", summaries.stats_settled(finished))
        return finished
