"""Wait until a SendGrid segment has really populated, polling on SendGrid's own schedule."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Asset, BaseSensorOperator
from airflow.sdk.bases.sensor import PokeReturnValue

from airflow_provider_sgseg import validation
from airflow_provider_sgseg.exceptions import (
    SendGridInputError,
    SendGridRateLimitError,
    SendGridServerError,
    SendGridTransportError,
)
from airflow_provider_sgseg.population import (
    DEFAULT_POLL_CEILING,
    DEFAULT_POLL_FLOOR,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_POLL_SLACK,
    PollBounds,
    failure_delay,
    next_poll_delay,
    parse_timestamp,
    verdict,
    waiting_summary,
    watermark_from,
)
from airflow_provider_sgseg.version_compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    conf,
    task_state_store,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

# Same set as the trigger's: "try again later", not "this will never work".
TRANSIENT_ERRORS = (SendGridServerError, SendGridTransportError, SendGridRateLimitError)
DEFAULT_MAX_CONSECUTIVE_FAILURES = 5
EVENT_STATUSES = frozenset({"success", "invalid", "timeout", "error"})
# task_state_store key: what must survive reschedules and retries (watermark, failure count).
STATE_KEY = "sgseg_segment_populated_wait"


class SendGridSegmentPopulatedSensor(BaseSensorOperator):
    """Succeed once a segment is populated: ``VALID``, sampled after a watermark, big enough.

    Populated means ``status.query_validation == "VALID"``, ``sample_updated_at`` newer than the
    watermark and ``contacts_count >= min_contacts``. ``INVALID`` fails at once with SendGrid's
    message; a fresh sample below ``min_contacts`` keeps waiting until ``timeout``.

    Polls follow SendGrid's ``next_sample_update`` (plus ``poll_slack``), never sooner than
    ``poll_floor`` and never later than ``poll_ceiling``; ``poll_default`` when SendGrid gives
    no next update. Poke, reschedule and deferrable modes all use this rule
    (:mod:`airflow_provider_sgseg.population`), so ``poke_interval`` is set per poll.

    :param segment_id: the segment to watch (templated).
    :param sendgrid_conn_id: connection of type ``sendgrid_marketing``.
    :param refreshed_after: watermark (templated): an ISO timestamp, a datetime, or the
        refresh operator's XCom dict (its ``sample_updated_at_before``, else ``requested_at``).
        ``None``: the segment's ``sample_updated_at`` at the first poke, i.e. wait for the
        next sample. It is kept across reschedules, retries and deferral.
    :param min_contacts: the fresh sample must count at least this many contacts.
    :param poll_floor: seconds; never poll sooner than this.
    :param poll_ceiling: seconds; never poll later than this.
    :param poll_default: seconds between polls when SendGrid gives no ``next_sample_update``.
    :param poll_slack: seconds added to ``next_sample_update``.
    :param max_consecutive_failures: transient errors (5xx, 429, no answer) tolerated in a
        row before the task fails; a healthy answer resets the count.
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.

    Returns (XCom) ``{"segment_id", "contacts_count", "sample_updated_at"}`` and, when
    ``outlets`` are set, attaches the same dict to each asset event's ``extra``.
    """

    template_fields: Sequence[str] = ("segment_id", "refreshed_after", "sendgrid_conn_id")
    ui_color = "#e3f2fd"

    def __init__(
        self,
        *,
        segment_id: str,
        sendgrid_conn_id: str = "sendgrid_default",
        refreshed_after: str | datetime.datetime | dict[str, Any] | None = None,
        min_contacts: int = 1,
        poll_floor: float = DEFAULT_POLL_FLOOR,
        poll_ceiling: float = DEFAULT_POLL_CEILING,
        poll_default: float = DEFAULT_POLL_INTERVAL,
        poll_slack: float = DEFAULT_POLL_SLACK,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        # poke_interval only seeds Airflow; each poke replaces it with the schedule's answer.
        kwargs.setdefault("poke_interval", poll_default)
        super().__init__(**kwargs)
        self.segment_id = segment_id
        self.sendgrid_conn_id = sendgrid_conn_id
        self.refreshed_after = refreshed_after
        for name, count in (
            ("min_contacts", min_contacts),
            ("max_consecutive_failures", max_consecutive_failures),
        ):
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise SendGridInputError(name, count, "must be an integer >= 0")
        self.min_contacts = min_contacts
        self.max_consecutive_failures = max_consecutive_failures
        self.bounds = PollBounds(poll_floor, poll_ceiling, poll_default, poll_slack)
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = deferrable
        self._state: dict[str, Any] | None = None
        # Poke and reschedule modes: when ``timeout`` runs out (set by execute).
        self._deadline: datetime.datetime | None = None

    # Test seam: what time it is. A method, so a test can make it read the emulator's clock.
    def now(self) -> datetime.datetime:
        return pendulum.now("UTC")

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            self._deadline = self._timeout_deadline(context)
            return super().execute(context)
        # One look before deferring: it may already be done, and it fixes the watermark so a
        # restarted triggerer keeps waiting for the same sample.
        try:
            first = self.poke(context)
        except AirflowFailException as failure:
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(f"Skipping ({failure})") from failure
            raise
        if first:
            return first.xcom_value
        from airflow_provider_sgseg.triggers.segments import SendGridSegmentPopulatedTrigger

        now = self.now()
        # poke() fixed the watermark in the state store (a failed first look fixes "now"), so a
        # trigger rebuilt after a triggerer restart waits for the very same sample.
        watermark, _ = self._watermark(context)
        self.defer(
            trigger=SendGridSegmentPopulatedTrigger(
                sendgrid_conn_id=self.sendgrid_conn_id,
                segment_id=validation.segment_id(self.segment_id),
                watermark=watermark.isoformat() if watermark else None,
                min_contacts=self.min_contacts,
                poll_floor=self.bounds.floor,
                poll_ceiling=self.bounds.ceiling,
                poll_default=self.bounds.default,
                poll_slack=self.bounds.slack,
                deadline=(now + datetime.timedelta(seconds=self.timeout)).isoformat(),
                first_poll_at=(now + datetime.timedelta(seconds=self.poke_interval)).isoformat(),
                max_consecutive_failures=self.max_consecutive_failures,
            ),
            method_name="execute_complete",
            # The trigger ends at its own deadline with a clear message; this is a safety net
            # for a triggerer that is down.
            timeout=datetime.timedelta(seconds=self.timeout + self.bounds.ceiling),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        segment_id = validation.segment_id(self.segment_id)
        explicit_watermark = watermark_from(self.refreshed_after)  # bad input fails before any GET
        state = self._load_state(context)
        try:
            segment = self._hook().get_segment(segment_id, contacts_sample=False)
        except TRANSIENT_ERRORS as error:
            if explicit_watermark is None and "watermark" not in state:
                # No sample seen yet to wait past: only a sample taken after this first look counts.
                state = {**state, "watermark": self._first_watermark(context, self.now().isoformat())}
            failures = int(state.get("failures", 0)) + 1
            if failures > self.max_consecutive_failures:
                self._save_state(context, {**state, "failures": 0})
                raise
            self._save_state(context, {**state, "failures": failures})
            reset_at = error.reset_at if isinstance(error, SendGridRateLimitError) else None
            now = self.now()
            self.poke_interval = failure_delay(
                failures, now, self.bounds.floor, self.bounds.ceiling, reset_at
            )
            self._stop_at_deadline(segment_id, now, f"the last poll failed ({error})")
            self.log.warning(
                "Segment %s: transient failure %d of %d tolerated (%s); next poll at %s",
                segment_id,
                failures,
                self.max_consecutive_failures,
                error,
                self._at(now, self.poke_interval),
            )
            return PokeReturnValue(is_done=False)

        if explicit_watermark is None and "watermark" not in state:
            # No watermark given: wait for a sample newer than the one we see now.
            state = {**state, "watermark": self._first_watermark(context, segment.get("sample_updated_at"))}
        if state.get("failures"):
            state = {**state, "failures": 0}
        self._save_state(context, state)

        watermark, _ = self._watermark(context)
        result = verdict(segment, watermark, self.min_contacts)
        if result.status == "invalid":
            raise AirflowFailException(f"Segment {segment_id}: {result.reason}")
        if result.status == "populated":
            self.log.info("Segment %s is populated: %s", segment_id, result.reason)
            sample_at = result.sample_updated_at
            return PokeReturnValue(
                is_done=True,
                xcom_value=self._finish(
                    context,
                    {
                        "segment_id": segment_id,
                        "contacts_count": result.contacts_count,
                        "sample_updated_at": sample_at.isoformat() if sample_at else None,
                    },
                ),
            )
        now = self.now()
        self.poke_interval = next_poll_delay(segment, now, *self._bounds_args())
        self._stop_at_deadline(segment_id, now, result.reason)
        summary = waiting_summary(result, watermark, now, self.poke_interval)
        self.log.info("Segment %s %s", segment_id, summary)
        return PokeReturnValue(is_done=False)

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the trigger: validate its event and fail loudly on anything unexpected."""
        status = event.get("status") if isinstance(event, dict) else None
        if status not in EVENT_STATUSES:
            raise AirflowException(f"Unexpected event from SendGridSegmentPopulatedTrigger: {event!r}")
        message = str(event.get("message") or f"trigger reported {status} without a message")
        if status == "invalid":
            raise AirflowFailException(message)
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        if status == "error":
            raise AirflowException(message)
        result = {key: event.get(key) for key in ("segment_id", "contacts_count", "sample_updated_at")}
        count = result["contacts_count"]
        if (
            not isinstance(result["segment_id"], str)
            or isinstance(count, bool)
            or not isinstance(count, int)
            or parse_timestamp(result["sample_updated_at"]) is None
        ):
            raise AirflowException(f"Success event from the trigger is missing result fields: {event!r}")
        self.log.info("Segment %s is populated: %s", result["segment_id"], message)
        return self._finish(context, result)

    def _finish(self, context: Context, result: dict[str, Any]) -> dict[str, Any]:
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = dict(result)
        self._clear_state(context)
        return result

    def _watermark(self, context: Context) -> tuple[pendulum.DateTime | None, bool]:
        """(watermark, known): explicit ``refreshed_after`` wins, else the one captured at first poke."""
        explicit = watermark_from(self.refreshed_after)
        if explicit is not None:
            return explicit, True
        state = self._load_state(context)
        if "watermark" in state:
            return parse_timestamp(state["watermark"]), True
        return None, False

    def _first_watermark(self, context: Context, seen: str | None) -> str | None:
        """The watermark to fix now, ``seen`` (the sample now, or now) unless the wait began earlier.

        Airflow < 3.3 keeps no state across reschedules: a later poke has lost what the first one
        saw. Any sample newer than that one was taken after the first poke, so the first poke's
        time (Airflow's first reschedule date) stands in for it, and the watermark stays put.
        """
        if task_state_store(context) is None and self.reschedule:
            first_poke = self._first_reschedule_date(context)
            if first_poke is not None:
                return first_poke.isoformat()
        return seen

    @staticmethod
    def _first_reschedule_date(context: Context) -> datetime.datetime | None:
        # Airflow 3.0's task runner hands this back as the API's ISO string, later ones as a datetime.
        return parse_timestamp(context["ti"].get_first_reschedule_date(context))

    def _timeout_deadline(self, context: Context) -> datetime.datetime:
        """When ``timeout`` runs out, measured from where Airflow measures it.

        Reschedule mode: the first poke of this wait (Airflow's first reschedule date, across
        reschedules and retries); poke mode: this execution.
        """
        started = self._first_reschedule_date(context) if self.reschedule else None
        return (started or self.now()) + datetime.timedelta(seconds=self.timeout)

    def _stop_at_deadline(self, segment_id: str, now: datetime.datetime, why: str) -> None:
        """Cap the next poll at the deadline, so the last look happens there; past it, time out.

        Without the cap a poll due after the deadline (up to ``poll_ceiling`` later) would run
        past ``timeout`` before Airflow notices, as the trigger's own deadline check avoids.
        """
        if self._deadline is None:
            return
        left = (self._deadline - now).total_seconds()
        if left <= 0:
            raise AirflowSensorTimeout(
                f"Segment {segment_id} not populated by {self._deadline.isoformat()}: {why}"
            )
        self.poke_interval = min(self.poke_interval, left)

    def _hook(self) -> SendGridMarketingHook:
        from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook

        # One attempt per poke: the poll schedule is the retry, and it knows SendGrid's pace.
        return SendGridMarketingHook(self.sendgrid_conn_id, retry=RetryPolicy(max_attempts=1))

    def _bounds_args(self) -> tuple[float, float, float, float]:
        return (self.bounds.floor, self.bounds.ceiling, self.bounds.default, self.bounds.slack)

    @staticmethod
    def _at(now: datetime.datetime, seconds: float) -> str:
        return (now + datetime.timedelta(seconds=seconds)).isoformat()

    # The wait state lives in the task_state_store when Airflow provides one (3.3+: it survives
    # reschedules and retries, unlike XCom, which is cleared when a task starts again), and on
    # the instance otherwise (within one poke-mode run; before 3.3 see _first_watermark).
    def _load_state(self, context: Context) -> dict[str, Any]:
        if self._state is None:
            store = task_state_store(context)
            stored = store.get(STATE_KEY) if store is not None else None
            self._state = dict(stored) if isinstance(stored, dict) else {}
        return self._state

    def _save_state(self, context: Context, state: dict[str, Any]) -> None:
        if state == self._state:
            return
        self._state = state
        store = task_state_store(context)
        if store is not None:
            store.set(STATE_KEY, state)

    def _clear_state(self, context: Context) -> None:
        self._state = {}
        store = task_state_store(context)
        if store is not None:
            store.delete(STATE_KEY)
