"""A segment watcher on the production shape: events become runs, exactly once, also across a kill.

The watcher (``dags/e2e_segment_events.py``, ``min_change=1``) watches a segment created when
the stack started; the test adds a member to make the segment's next sample count one more.

* three such samples start exactly three runs of the unpaused consumer;
* ``kill -9`` of the triggerer running the watcher, then a sample while nobody watches: the
  other triggerer takes the watcher over and (its watermark being in the asset state store)
  starts exactly one run for that sample, none for the samples already handled;
* the paused consumer of the same Asset gets no run.
"""

from __future__ import annotations

import time

from services import wait_for
from stack import SEGMENTS, WATCHED_DOMAIN, System

DAG_ID = "e2e_segment_events"
PAUSED_DAG_ID = "e2e_segment_events_paused"
CLASSPATH = "airflow_provider_sgseg.triggers.segment_events.SendGridSegmentEventTrigger"
WATCHER = "e2e_watched_segment_watcher"
QUIET = 15.0  # seconds in which no extra run may appear (several polls and scheduler loops)


def asset_runs(system: System, dag_id: str) -> list[tuple[str, str]]:
    sql = "SELECT run_id, state FROM dag_run WHERE dag_id = :d AND run_type = 'asset_triggered' ORDER BY id"
    return [(str(run), str(state)) for run, state in system.airflow.query(sql, d=dag_id)]


def watcher_holder(system: System) -> int | None:
    sql = (
        "SELECT t.triggerer_id FROM trigger t JOIN asset_watcher w ON w.trigger_id = t.id "
        "WHERE w.name = :name AND t.classpath = :c AND t.triggerer_id IS NOT NULL"
    )
    found = system.airflow.query(sql, name=WATCHER, c=CLASSPATH)
    return int(found[0][0]) if found else None


def lists_so_far(system: System) -> int:
    return len([r for r in system.requests("GET", SEGMENTS) if r["path"] == SEGMENTS])


def add_member_and_wait_for_run(system: System, number: int, members: list[int]) -> str:
    """Add one member (the next sample counts one more); return the run it starts, once done."""
    assert system.admin is not None
    members.append(len(members))
    system.admin.seed_contacts([{"email": f"member{members[-1]}@{WATCHED_DOMAIN}"}])
    runs = wait_for(
        f"run {number} of {DAG_ID}",
        lambda: found if len(found := asset_runs(system, DAG_ID)) >= number else None,
        timeout=120,
        interval=0.5,
    )
    assert len(runs) == number, runs
    run_id = runs[-1][0]
    assert system.wait_for_run(DAG_ID, run_id, timeout=120) == "success", system.task_instances(
        DAG_ID, run_id
    )
    return run_id


def test_each_sample_starts_one_run_a_kill_starts_none_and_a_paused_consumer_gets_none(
    system: System,
) -> None:
    system.ensure_triggerers(2)  # test_kills may have killed one: the takeover needs a survivor
    system.wait_for_dag(PAUSED_DAG_ID)
    system.wait_for_dag(DAG_ID)
    holder = wait_for("a triggerer to run the watcher", lambda: watcher_holder(system), timeout=180)
    # The watcher's first look is its baseline; a member added before it would be no event.
    polls = lists_so_far(system)
    wait_for("the watcher's first poll", lambda: lists_so_far(system) > polls or None, timeout=60)
    time.sleep(2)

    members: list[int] = []
    payloads = []
    for number in (1, 2, 3):
        run_id = add_member_and_wait_for_run(system, number, members)
        payloads.append(system.xcom(DAG_ID, run_id, "take_event"))
    counts = [p["contacts_count"] if isinstance(p, dict) else None for p in payloads]
    time.sleep(QUIET)
    assert len(asset_runs(system, DAG_ID)) == 3, asset_runs(system, DAG_ID)

    # kill -9 the triggerer running the watcher, and the segment samples while nobody watches: the
    # other triggerer takes the watcher over, fires that sample once (its watermark is in the
    # asset state store: no repeat of run 3's sample, and no miss) and nothing more.
    by_job = {component.job_id: component for component in system.triggerers()}
    victim, (survivor,) = by_job.pop(holder), by_job.values()
    system.kill(victim)
    run_id = add_member_and_wait_for_run(system, 4, members)
    assert watcher_holder(system) == survivor.job_id
    after_kill = system.xcom(DAG_ID, run_id, "take_event")
    # The survivor started from the saved watermark (run 3's sample, or an unchanged sample the
    # victim saw after it), not from a baseline of its own: without it this sample, taken before
    # the takeover, would have been the survivor's baseline and started no run.
    assert after_kill["contacts_count"] == 4, after_kill
    assert after_kill["previous_sample_updated_at"] >= payloads[-1]["sample_updated_at"], after_kill
    time.sleep(QUIET)
    assert len(asset_runs(system, DAG_ID)) == 4, "the takeover repeated an event"
    assert asset_runs(system, PAUSED_DAG_ID) == []
    print(
        f"\n[watchers] 3 samples -> 3 runs (contacts {counts}); triggerer job {holder} killed, job "
        f"{survivor.job_id} took the watcher over and fired the sample taken meanwhile once; "
        f"paused consumer: 0 runs; {lists_so_far(system)} list requests in all"
    )
