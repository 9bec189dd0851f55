"""Every example DAG parses cleanly, cheaply (no network, no connection, no hook) and is wired right."""

from __future__ import annotations

import datetime
import socket
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.api.datamodels._generated import AssetReferenceAssetEventDagRun
from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

from airflow_provider_sgseg.version_compat import AirflowFailException, AirflowSkipException, BaseHook
from tests.airflow_compat import DAGBAG_IMPORT, DagBag
from tests.helpers import modules_imported_by

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
EXPECTED_DAGS = {
    "sendgrid_segment_refresh",
    "sendgrid_single_send",
    "sendgrid_segment_lifecycle",
    "sendgrid_audience_pipeline",
    "sendgrid_segment_events",
}
SEGMENT = "8a3c1f3e-4a5b-4c6d-9e7f-0a1b2c3d4e5f"


@pytest.fixture
def no_network_no_connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every socket connect and connection lookup made while parsing."""
    attempts: list[str] = []

    def refuse_connect(self: socket.socket, address: Any) -> None:
        attempts.append(f"connect {address!r}")
        raise OSError("network is off while parsing DAGs")

    def refuse_lookup(cls: type, conn_id: str) -> None:
        attempts.append(f"connection {conn_id!r}")
        raise RuntimeError("no connection lookups while parsing DAGs")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_connect)
    monkeypatch.setattr(BaseHook, "get_connection", classmethod(refuse_lookup))
    return attempts


@pytest.fixture
def dag_bag(no_network_no_connections: list[str]) -> DagBag:
    return DagBag(dag_folder=DAGS_FOLDER, safe_mode=False)


def test_every_dag_file_imports_without_errors(dag_bag: DagBag) -> None:
    assert dag_bag.import_errors == {}
    assert set(dag_bag.dag_ids) == EXPECTED_DAGS


def test_parsing_makes_no_network_call_or_connection_lookup(
    dag_bag: DagBag, no_network_no_connections: list[str]
) -> None:
    assert dag_bag.dags, "nothing was parsed"
    assert no_network_no_connections == []


def test_parsing_does_not_import_the_hook() -> None:
    code = (
        f"bag = DagBag(dag_folder={str(DAGS_FOLDER)!r}, safe_mode=False)\n"
        "assert not bag.import_errors, bag.import_errors\n"
        f"assert sorted(bag.dag_ids) == {sorted(EXPECTED_DAGS)!r}, sorted(bag.dag_ids)\n"
    )
    new = modules_imported_by(code, setup=DAGBAG_IMPORT)
    assert "airflow_provider_sgseg.hooks.marketing" not in new


def test_the_single_send_dag_is_scheduled_on_the_refresh_dags_asset(dag_bag: DagBag) -> None:
    refresh = dag_bag.dags["sendgrid_segment_refresh"]
    single_send = dag_bag.dags["sendgrid_single_send"]
    emitted = {asset.uri for asset in refresh.get_task("wait_until_populated").outlets}
    consumed = {asset.uri for asset in single_send.timetable.asset_condition.objects}
    assert consumed and consumed == emitted
    assert all(uri.startswith("x-sendgrid://segments/") for uri in emitted)


def test_the_refresh_dag_waits_deferrably_even_after_a_skipped_refresh(dag_bag: DagBag) -> None:
    dag = dag_bag.dags["sendgrid_segment_refresh"]
    wait = dag.get_task("wait_until_populated")
    assert wait.deferrable is True
    assert wait.trigger_rule == "none_failed"
    assert dag.get_task("refresh_segment").on_quota_exhausted == "skip"
    assert dag.get_task("ensure_segment").if_exists == "reuse"
    assert {t.task_id for t in wait.upstream_list} == {"refresh_segment"}


def asset_event(dag_bag: DagBag, segment_id: str, minute: int) -> AssetEventDagRunReferenceResult:
    """An event on the Single Send DAG's Asset, as the task runner hands it to the task."""
    (asset,) = dag_bag.dags["sendgrid_single_send"].timetable.asset_condition.objects
    return AssetEventDagRunReferenceResult(
        asset=AssetReferenceAssetEventDagRun(name=asset.name, uri=asset.uri, extra={}),
        extra={"segment_id": segment_id, "contacts_count": 5},
        source_task_id="wait_until_populated",
        source_dag_id="sendgrid_segment_refresh",
        source_run_id=f"run-{minute}",
        source_map_index=-1,
        source_aliases=[],
        timestamp=datetime.datetime(2026, 1, 1, 0, minute, tzinfo=datetime.UTC),
    )


