"""The production shape's connection: stored in the metadata DB, encrypted with the stack's Fernet
key, read by a Celery worker (through the api-server) and by a triggerer (its own DB access).
Airflow 3.0.6 with cryptography 51 fails here ("'MultiFernet' object has no attribute
'is_encrypted'", then "connection not found")."""

from __future__ import annotations

import httpx
from stack import SEGMENTS, System

QUERY_DSL = "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.email LIKE '%@example.com'"


def test_worker_and_triggerer_use_a_connection_stored_encrypted(system: System) -> None:
    assert system.admin is not None
    connection = {"conn_type": "sendgrid_marketing", "host": system.emulator_url, "password": system.api_key}
    system.airflow.api("POST", "/connections", {"connection_id": "sendgrid_stored", **connection})
    stored = system.airflow.query(
        "SELECT is_encrypted, password FROM connection WHERE conn_id = 'sendgrid_stored'"
    )
    assert len(stored) == 1 and stored[0][0] is True, stored
    assert system.api_key not in str(stored[0][1])

    headers = {"Authorization": f"Bearer {system.api_key}"}
    segment = {"name": "E2E stored connection", "query_dsl": QUERY_DSL}
    segment_id = httpx.post(system.emulator_url + SEGMENTS, json=segment, headers=headers).json()["id"]
    dag_id = "e2e_stored_connection"
    run_id = system.trigger(dag_id, {"segment_id": segment_id})
    deferral = system.watch_deferral(dag_id, run_id, "wait_until_populated", timeout=240)

    state = system.wait_for_run(dag_id, run_id, timeout=300)
    assert state == "success", system.task_instances(dag_id, run_id)
    assert deferral.seen and deferral.triggerer_ids, f"the wait never ran in a triggerer: {deferral}"
    assert set(system.task_instances(dag_id, run_id).values()) == {("success", 1)}
    assert len(system.requests("GET", f"{SEGMENTS}/{segment_id}")) >= 2  # the worker's look, the trigger's
