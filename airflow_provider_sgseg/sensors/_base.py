"""What both sensors share beyond :class:`~airflow_provider_sgseg.task.SendGridTaskMixin`: the wait
state they keep under their ``state_key``, the moments their ``timeout`` and ``poke_interval``
(seconds) name, and the end of a wait (outlet extras, state cleared).

The wait state lives in the task state store when Airflow provides one (3.3+: it survives
reschedules and retries, unlike XCom, which is cleared when a task starts again), and on the
instance otherwise (within one poke-mode run).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import Asset

from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.state_store import TaskStateStore
from airflow_provider_sgseg.task import SendGridTaskMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class SendGridSensorMixin(SendGridTaskMixin):
    """Mixed into ``BaseSensorOperator`` by both sensors; ``state_key`` names their state."""

    state_key: ClassVar[str]
    # BaseSensorOperator's, in seconds, and its mode.
    timeout: float
    poke_interval: float
    mode: str
    _state: dict[str, Any] | None = None

    # ------------------------------------------------------------------------------- moments

    def timeout_deadline(self, context: Context) -> datetime.datetime:
        """When ``timeout`` runs out, measured from where Airflow measures it: reschedule mode, the
        first poke of this wait (Airflow's first reschedule date, across reschedules and retries);
        poke mode, this execution."""
        started = self.first_reschedule_date(context) if self.mode == "reschedule" else None
        return (started or self.now()) + datetime.timedelta(seconds=self.timeout)

    @staticmethod
    def first_reschedule_date(context: Context) -> datetime.datetime | None:
        """Airflow's first reschedule date of this wait (None before the first reschedule)."""
        # Airflow 3.0's task runner hands this back as the API's ISO string, later ones as a datetime.
        return parse_instant(context["ti"].get_first_reschedule_date(context))

    def deferral_moments(self, context: Context) -> tuple[datetime.datetime, datetime.datetime, str]:
        """``(now, deadline, first_poll_at)`` of a deferral starting now: the deadline is ``timeout``
        from now, no later than ``execution_timeout`` allows; the first poll ``poke_interval`` on."""
        now = self.now()
        deadline = self.deferral_deadline(context, now + datetime.timedelta(seconds=self.timeout))
        return now, deadline, (now + datetime.timedelta(seconds=self.poke_interval)).isoformat()

    # ---------------------------------------------------------------------------- wait state

    def _load_state(self, context: Context) -> dict[str, Any]:
        if self._state is None:
            self._state = dict(TaskStateStore(context).get(self.state_key) or {})
        return self._state

    def _save_state(self, context: Context, state: dict[str, Any]) -> None:
        if state != self._state:
            self._state = state
            TaskStateStore(context).set(self.state_key, state)

    def _clear_state(self, context: Context) -> None:
        self._state = {}
        TaskStateStore(context).delete(self.state_key)

    def _finish(self, context: Context, result: dict[str, Any]) -> dict[str, Any]:
        """The end of a wait: ``result`` on each ``outlets`` Asset event's ``extra``, state cleared."""
        for outlet in self.outlets:  # type: ignore[attr-defined]
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = dict(result)
        self._clear_state(context)
        return result
