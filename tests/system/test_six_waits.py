"""Six deferrable waits at once on a Celery worker with two slots: all six wait in the triggerers
together while the worker's slots are free, and all six succeed when their segments populate.
"""

from __future__ import annotations

import time

import httpx
from stack import SEGMENTS, System

QUERY_DSL = "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.email LIKE '%@example.com'"
WAITS = 6


def test_six_waits_defer_together_and_free_the_worker_slots(system: System) -> None:
    assert system.admin is not None
    # Each segment's first sample lands this long after it is created: time enough for all six
    # sensors to start on two slots and defer.
    system.admin.configure(contacts_populate_delay=60)
    try:
        headers = {"Authorization": f"Bearer {system.api_key}"}
        segment_ids = [
            httpx.post(
                system.emulator_url + SEGMENTS,
                json={"name": f"E2E wait {n}", "query_dsl": QUERY_DSL},
                headers=headers,
            ).json()["id"]
            for n in range(WAITS)
        ]
    finally:
        system.admin.configure(contacts_populate_delay=25)
    dag_id = "e2e_six_waits"
    run_id = system.trigger(dag_id, {"segment_ids": segment_ids})
    started = time.monotonic()

    all_deferred_at = None
    most_deferred = 0
    while system.run_state(dag_id, run_id) not in ("success", "failed"):
        assert time.monotonic() - started < 300, system.task_instances(dag_id, run_id)
        system.airflow.check_running()
        states = [state for state, _ in system.task_instances(dag_id, run_id).values()]
        deferred = states.count("deferred")
        most_deferred = max(most_deferred, deferred)
        if deferred == WAITS and all_deferred_at is None:
            all_deferred_at = time.monotonic() - started
            busy = system.airflow.query(
                "SELECT count(*) FROM task_instance WHERE state IN ('running', 'queued')"
            )
            assert busy == [(0,)], f"worker slots still taken while all six wait: {busy}"
        time.sleep(0.25)

    assert system.run_state(dag_id, run_id) == "success", system.task_instances(dag_id, run_id)
    assert all_deferred_at is not None, f"at most {most_deferred} of {WAITS} waits were deferred at once"
    assert {ti for ti in system.task_instances(dag_id, run_id).values()} == {("success", 1)}
    gets = [len(system.requests("GET", f"{SEGMENTS}/{segment_id}")) for segment_id in segment_ids]
    print(
        f"\n[six waits] all {WAITS} deferred together {all_deferred_at:.0f} s after the trigger with no "
        f"task running or queued; all succeeded in {time.monotonic() - started:.0f} s; "
        f"GETs per wait: {gets}"
    )
