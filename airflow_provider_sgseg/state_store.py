"""Airflow's task state store, the one way the provider reads and writes it.

Airflow 3.3+ hands every task a ``context["task_state_store"]``: small JSON values that survive
the tries and reschedules of one task instance (unlike XCom, which is cleared when a task starts
again). Before 3.3 there is none; :attr:`TaskStateStore.available` says so, reads return
``None`` and writes do nothing, and each caller falls back on what Airflow does keep (see
docs/operators.md, "Airflow before 3.3").
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context


def task_state_store(context: Context) -> Any:
    """Airflow's task state store for this task instance (3.3+), or ``None`` where there is none."""
    return context.get("task_state_store")


def earlier_tries_since(context: Context) -> datetime.datetime | None:
    """On a retry, when this DAG run started (no earlier try ran before it); else None.

    The fallback evidence where there is no task state store: what SendGrid recorded since then
    may be an earlier try's doing.
    """
    started = getattr(context.get("dag_run"), "start_date", None)
    try_number = getattr(context.get("ti"), "try_number", 1)  # a context built by hand may have none
    if try_number > 1 and isinstance(started, datetime.datetime):
        return started
    return None


class TaskStateStore:
    """JSON-object records under string keys for one task instance (no-ops before Airflow 3.3).

    :param context: the task's Airflow context.
    """

    def __init__(self, context: Context) -> None:
        self._store: Any = task_state_store(context)

    @property
    def available(self) -> bool:
        """Whether Airflow keeps state for this task (3.3+)."""
        return self._store is not None

    def get(self, key: str) -> dict[str, Any] | None:
        """The record under ``key``; ``None`` when absent, not a dict, or there is no store."""
        if self._store is None:
            return None
        value = self._store.get(key)
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        """Keep ``value`` (plain JSON values only) under ``key``."""
        if self._store is not None:
            self._store.set(key, value)

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        if self._store is not None:
            self._store.delete(key)