def pick_segment(
    dag_bag: DagBag, events: list[AssetEventDagRunReferenceResult], params: dict[str, Any]
) -> Any:
    callable_ = dag_bag.dags["sendgrid_single_send"].get_task("pick_segment").python_callable
    accessor = TriggeringAssetEventsAccessor.build(events)  # what Airflow puts in the context
    return callable_(triggering_asset_events=accessor, params=params)


def test_segment_id_comes_from_the_newest_triggering_asset_event(dag_bag: DagBag) -> None:
    # Listed out of order: the accessor promises no order, the newest timestamp must win.
    events = [
        asset_event(dag_bag, "older", 1),
        asset_event(dag_bag, SEGMENT, 3),
        asset_event(dag_bag, "oldest", 0),
    ]
    assert pick_segment(dag_bag, events, {"segment_id": "from-param"}) == SEGMENT


def test_segment_id_falls_back_to_the_param_when_run_by_hand(dag_bag: DagBag) -> None:
    assert pick_segment(dag_bag, [], {"segment_id": SEGMENT}) == SEGMENT
    with pytest.raises(AirflowFailException, match="segment_id"):
        pick_segment(dag_bag, [], {"segment_id": None})


def parse(monkeypatch: pytest.MonkeyPatch, **settings: str) -> DagBag:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return DagBag(dag_folder=DAGS_FOLDER, safe_mode=False)


def test_unpausing_the_refresh_example_schedules_nothing_until_given_a_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SGSEG_REFRESH_SCHEDULE", raising=False)
    assert parse(monkeypatch).dags["sendgrid_segment_refresh"].timetable.can_be_scheduled is False
    scheduled = parse(monkeypatch, SGSEG_REFRESH_SCHEDULE="@daily").dags["sendgrid_segment_refresh"]
    assert scheduled.timetable.can_be_scheduled is True
    timetable = scheduled.timetable  # the SDK's (3.3: .expression) or the core one (3.0: ._expression)
    # The schedule the DAG was given, as each line spells it (3.2 keeps the preset's name).
    assert (getattr(timetable, "expression", None) or timetable._expression) in ("0 0 * * *", "@daily")


def check_sending(dag_bag: DagBag) -> Any:
    dag = dag_bag.dags["sendgrid_single_send"]
    check = dag.get_task("check_sending_enabled")
    # The send depends on the check through pick_segment: a skipped check skips the send.
    assert "check_sending_enabled" in dag.get_task("send_single_send").get_flat_relative_ids(upstream=True)
    return check.python_callable()


def test_the_single_send_example_skips_the_send_unless_sending_is_enabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SGSEG_SEND_ENABLED", raising=False)
    with pytest.raises(AirflowSkipException, match="SGSEG_SEND_ENABLED=true"):
        check_sending(parse(monkeypatch))
    with pytest.raises(AirflowSkipException):
        check_sending(parse(monkeypatch, SGSEG_SEND_ENABLED="false"))
    assert check_sending(parse(monkeypatch, SGSEG_SEND_ENABLED="true")) is None


def test_a_misspelt_send_setting_is_an_import_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    bag = parse(monkeypatch, SGSEG_SEND_ENABLED="yes")
    (error,) = (e for path, e in bag.import_errors.items() if path.endswith("sendgrid_single_send.py"))
    assert "SGSEG_SEND_ENABLED must be 'true' or 'false', got 'yes'" in error
