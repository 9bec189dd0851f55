"""The example pipeline on the production shape: the sensor defers to a triggerer, the Asset event
starts the Single Send DAG by itself, and SendGrid sees exactly one segment, one refresh, one send;
the send's results land in the PostgreSQL warehouse, announced by their Asset event.
"""

from __future__ import annotations

import json
import time
from typing import Any

from services import wait_for
from stack import EXAMPLE_SETTINGS, SEGMENTS, System, warehouse

REFRESH_DAG = "sendgrid_segment_refresh"
SEND_DAG = "sendgrid_single_send"
STATS_TABLE = "sendgrid_single_send_stats"  # the results leg's default tables (docs/results.md)
LINKS_TABLE = "sendgrid_single_send_links"


def test_example_pipeline_defers_and_the_asset_event_sends_once(system: System) -> None:
    assert system.admin is not None
    # The send DAG first: the Asset event must find it unpaused, and nothing else may start it.
    system.unpause(SEND_DAG)
    run_id = system.start_example_refresh_run(REFRESH_DAG)
    started = time.monotonic()

    deferred = system.watch_deferral(REFRESH_DAG, run_id, "wait_until_populated", timeout=240)
    assert system.wait_for_run(REFRESH_DAG, run_id, timeout=240) == "success", system.task_instances(
        REFRESH_DAG, run_id
    )
    refresh_seconds = time.monotonic() - started
    assert deferred.seen, "the sensor never showed as deferred in the metadata DB"

    sql = (
        "SELECT run_id, state, run_type FROM dag_run WHERE dag_id = :dag_id "
        "AND run_type = 'asset_triggered' ORDER BY id"
    )
    send_runs = wait_for(
        "the Asset event to start the Single Send DAG",
        lambda: system.airflow.query(sql, dag_id=SEND_DAG),
        timeout=120,
    )
    send_run_id = send_runs[0][0]
    assert system.wait_for_run(SEND_DAG, send_run_id, timeout=180) == "success", system.task_instances(
        SEND_DAG, send_run_id
    )
    assert len(system.airflow.query(sql, dag_id=SEND_DAG)) == 1

    name = EXAMPLE_SETTINGS["SGSEG_SEGMENT_NAME"]
    creates = [r for r in system.requests("POST", SEGMENTS) if (r["json"] or {}).get("name") == name]
    assert len(creates) == 1, creates
    segment_id = system.xcom(REFRESH_DAG, run_id, "ensure_segment", "segment_id")
    refreshes = system.requests("POST", f"{SEGMENTS}/refresh/{segment_id}")
    assert [r["status"] for r in refreshes] == [202], refreshes
    single_send_id = system.xcom(SEND_DAG, send_run_id, "send_single_send", "single_send_id")
    sends = [s for s in system.admin.sends() if s["single_send_id"] == single_send_id]
    assert [s["status"] for s in sends] in (["scheduled"], ["triggered"]), sends
    schedules = system.requests("PUT", f"/v3/marketing/singlesends/{single_send_id}/schedule")
    assert len(schedules) == 1, schedules
    landed = assert_results_landed(system, send_run_id, single_send_id)
    print(
        f"\n[pipeline] refresh run {refresh_seconds:.0f} s; sensor deferred {deferred.seconds:.1f} s "
        f"in triggerer job {deferred.triggerer_ids}; {system.wait_gets(segment_id)} GETs for the wait; "
        f"Single Send run {send_run_id!r}; emulator: 1 segment, {len(refreshes)} refresh, {len(sends)} send; "
        f"landed in PostgreSQL: {landed}"
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def assert_results_landed(system: System, send_run_id: str, single_send_id: str) -> str:
    """The results leg landed the send's rows in the warehouse and announced them: the totals row
    (sent and delivered counted), the clicked links, the Asset event. Returns a summary."""
    with warehouse(system) as cursor:
        cursor.execute(
            f"SELECT requests, delivered, unique_opens, unique_clicks FROM {STATS_TABLE} WHERE "
            "single_send_id = %s AND aggregation = 'total' AND ab_variation = 'all' AND ab_phase = 'all'",
            (single_send_id,),
        )
        totals = cursor.fetchall()
        cursor.execute(f"SELECT count(*) FROM {STATS_TABLE} WHERE single_send_id = %s", (single_send_id,))
        ((stats_rows,),) = cursor.fetchall()
        cursor.execute(f"SELECT url, clicks FROM {LINKS_TABLE} WHERE single_send_id = %s", (single_send_id,))
        links = cursor.fetchall()
    assert len(totals) == 1, totals
    ((requests, delivered, unique_opens, unique_clicks),) = totals
    assert requests > 0 and delivered > 0, totals
    assert stats_rows > 1, "the per-day rows land beside the total"
    assert links and all(clicks > 0 for _, clicks in links), links
    assert "https://example.com/digest" in {url for url, _ in links}, links
    summary = _json(system.xcom(SEND_DAG, send_run_id, "land_results"))
    assert summary["totals"] == {
        "requests": requests,
        "delivered": delivered,
        "unique_opens": unique_opens,
        "unique_clicks": unique_clicks,
    }, summary

    sql = (
        "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
        "WHERE e.source_dag_id = :dag_id AND e.source_run_id = :run_id AND e.source_task_id = 'land_results'"
    )
    events = {
        uri: _json(extra) for uri, extra in system.airflow.query(sql, dag_id=SEND_DAG, run_id=send_run_id)
    }
    stats_asset = f"x-sendgrid://stats/singlesends/{single_send_id}"
    assert list(events) == [stats_asset], events
    assert events[stats_asset]["table"] == STATS_TABLE and events[stats_asset]["links_table"] == LINKS_TABLE
    return f"{stats_rows} stats rows ({requests} sent, {delivered} delivered), {len(links)} link rows"
