"""segment_events.new_segment_events: the dedupe helper a consuming DAG's first task calls."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import airflow.sdk
import pytest

from airflow_provider_sgseg.segment_events import new_segment_events, triggering_payloads
from airflow_provider_sgseg.version_compat import AirflowSkipException

SEGMENT = "0b9d7b8e-2f6a-4a4e-9c1e-0d9a3f2b1c00"


class Variables:
    """Airflow Variables, in memory (JSON values)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None, deserialize_json: bool = False) -> Any:
        assert deserialize_json
        return self.values.get(key, default)

    def set(self, key: str, value: Any, serialize_json: bool = False) -> None:
        assert serialize_json
        self.values[key] = value


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> Variables:
    store = Variables()
    monkeypatch.setattr(airflow.sdk, "Variable", store)
    return store


def context(run_id: str, *samples: str) -> dict[str, Any]:
    events = [
        SimpleNamespace(
            extra={"from_trigger": True, "payload": {"segment_id": SEGMENT, "sample_updated_at": at}}
        )
        for at in samples
    ]
    events.append(SimpleNamespace(extra={"from": "a task"}))
    return {
        "dag_run": SimpleNamespace(dag_id="consumer", run_id=run_id),
        "triggering_asset_events": {"asset": events},
    }


def test_payloads_are_read_from_watcher_events_only() -> None:
    assert triggering_payloads(context("r", "2026-12-07T11:00:00Z")) == [
        {"segment_id": SEGMENT, "sample_updated_at": "2026-12-07T11:00:00Z"}
    ]
    assert triggering_payloads({}) == []  # type: ignore[arg-type]


def test_a_repeated_event_is_skipped_in_the_next_run_but_not_on_a_retry(variables: Variables) -> None:
    first = new_segment_events(context("run-1", "2026-12-07T11:00:00Z"))  # type: ignore[arg-type]
    assert [p["sample_updated_at"] for p in first] == ["2026-12-07T11:00:00Z"]
    assert variables.values["sendgrid_segment_events.consumer"][SEGMENT]["run_id"] == "run-1"

    assert new_segment_events(context("run-1", "2026-12-07T11:00:00Z")) == first  # type: ignore[arg-type]
    with pytest.raises(AirflowSkipException, match="handled by an earlier run"):
        new_segment_events(context("run-2", "2026-12-07T11:00:00Z"))  # type: ignore[arg-type]
    newer = new_segment_events(context("run-3", "2026-12-07T11:00:00Z", "2026-12-07T12:00:00Z"))  # type: ignore[arg-type]
    assert [p["sample_updated_at"] for p in newer] == ["2026-12-07T12:00:00Z"]


def test_a_run_without_watcher_events_says_so(variables: Variables) -> None:
    # A manual run or `airflow dags test` has no events: the skip said they "were handled by an
    # earlier run", which sent a newcomer looking for a run that never existed.
    manual = {"dag_run": SimpleNamespace(dag_id="consumer", run_id="manual"), "triggering_asset_events": {}}
    with pytest.raises(AirflowSkipException, match="not started by a segment watcher") as raised:
        new_segment_events(manual)  # type: ignore[arg-type]
    assert "earlier run" not in str(raised.value)
    assert variables.values == {}


def test_a_retry_of_a_run_with_two_samples_gets_both(variables: Variables) -> None:
    run = context("run-1", "2026-12-07T11:00:00Z", "2026-12-07T12:00:00Z")
    first = new_segment_events(run)  # type: ignore[arg-type]
    assert [p["sample_updated_at"] for p in first] == ["2026-12-07T11:00:00Z", "2026-12-07T12:00:00Z"]
    assert new_segment_events(run) == first  # type: ignore[arg-type]
