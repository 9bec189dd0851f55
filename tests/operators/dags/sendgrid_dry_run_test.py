"""Test DAG run by tests/operators/test_dry_runs_dags.py under `airflow dags test`.

``dry_run`` comes from a DAG param through a template, as a DAG author switches a weekly run to a
dry run; the real task runner renders it (to the text "True"), runs each task and pushes its
report through the supervisor. The test reads the emulator's request log: only GETs.
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.sdk import DAG, chain, task

from airflow_provider_sgseg.operators.contacts import SendGridUpsertContactsOperator
from airflow_provider_sgseg.operators.segments import SendGridCreateSegmentOperator

DRY_RUN = "{{ params.dry_run }}"

with DAG(
    dag_id="sendgrid_dry_run_test",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    params={"dry_run": True},
):
    upsert = SendGridUpsertContactsOperator(
        task_id="upsert",
        contacts=[{"email": f"reader{n}@example.com", "first_name": f"R{n}"} for n in range(3)],
        dry_run=DRY_RUN,
    )
    create = SendGridCreateSegmentOperator(
        task_id="create",
        name="dry-run-segment",
        query_dsl="SELECT contact_id, updated_at FROM contact_data WHERE first_name = 'R1'",
        dry_run=DRY_RUN,
    )

    @task
    def check(ti: Any = None) -> None:
        upserted = ti.xcom_pull(task_ids="upsert")
        assert upserted["dry_run"] is True and upserted["contacts_sent"] == 3, upserted
        created = ti.xcom_pull(task_ids="create")
        assert created["dry_run"] is True and created["action"] == "create", created
        print(f"SGSEG-DRY-RUN OK would_send={upserted['would_send'] + created['would_send']}")

    chain(upsert, create, check())
