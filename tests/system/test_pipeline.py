"""The example pipeline on the production shape: the sensor defers to a triggerer, the Asset event
starts the Single Send DAG by itself, and SendGrid sees exactly one segment, one refresh, one send.
"""

from __future__ import annotations

import time

from services import wait_for
from stack import EXAMPLE_SETTINGS, SEGMENTS, System

REFRESH_DAG = "sendgrid_segment_refresh"
SEND_DAG = "sendgrid_single_send"


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
    print(
        f"\n[pipeline] refresh run {refresh_seconds:.0f} s; sensor deferred {deferred.seconds:.1f} s "
        f"in triggerer job {deferred.triggerer_ids}; {system.wait_gets(segment_id)} GETs for the wait; "
        f"Single Send run {send_run_id!r}; emulator: 1 segment, {len(refreshes)} refresh, {len(sends)} send"
    )
