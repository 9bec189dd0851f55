"""What every SendGrid task shares, operator or sensor: the hook, the time seams, the
``deferrable`` default, and the two ends of a deferral (the deadline it carries, the check of
the event it resumes with).

Operators derive from :class:`~airflow_provider_sgseg.operators.base.SendGridBaseOperator`; the
sensor mixes :class:`SendGridTaskMixin` into Airflow's ``BaseSensorOperator``. Either way the
hook is built lazily (never at DAG parse time) from ``sendgrid_conn_id`` and ``hook_params``, as
dbt Cloud's operators do.
"""

from __future__ import annotations

import datetime
import signal
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pendulum

from airflow_provider_sgseg.exceptions import MAX_QUOTED_VALUE, shorten
from airflow_provider_sgseg.get_provider_info import DEFAULT_CONN_ID as DEFAULT_CONN_ID
from airflow_provider_sgseg.rules import pacing, validation
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.version_compat import (
    AirflowException,
    AirflowFailException,
    AirflowTaskTimeout,
    conf,
)

if TYPE_CHECKING:
    from logging import Logger

    from airflow.sdk import Context

    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook


# The longest wait a server may name (Retry-After, a quota's reset) that a deferral sits out:
# the hook's cap (SendGrid's quotas reset within 24 hours; a longer one is a broken header).
MAX_SERVER_NAMED_WAIT = datetime.timedelta(seconds=pacing.MAX_SERVER_WAIT)


def default_deferrable(deferrable: object) -> bool:
    """``deferrable`` as given (a bool, checked), or ``[operators] default_deferrable`` when None.

    :raises SendGridInputError: ``deferrable`` is neither None nor a bool.
    """
    if deferrable is None:
        return bool(conf.getboolean("operators", "default_deferrable", fallback=False))
    return validation.flag("deferrable", deferrable)


def resume_event(
    event: Any, trigger: str, *, timeout_error: type[BaseException] = AirflowException
) -> dict[str, Any]:
    """The event a task resumes with, checked the same way by every ``execute_complete``
    (dbt Cloud's ``validate_execute_complete_event`` is the model). Returns a ``success`` event.

    :raises AirflowException: not a dict with a known ``status`` (retries apply: the trigger
        broke, not the job), or ``status == "error"`` (a streak of transient failures).
    :raises AirflowFailException: ``status == "invalid"``: a definitive answer, no retries.
    :raises timeout_error: ``status == "timeout"``.
    """
    from airflow_provider_sgseg.rules.waiting import EVENT_STATUSES  # loads when a wait ends

    status = event.get("status") if isinstance(event, dict) else None
    if status not in EVENT_STATUSES:
        raise AirflowException(f"Unexpected event from {trigger}: {shorten(repr(event), MAX_QUOTED_VALUE)}")
    message = str(event.get("message") or f"{trigger} reported {status} without a message")
    if status == "invalid":
        raise AirflowFailException(message)
    if status == "timeout":
        raise timeout_error(message)
    if status == "error":
        raise AirflowException(message)
    return dict(event)


def deferral_timeout(deadline: datetime.datetime, now: datetime.datetime, slack: float) -> datetime.timedelta:
    """Deprecated (0.3.0's name): use :meth:`SendGridTaskMixin.defer_timeout`, which this calls."""
    from airflow_provider_sgseg._deprecated import warn_renamed

    warn_renamed(f"{__name__}.deferral_timeout", f"{__name__}.SendGridTaskMixin.defer_timeout")
    return SendGridTaskMixin.defer_timeout(deadline, now, slack)


