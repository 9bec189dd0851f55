"""The user's test of their DAG: one fixture (``sendgrid_dag_runner``, from ``pip install
sgseg-emulator``), no Airflow set-up, no change to the DAG (docs/testing.md)."""

from __future__ import annotations

import csv

from weekly_readers import dag


def test_weekly_readers_exports_the_readers_it_synced(sendgrid_dag_runner, tmp_path):
    result = sendgrid_dag_runner.run(dag, conf={"export_dir": str(tmp_path)})

    assert result.state == "success", result.task_states
    assert result.xcom("sync_contacts")["created_count"] == 5
    assert result.xcom("wait_until_populated")["contacts_count"] == 5
    (path,) = result.xcom("export_members")["paths"]
    with open(path, newline="") as exported:
        assert {row["EMAIL"] for row in csv.DictReader(exported)} == {
            f"reader{n}@example.com" for n in range(5)
        }
    refreshes = sendgrid_dag_runner.admin.requests(
        method="POST", path_prefix="/v3/marketing/segments/2.0/refresh"
    )
    assert len(refreshes) == 1
