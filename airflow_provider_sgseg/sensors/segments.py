"""Wait until a SendGrid segment has really populated, polling on SendGrid's own schedule."""

from __future__ import annotations

import contextlib
import datetime
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.exceptions import AirflowProviderDeprecationWarning
from airflow.sdk import BaseSensorOperator
from airflow.sdk.bases.sensor import PokeReturnValue

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.links import SendGridSegmentLink, push_link_data
from airflow_provider_sgseg.rules import pacing, summaries, validation
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.population import (
    DEFAULT_POLL_CEILING,
    DEFAULT_POLL_FLOOR,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_POLL_SLACK,
    Deadline,
    Verdict,
    poll_log_line,
    segment_outcome,
    verdict,
    watermark_from,
)
from airflow_provider_sgseg.sensors._base import SendGridSensorMixin
from airflow_provider_sgseg.state_store import TaskStateStore
from airflow_provider_sgseg.task import DEFAULT_CONN_ID, default_deferrable
from airflow_provider_sgseg.version_compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

# Task state store key: what must survive reschedules and retries (watermark, failure count).
STATE_KEY = "sgseg_segment_populated_wait"


class SendGridSegmentPopulatedSensor(SendGridSensorMixin, BaseSensorOperator):
    """Succeed once a segment is populated: ``VALID``, sampled after a watermark, big enough.

    Populated means ``status.query_validation == "VALID"``, ``sample_updated_at`` newer than the
    watermark and ``contacts_count >= min_contacts``. ``INVALID`` fails at once with SendGrid's
    message; a fresh sample below ``min_contacts`` keeps waiting until ``timeout``.

    Endpoint: ``GET /v3/marketing/segments/2.0/{segment_id}?contacts_sample=false``, one attempt
    per poke (the poll schedule is the retry). Polls follow SendGrid's ``next_sample_update``
    (plus ``poll_slack``), never sooner than ``poll_floor`` and never later than ``poll_ceiling``;
    ``poke_interval`` when SendGrid gives no next update. Poke, reschedule and deferrable modes
    all decide with :func:`airflow_provider_sgseg.rules.population.verdict` and pace themselves
    with :func:`airflow_provider_sgseg.rules.waiting.step`, so ``poke_interval`` is reset per poll.

    :param segment_id: the segment to watch (templated).
    :param sendgrid_conn_id: connection of type ``sendgrid_marketing``.
    :param hook_params: keyword arguments for the hook (default: one attempt per poke); in
        deferrable mode the JSON-safe ones reach the trigger too (a ``RetryPolicy`` as its numbers).
    :param watermark: (templated) the sample must be newer than this: an ISO timestamp, a
        datetime, or the refresh operator's XCom dict (its ``watermark``, else ``requested_at``).
        ``None``: the segment's ``sample_updated_at`` at the first poke, i.e. wait for the
        next sample. It is kept across reschedules, retries and deferral.
    :param refreshed_after: deprecated name of ``watermark`` (warns).
    :param min_contacts: the fresh sample must count at least this many contacts.
    :param poke_interval: seconds between polls when SendGrid gives no ``next_sample_update``
        (Airflow's own knob; each poll then sets it from the schedule).
    :param poll_default: deprecated name of ``poke_interval`` (warns).
    :param poll_floor: seconds; never poll sooner than this.
    :param poll_ceiling: seconds; never poll later than this.
    :param poll_slack: seconds added to ``next_sample_update``.
    :param max_consecutive_failures: transient errors (5xx, 429, no answer) tolerated in a
        row before the task fails; a healthy answer resets the count.
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``. The
        trigger's deadline is the smaller of ``timeout`` and what is left of ``execution_timeout``.
    :raises SendGridInputError: (at DAG parse time) a bad count or poll bound, naming it; (at run
        time) a bad ``segment_id`` or ``watermark``, before any request.

    Returns (XCom) ``{"segment_id", "contacts_count", "sample_updated_at"}`` and, when
    ``outlets`` are set, attaches the same dict to each asset event's ``extra``.
    """

    template_fields: Sequence[str] = ("segment_id", "watermark", "sendgrid_conn_id")
    # One attempt per poke: the poll schedule is the retry, and it knows SendGrid's pace.
    single_attempt_hook = True
    state_key = STATE_KEY
    ui_color = "#e3f2fd"
    operator_extra_links = (SendGridSegmentLink(),)

    def __init__(
        self,
        *,
        segment_id: str,
        sendgrid_conn_id: str = DEFAULT_CONN_ID,
        hook_params: dict[str, Any] | None = None,
        watermark: str | datetime.datetime | dict[str, Any] | None = None,
        min_contacts: int = 1,
        poke_interval: float = DEFAULT_POLL_INTERVAL,
        poll_floor: float = DEFAULT_POLL_FLOOR,
        poll_ceiling: float = DEFAULT_POLL_CEILING,
        poll_slack: float = DEFAULT_POLL_SLACK,
        max_consecutive_failures: int = pacing.DEFAULT_MAX_CONSECUTIVE_FAILURES,
        deferrable: bool | None = None,
        refreshed_after: str | datetime.datetime | dict[str, Any] | None = None,
        poll_default: float | None = None,
        **kwargs: Any,
    ) -> None:
        if refreshed_after is not None:
            _deprecated("refreshed_after", "watermark")
            watermark = refreshed_after if watermark is None else watermark
        if poll_default is not None:
            _deprecated("poll_default", "poke_interval")
            poke_interval = poll_default
        min_count = min_contacts
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 0:
            raise SendGridInputError("min_contacts", min_count, "must be an integer >= 0")
        self.bounds = pacing.WaitBounds(
            poll_floor, poll_ceiling, poke_interval, poll_slack, max_consecutive_failures
        )
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.segment_id = segment_id
        self.sendgrid_conn_id = sendgrid_conn_id
        self.hook_params = dict(hook_params or {})
        self.watermark = watermark
        self.min_contacts = min_contacts
        self.deferrable = default_deferrable(deferrable)
        self._segment_name: str | None = None  # the name SendGrid gave at the last poll
        # Poke and reschedule modes: when ``timeout`` runs out (set by execute).
        self._deadline: datetime.datetime | None = None

    @property
    def max_consecutive_failures(self) -> int:
        """Transient errors tolerated in a row (from ``bounds``)."""
        return self.bounds.max_consecutive_failures

    def execute(self, context: Context) -> Any:
        """Poke (or reschedule) until populated; deferrable: one poke, then defer to
        :class:`~airflow_provider_sgseg.triggers.segments.SendGridSegmentPopulatedTrigger`.
        Returns the XCom in the class docstring.

        :raises TaskDeferred: deferrable mode, not populated at the first look.
        :raises AirflowSkipException: the first look failed for good and ``soft_fail`` is set.
        :raises: as :meth:`poke`.
        """
        with contextlib.suppress(SendGridInputError):  # a bad id fails in poke(), as it always did
            push_link_data(context, self.hook, segment_id=validation.segment_id(self.segment_id))
        if not self.deferrable:
            self._deadline = self.timeout_deadline(context)
            done = super().execute(context)  # Airflow's poke loop logs "Success criteria met" last
            self.log.info("%s", self._summary(done, self._segment_name))
            return done
        # One look before deferring: it may already be done, and it fixes the watermark so a
        # restarted triggerer keeps waiting for the same sample.
        try:
            first = self.poke(context)
        except AirflowFailException as failure:
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(f"Skipping ({failure})") from failure
            raise
        if first:
            self.log.info("%s", self._summary(first.xcom_value or {}, self._segment_name))
            return first.xcom_value
        from airflow_provider_sgseg.triggers.segments import SendGridSegmentPopulatedTrigger

        now, deadline, first_poll_at = self.deferral_moments(context)
        # poke() fixed the watermark in the state store (a failed first look fixes "now"), so a
        # trigger rebuilt after a triggerer restart waits for the very same sample.
        watermark = self._watermark(context)
        self.defer(
            trigger=SendGridSegmentPopulatedTrigger(
                sendgrid_conn_id=self.sendgrid_conn_id,
                segment_id=validation.segment_id(self.segment_id),
                watermark=watermark.isoformat() if watermark else None,
                min_contacts=self.min_contacts,
                deadline=deadline.isoformat(),
                first_poll_at=first_poll_at,
                hook_params=self.trigger_hook_params(),
                **self.bounds.to_arguments(),
            ),
            method_name="execute_complete",
            # The trigger ends at its own deadline with a clear message; this is a safety net
            # for a triggerer that is down.
            timeout=self.defer_timeout(deadline, now, self.bounds.ceiling),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """One look at the segment (the I/O shell around the waiting engine).

        :raises SendGridInputError: bad ``segment_id`` or ``watermark`` (before any request).
        :raises AirflowFailException: SendGrid marked the query ``INVALID``.
        :raises AirflowSensorTimeout: past ``timeout`` (poke and reschedule modes).
        :raises SendGridError: a non-transient error, or more transient ones in a row than
            ``max_consecutive_failures``.
        """
        from airflow_provider_sgseg.rules import waiting  # the engine loads when a wait runs
        from airflow_provider_sgseg.rules.requests import GetSegment

        read = GetSegment(self.segment_id, contacts_sample=False)
        segment_id = read.segment_id
        explicit_watermark = watermark_from(self.watermark)  # bad input fails before any GET
        state = self._load_state(context)
        result: Verdict | None = None
        try:
            segment = self.hook.run(read)
        except waiting.TRANSIENT_ERRORS as error:
            failure: Exception | None = error
            outcome: waiting.Outcome = waiting.transient(error)
            # No sample seen yet to wait past: only a sample taken after this first look counts.
            seen: str | None = self.now().isoformat()
        else:
            failure = None
            seen = segment.get("sample_updated_at")  # no watermark given: wait for a newer sample
            self._segment_name = segment.get("name")
        if explicit_watermark is None and "watermark" not in state:
            state = {**state, "watermark": self._first_watermark(context, seen)}
        if self._segment_name and state.get("segment_name") != self._segment_name:
            state = {**state, "segment_name": self._segment_name}  # for the summary after a deferral
        watermark = explicit_watermark or parse_instant(state["watermark"])
        if failure is None:
            result = verdict(segment, watermark, self.min_contacts)
            outcome = segment_outcome(result, segment)

        now = self.now()
        before = waiting.WaitState(int(state.get("failures", 0)))
        action = waiting.step(before, outcome, now, self.bounds, self._deadline)
        failures = action.failures if isinstance(action, waiting.Wait | waiting.Timeout) else 0
        if failures or state.get("failures") or failure is not None:
            state = {**state, "failures": failures}
        self._save_state(context, state)

        if isinstance(action, waiting.Failed) and failure is not None:
            raise failure
        if isinstance(action, waiting.Invalid):
            raise AirflowFailException(f"Segment {segment_id}: {action.reason}")
        if isinstance(action, waiting.Timeout):
            why = result.reason if result is not None else f"the last poll failed ({failure})"
            assert self._deadline is not None  # only a wait with a deadline times out
            deadline = self._deadline.isoformat()
            raise AirflowSensorTimeout(f"Segment {segment_id} not populated by {deadline}: {why}")
        if isinstance(action, waiting.Done):
            self.log.info("Segment %s is populated: %s", segment_id, action.reason)
            sample_at = action.value.sample_updated_at
            return PokeReturnValue(
                is_done=True,
                xcom_value=self._finish(
                    context,
                    {
                        "segment_id": segment_id,
                        "contacts_count": action.value.contacts_count,
                        "sample_updated_at": sample_at.isoformat() if sample_at else None,
                    },
                ),
            )
        assert isinstance(action, waiting.Wait)
        self.poke_interval = action.delay
        log = self.log.warning if action.failures else self.log.info
        log(
            "%s", poll_log_line(segment_id, action, result, watermark, now, self._poll_deadline(context, now))
        )
        return PokeReturnValue(is_done=False)

    def _poll_deadline(self, context: Context, now: datetime.datetime) -> Deadline | None:
        """When this wait must end, as the next poll meets it: in poke and reschedule modes the
        sensor's ``timeout`` (a last poll happens then) or ``execution_timeout`` (Airflow ends the
        task: no poll); deferred, the trigger's deadline, the smaller of the two (no poll then)."""
        timeout_at = now + datetime.timedelta(seconds=self.timeout) if self.deferrable else self._deadline
        execution_at = self.execution_deadline(context)
        deadlines = [
            Deadline(moment, name, polls_at_it=name == "timeout" and not self.deferrable)
            for moment, name in ((execution_at, "execution_timeout"), (timeout_at, "timeout"))
            if moment is not None
        ]
        return min(deadlines, key=lambda deadline: deadline.at, default=None)

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the trigger: check its event (:func:`airflow_provider_sgseg.task.resume_event`)
        and fail loudly on anything unexpected.

        :raises AirflowTaskTimeout: ``execution_timeout`` ran out while deferred (retries apply).
        :raises AirflowSensorTimeout: ``timeout`` passed. :raises AirflowFailException: ``INVALID``.
        :raises AirflowException: transient failures in a row, or an unknown or malformed event.
        """
        event = self.resume_event(
            context, event, "SendGridSegmentPopulatedTrigger", timeout_error=AirflowSensorTimeout
        )
        result = {key: event.get(key) for key in ("segment_id", "contacts_count", "sample_updated_at")}
        count = result["contacts_count"]
        if (
            not isinstance(result["segment_id"], str)
            or isinstance(count, bool)
            or not isinstance(count, int)
            or parse_instant(result["sample_updated_at"]) is None
        ):
            raise AirflowException(f"Success event from the trigger is missing result fields: {event!r}")
        name = self._load_state(context).get("segment_name") or event.get("segment_name")
        finished = self._finish(context, result)
        self.log.info("%s", self._summary(finished, name))
        return finished

    def _summary(self, result: dict[str, Any], name: object) -> str:
        return summaries.segment_populated(result, name, self.min_contacts)

    def _watermark(self, context: Context) -> pendulum.DateTime | None:
        """The explicit ``watermark`` if given, else the one captured at the first poke."""
        explicit = watermark_from(self.watermark)
        if explicit is not None:
            return explicit
        return parse_instant(self._load_state(context).get("watermark"))

    def _first_watermark(self, context: Context, seen: str | None) -> str | None:
        """The watermark to fix now, ``seen`` (the sample now, or now) unless the wait began earlier.

        Airflow < 3.3 keeps no state across reschedules: a later poke has lost what the first one
        saw. Any sample newer than that one was taken after the first poke, so the first poke's
        time (Airflow's first reschedule date) stands in for it, and the watermark stays put.
        """
        if not TaskStateStore(context).available and self.reschedule:
            first_poke = self.first_reschedule_date(context)
            if first_poke is not None:
                return first_poke.isoformat()
        return seen


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"SendGridSegmentPopulatedSensor's {old!r} is deprecated and will be removed in "
        f"airflow-provider-sgseg 1.0; use {new!r}",
        AirflowProviderDeprecationWarning,
        # Attributed to this module, not to the DAG file: Airflow shows deprecation warnings from
        # modules named "airflow..." only, and a DAG file's module is not.
        stacklevel=2,
    )


def __getattr__(name: str) -> Any:
    """0.2.0's module constants (deprecated, removed in 1.0): see ``_deprecated.WAIT_CONSTANTS``."""
    from airflow_provider_sgseg._deprecated import WAIT_CONSTANTS, moved_names

    return moved_names(__name__, WAIT_CONSTANTS)(name)