class SendGridTaskMixin:
    """The hook accessor, the time seams and the deferral deadlines of a SendGrid task.

    ``now`` and ``sleep`` are methods so a test can patch them (e.g. to run on the emulator's
    clock) without anything reaching the task's signature or its serialised form.
    """

    sendgrid_conn_id: str
    hook_params: dict[str, Any]
    execution_timeout: datetime.timedelta | None
    # Set by tasks whose own loop is the retry (a sensor): the hook tries each request once
    # unless ``hook_params`` names a ``retry`` policy.
    single_attempt_hook: bool = False

    @cached_property
    def hook(self) -> SendGridMarketingHook:
        """``SendGridMarketingHook(sendgrid_conn_id, **hook_params)``, built on first use."""
        from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
        from airflow_provider_sgseg.triggers._base import wait_hook

        if self.single_attempt_hook:
            return wait_hook(self.sendgrid_conn_id, self.hook_params)
        return SendGridMarketingHook(self.sendgrid_conn_id, **self.hook_params)

    def now(self) -> datetime.datetime:
        """The current time (aware, UTC)."""
        return pendulum.now("UTC")

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        time.sleep(seconds)

    def _log(self) -> Logger:
        """The task's logger (Airflow's ``BaseOperator.log``; the mixin cannot declare it)."""
        log: Logger = self.log  # type: ignore[attr-defined]
        return log

    def trigger_hook_params(self) -> dict[str, Any]:
        """The JSON-safe ``hook_params`` a trigger carries (never the key); logs what stays behind."""
        from airflow_provider_sgseg.triggers._base import to_trigger

        carried, left_out = to_trigger(self.hook_params)
        if left_out:
            self._log().warning(
                "hook_params %s stay out of the trigger (not plain JSON, or may hold a secret)", left_out
            )
        return carried

    # -------------------------------------------------------------------------------- deadlines

    def execution_deadline(self, context: Context) -> datetime.datetime | None:
        """When ``execution_timeout`` runs out: the try's start plus ``execution_timeout`` (Airflow
        keeps ``ti.start_date`` across deferrals, so a resumed task gets what is left, not a fresh
        allowance); ``None`` without ``execution_timeout``."""
        if self.execution_timeout is None:
            return None
        started = parse_instant(getattr(context.get("ti"), "start_date", None))
        if started is None:  # no task instance (a test): the first call starts the clock
            started = self.__dict__.setdefault("_sgseg_started", self.now())
        return started + self.execution_timeout

    def deferral_deadline(self, context: Context, wait_deadline: datetime.datetime) -> datetime.datetime:
        """What a deferral carries: the smaller of its wait's deadline and the end of
        ``execution_timeout`` (Airflow applies ``execution_timeout`` only while a task runs)."""
        execution = self.execution_deadline(context)
        return wait_deadline if execution is None else min(wait_deadline, execution)

    @staticmethod
    def defer_timeout(
        deadline: datetime.datetime, now: datetime.datetime, slack: float
    ) -> datetime.timedelta:
        """``defer(timeout=...)`` for a trigger that ends itself at ``deadline``: the time left plus
        ``slack`` seconds, a safety net for a triggerer that is down. A plain ``timedelta``
        (Airflow's supervisor cannot serialise pendulum's ``Duration``)."""
        return datetime.timedelta(seconds=max((deadline - now).total_seconds(), 0.0) + slack)

    def check_execution_deadline(self, context: Context) -> None:
        """On resume: fail as Airflow's own ``execution_timeout`` does (retries apply) when it ran
        out while the task was deferred; else leave the resumed work only what is left of it.

        :raises AirflowTaskTimeout: past the end of ``execution_timeout``.
        """
        deadline = self.execution_deadline(context)
        if deadline is None:
            return
        left = (deadline - self.now()).total_seconds()
        if left <= 0:
            raise AirflowTaskTimeout(
                f"execution_timeout ({self.execution_timeout}) ran out at {deadline.isoformat()} "
                "while the task was deferred"
            )
        _bring_alarm_forward(left)

    def capped_server_wait(self, context: Context, moment: datetime.datetime, what: str) -> datetime.datetime:
        """``moment`` (when a server said to come back) no later than :data:`MAX_SERVER_NAMED_WAIT`
        from now nor past ``execution_timeout``; logs the cap when it applies."""
        now = self.now()
        capped = self.deferral_deadline(context, min(moment, now + MAX_SERVER_NAMED_WAIT))
        if capped < moment:
            self._log().warning(
                "%s named %s; waiting only until %s (at most %s, never past execution_timeout)",
                what,
                moment.isoformat(),
                capped.isoformat(),
                MAX_SERVER_NAMED_WAIT,
            )
        return capped

    def resume_event(
        self,
        context: Context,
        event: Any,
        trigger: str,
        *,
        timeout_error: type[BaseException] = AirflowException,
    ) -> dict[str, Any]:
        """:func:`resume_event` after :meth:`check_execution_deadline` (a trigger whose deadline
        was ``execution_timeout``'s reports ``timeout``: the task times out as Airflow's would)."""
        self.check_execution_deadline(context)
        return resume_event(event, trigger, timeout_error=timeout_error)


def _bring_alarm_forward(seconds: float) -> None:
    """Airflow arms a whole ``execution_timeout`` (a ``SIGALRM`` timer) again for a resumed task;
    bring that timer forward to ``seconds`` when it is later. Its own handler still fires."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return
    armed, _ = signal.getitimer(signal.ITIMER_REAL)
    if 0 < seconds < armed:
        signal.setitimer(signal.ITIMER_REAL, seconds)
