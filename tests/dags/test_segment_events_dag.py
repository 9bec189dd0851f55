"""dags/sendgrid_segment_events.py: scheduled by a segment watcher, takes the event, then sends."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import airflow.sdk
import pytest
from airflow.sdk.api.datamodels._generated import AssetReferenceAssetEventDagRun
from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

from airflow_provider_sgseg.triggers.segment_events import SendGridSegmentEventTrigger
from airflow_provider_sgseg.version_compat import AirflowSkipException
from tests.airflow_compat import DagBag
from tests.test_segment_events_unit import Variables

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
SEGMENT = "8a3c1f3e-4a5b-4c6d-9e7f-0a1b2c3d4e5f"
DAG_ID = "sendgrid_segment_events"


@pytest.fixture
def dag_bag(monkeypatch: pytest.MonkeyPatch) -> DagBag:
    monkeypatch.setenv("SGSEG_WATCHED_SEGMENT_ID", SEGMENT)
    monkeypatch.setenv("SGSEG_WATCHED_MIN_CONTACTS", "100")
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "sendgrid_segment_events.py"), safe_mode=False)
    assert bag.import_errors == {}
    return bag


def test_the_dag_is_scheduled_by_a_watcher_on_the_segment(dag_bag: DagBag) -> None:
    (asset,) = dag_bag.dags[DAG_ID].timetable.asset_condition.objects
    assert asset.uri == f"x-sendgrid://segments/{SEGMENT}/samples"
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, SendGridSegmentEventTrigger)
    _, kwargs = watcher.trigger.serialize()
    assert kwargs["segment_id"] == SEGMENT
    assert kwargs["min_contacts"] == 100
    send = dag_bag.dags[DAG_ID].get_task("send_single_send")
    assert {t.task_id for t in send.upstream_list} == {"take_event", "check_sending_enabled"}


def event(dag_bag: DagBag, sample: str, run: int) -> AssetEventDagRunReferenceResult:
    (asset,) = dag_bag.dags[DAG_ID].timetable.asset_condition.objects
    payload = {"segment_id": SEGMENT, "contacts_count": 120, "sample_updated_at": sample}
    return AssetEventDagRunReferenceResult(
        asset=AssetReferenceAssetEventDagRun(name=asset.name, uri=asset.uri, extra={}),
        extra={"from_trigger": True, "payload": payload},
        source_task_id=None,
        source_dag_id=None,
        source_run_id=None,
        source_map_index=-1,
        source_aliases=[],
        timestamp=datetime.datetime(2026, 1, 1, 0, run, tzinfo=datetime.UTC),
    )


def take_event(dag_bag: DagBag, run_id: str, *events: AssetEventDagRunReferenceResult) -> Any:
    callable_ = dag_bag.dags[DAG_ID].get_task("take_event").python_callable
    context = {
        "triggering_asset_events": TriggeringAssetEventsAccessor.build(list(events)),
        "dag_run": type("Run", (), {"dag_id": DAG_ID, "run_id": run_id})(),
    }
    return callable_(**context)


def test_the_first_task_prints_the_event_and_drops_a_repeat(
    dag_bag: DagBag, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(airflow.sdk, "Variable", Variables())
    taken = take_event(dag_bag, "run-1", event(dag_bag, "2026-12-07T11:00:00Z", 1))
    assert taken["segment_id"] == SEGMENT
    assert '"sample_updated_at": "2026-12-07T11:00:00Z"' in capsys.readouterr().out
    with pytest.raises(AirflowSkipException):
        take_event(dag_bag, "run-2", event(dag_bag, "2026-12-07T11:00:00Z", 2))
