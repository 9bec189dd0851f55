"""``kill -9`` in the middle of a wait or a write: Airflow recovers and SendGrid sees each write once.

* The triggerer holding a wait dies: the other triggerer takes the trigger over once the dead one's
  heartbeat is older than the health check threshold; the trigger fires once; no second refresh.
* The Celery worker dies while SendGrid has accepted the refresh POST (or the Single Send schedule
  PUT) but holds the answer: the scheduler fails the task after the task heartbeat timeout, the
  retry runs on a new worker and adopts the accepted write instead of repeating it.
"""

from __future__ import annotations

import time

from services import wait_for
from stack import TASK_HEARTBEAT_TIMEOUT, TRIGGERER_HEALTH_CHECK_THRESHOLD, System

SEGMENTS = "/v3/marketing/segments/2.0"
SINGLE_SENDS = "/v3/marketing/singlesends"
HOLD_ANSWER = 120.0  # seconds the emulator keeps an accepted write's answer: longer than any retry


def test_killed_triggerer_hands_the_wait_over_and_it_fires_once(system: System) -> None:
    dag_id, task_id = "e2e_refresh_and_wait", "wait_until_populated"
    run_id = system.trigger(dag_id, {"segment_name": "E2E takeover audience"})
    holder = wait_for(
        "the sensor's trigger to be held by a triggerer",
        lambda: system.trigger_holder(dag_id, run_id, task_id),
        timeout=180,
        interval=0.25,
    )
    by_job = {component.job_id: component for component in system.triggerers()}
    victim, (survivor,) = by_job.pop(holder), by_job.values()
    killed_at = time.monotonic()
    system.kill(victim)

    deferral = system.watch_deferral(dag_id, run_id, task_id, timeout=180)
    handed_over = time.monotonic() - killed_at
    assert system.wait_for_run(dag_id, run_id, timeout=60) == "success", system.task_instances(dag_id, run_id)
    assert deferral.triggerer_ids[-1] == survivor.job_id, deferral
    state, tries = system.task_instances(dag_id, run_id)[task_id]
    assert (state, tries) == ("success", 1), "the wait was retried instead of handed over"
    fired = system.trigger_log_count(dag_id, run_id, task_id, "Trigger fired event")
    assert fired == {survivor.job_id: 1}, fired
    segment_id = system.xcom(dag_id, run_id, "ensure_segment", "segment_id")
    assert len(system.requests("POST", f"{SEGMENTS}/refresh/{segment_id}")) == 1
    print(
        f"\n[takeover] triggerer job {holder} killed; job {survivor.job_id} took the trigger over and it "
        f"fired once; {handed_over:.0f} s from the kill to the end of the wait "
        f"(health check threshold {TRIGGERER_HEALTH_CHECK_THRESHOLD} s); states {deferral.states}; "
        f"refreshes 1; {len(system.requests('GET', f'{SEGMENTS}/{segment_id}'))} GETs of the segment"
    )
