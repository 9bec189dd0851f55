"""A definitive error fails the task on its first try, retries or not (`airflow dags test`).

Bad input (``SendGridInputError`` and its kinds) and a connection that cannot work
(``SendGridConfigError``) are ``AirflowFailException``s: Airflow's task runner fails the task
without putting it up for retry. The metadata DB's try numbers are the proof.
"""

from __future__ import annotations

import json
from pathlib import Path

from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.conftest import DagsTest
from tests.helpers import metadata_db

DAGS_FOLDER = Path(__file__).parent / "dags"
DAG_ID = "sendgrid_definitive_errors_test"


def test_definitive_errors_fail_without_retries(
    sendgrid_emulator: EmulatorHandle, dags_test: DagsTest, airflow_db: Path
) -> None:
    no_key = json.dumps({"conn_type": "sendgrid_marketing", "host": sendgrid_emulator.base_url})
    result = dags_test(
        DAG_ID,
        dags_folder=DAGS_FOLDER,
        env={**sendgrid_emulator.conn_env(), "AIRFLOW_CONN_SENDGRID_NO_KEY": no_key},
    )
    output = result.stdout + result.stderr
    with metadata_db(airflow_db) as db:
        (run_id,) = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)
        ).fetchone()
        rows = db.execute(
            "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?",
            (DAG_ID, run_id),
        ).fetchall()
    tries = {task_id: (state, try_number) for task_id, state, try_number in rows}
    assert tries == {
        "past_send_at": ("failed", 1),
        "no_api_key": ("failed", 1),
        "control": ("failed", 2),  # this run does retry a plain error
    }, output[-6000:]
    assert "Invalid send_at '2020-01-01T00:00:00Z'" in output
    assert "Connection 'sendgrid_no_key'" in output
    assert sendgrid_emulator.admin.requests() == []  # both failed before any request
