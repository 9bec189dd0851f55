"""``kill -9`` in the middle of a wait or a write: Airflow recovers and SendGrid sees each write once.

* The triggerer holding a wait dies: the other triggerer takes the trigger over once the dead one's
  heartbeat is older than the health check threshold; the trigger fires once; no second refresh.
* The Celery worker dies while SendGrid has accepted the refresh POST (or the Single Send schedule
  PUT) but holds the answer: the scheduler fails the task after the task heartbeat timeout, the
  retry runs on a new worker and adopts the accepted write instead of repeating it.
"""

from __future__ import annotations

import re
import time

from services import wait_for
from stack import SEGMENTS, TASK_HEARTBEAT_TIMEOUT, TRIGGERER_HEALTH_CHECK_THRESHOLD, System

SINGLE_SENDS = "/v3/marketing/singlesends"
HOLD_ANSWER = 120.0  # seconds the emulator keeps an accepted write's answer: longer than any retry


def test_killed_triggerer_hands_the_wait_over_and_it_fires_once(system: System) -> None:
    system.ensure_triggerers(2)  # the takeover needs a survivor
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
        f"refreshes 1; {system.wait_gets(segment_id)} GETs for the wait"
    )


def kill_worker_while_answer_held(system: System, method: str, path: str, dag_id: str, name: str) -> str:
    """Run ``dag_id``; when SendGrid has accepted the ``method`` request to ``path`` (a regex) but
    still holds its answer, ``kill -9`` the worker and start a new one. Returns the run id."""
    assert system.admin is not None
    system.admin.add_fault("delay", method=method, path=path, when="after", seconds=HOLD_ANSWER)
    earlier = len(system.admin.requests(method=method))  # other tests' requests match ``path`` too
    try:
        run_id = system.trigger(dag_id, {"segment_name": name})
        wait_for(
            f"the worker's {method} {path}",
            lambda: [
                r
                for r in system.admin.requests(method=method)[earlier:]  # type: ignore[union-attr]
                if re.search(path, r["path"])
            ],
            timeout=240,
            interval=0.25,
        )
        time.sleep(1)  # the emulator has applied the write and is holding the answer
        system.kill(system.worker)
        system.start_worker()
        assert system.wait_for_run(dag_id, run_id, timeout=240) == "success", system.task_instances(
            dag_id, run_id
        )
    finally:
        system.admin.clear_faults()
    return run_id


def test_worker_killed_after_the_refresh_was_accepted_retries_without_a_second_refresh(
    system: System,
) -> None:
    dag_id = "e2e_refresh_and_wait"
    started = time.monotonic()
    run_id = kill_worker_while_answer_held(system, "POST", r"/refresh/", dag_id, "E2E worker kill refresh")
    state, tries = system.task_instances(dag_id, run_id)["refresh_segment"]
    assert (state, tries) == ("success", 2), "Airflow did not retry the refresh after the worker died"
    segment_id = system.xcom(dag_id, run_id, "ensure_segment", "segment_id")
    refreshes = system.requests("POST", f"{SEGMENTS}/refresh/{segment_id}")
    assert len(refreshes) == 1, refreshes
    print(
        f"\n[worker kill: refresh] worker killed while SendGrid held the 202; the scheduler failed the "
        f"task after the {TASK_HEARTBEAT_TIMEOUT} s heartbeat timeout, try 2 adopted the accepted refresh: "
        f"{len(refreshes)} refresh POST; run done in {time.monotonic() - started:.0f} s"
    )


def test_worker_killed_after_the_schedule_was_accepted_retries_without_a_second_send(
    system: System,
) -> None:
    assert system.admin is not None
    dag_id, name = "e2e_wait_and_send", "E2E worker kill send"
    started = time.monotonic()
    run_id = kill_worker_while_answer_held(system, "PUT", r"/schedule$", dag_id, name)
    state, tries = system.task_instances(dag_id, run_id)["send_single_send"]
    assert (state, tries) == ("success", 2), "Airflow did not retry the send after the worker died"
    single_send_id = system.xcom(dag_id, run_id, "send_single_send", "single_send_id")
    schedules = system.requests("PUT", f"{SINGLE_SENDS}/{single_send_id}/schedule")
    sends = [
        s for s in system.admin.sends() if s["name"] == f"E2E send {name}" and s["status"] != "cancelled"
    ]
    assert (len(schedules), len(sends)) == (1, 1), (schedules, sends)
    creates = [
        r
        for r in system.requests("POST", SINGLE_SENDS)
        if (r["json"] or {}).get("name") == f"E2E send {name}"
    ]
    assert len(creates) == 1, creates
    print(
        f"\n[worker kill: send] worker killed while SendGrid held the schedule answer; try 2 found the "
        f"Single Send already scheduled: {len(creates)} create, {len(schedules)} schedule PUT, "
        f"{len(sends)} send; run done in {time.monotonic() - started:.0f} s"
    )
