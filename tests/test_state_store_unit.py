"""The one task-state-store adapter: Airflow 3.3's store when the context has one, no-ops before."""

from __future__ import annotations

import datetime
from types import SimpleNamespace
from typing import Any

from airflow_provider_sgseg.state_store import TaskStateStore, earlier_tries_since, task_state_store


class MemoryStore:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def test_task_state_store_is_whatever_the_context_holds() -> None:
    store = object()
    assert task_state_store({"task_state_store": store}) is store  # type: ignore[typeddict-item]
    assert task_state_store({}) is None  # type: ignore[typeddict-item]


def test_records_round_trip_and_non_dicts_read_as_absent() -> None:
    memory = MemoryStore()
    store = TaskStateStore({"task_state_store": memory})  # type: ignore[typeddict-item]
    assert store.available and store.get("k") is None
    store.set("k", {"a": 1})
    assert store.get("k") == {"a": 1}
    memory.values["odd"] = ["not", "a", "dict"]
    assert store.get("odd") is None
    store.delete("k")
    assert store.get("k") is None


def test_without_a_store_reads_are_none_and_writes_do_nothing() -> None:
    store = TaskStateStore({})  # type: ignore[typeddict-item]
    assert not store.available
    store.set("k", {"a": 1})
    store.delete("k")
    assert store.get("k") is None


def test_earlier_tries_since_is_the_dag_runs_start_on_a_retry_only() -> None:
    started = datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.timezone.utc)

    def context(try_number: int, dag_run: object) -> Any:
        return {"ti": SimpleNamespace(try_number=try_number), "dag_run": dag_run}

    assert earlier_tries_since(context(2, SimpleNamespace(start_date=started))) == started
    assert earlier_tries_since(context(1, SimpleNamespace(start_date=started))) is None
    assert earlier_tries_since(context(2, SimpleNamespace(start_date=None))) is None
    assert earlier_tries_since(context(2, None)) is None


def test_earlier_tries_since_reads_a_context_without_a_task_instance_as_a_first_try() -> None:
    started = datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.timezone.utc)
    assert earlier_tries_since({"dag_run": SimpleNamespace(start_date=started)}) is None  # type: ignore[typeddict-item]
    assert earlier_tries_since({}) is None  # type: ignore[typeddict-item]
