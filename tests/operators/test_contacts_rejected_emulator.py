"""Issue 19 part 5: rejected rows land where a team can query them (against the emulator)."""

from __future__ import annotations

import csv
import json
import sqlite3
import types
from pathlib import Path
from typing import Any

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridRowError
from airflow_provider_sgseg.operators._rejected_rows import COLUMNS, TASK_COLUMNS
from airflow_provider_sgseg.operators.contacts import SendGridUpsertContactsOperator
from airflow_provider_sgseg.version_compat import AirflowFailException
from tests.operators.test_contacts_emulator import run, wire
from tests.operators.test_segments_emulator import MemoryTaskStateStore

__all__ = ["wire"]  # the fixture, shared with test_contacts_emulator.py

ROWS = [
    {"email": "ok1@example.com", "phone_number_id": ""},
    {"email": "not-an-email", "phone_number_id": ""},  # refused locally: row 2
    {"email": "ok2@example.com", "phone_number_id": "+31612345678"},
    {"email": "bad-phone@example.com", "phone_number_id": "12345"},  # SendGrid rejects it: row 4
    {"email": "ok3@example.com", "phone_number_id": ""},
]


def rejected(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


@pytest.mark.parametrize("import_threshold", [200_000, 1], ids=["batches", "csv-import"])
def test_rows_refused_locally_and_rejected_by_sendgrid_are_written_once_per_retry(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path, import_threshold: int
) -> None:
    path = tmp_path / "rejected" / "contacts.csv"
    store = MemoryTaskStateStore()

    def attempt() -> dict[str, Any]:
        operator = SendGridUpsertContactsOperator(
            task_id="t",
            contacts=ROWS,
            max_error_ratio=0.5,
            rejected_rows_path=str(path),
            import_threshold=import_threshold,
        )
        return run(wire(operator), store)

    first = attempt()
    assert first["refused_rows"] == 1 and first["errored_count"] == 1  # the XCom keeps the counts
    assert first["rejected_rows_path"] == str(path)
    second = attempt()  # a retry: same jobs, waited for again
    assert second["job_ids"] == first["job_ids"]
    records = rejected(path)
    assert len(records) == 2  # each rejected row once, after two tries
    local, remote = sorted(records, key=lambda record: record["origin"])
    assert (local["origin"], local["row_number"], local["column_name"], local["value"]) == (
        "local",
        "2",
        "email",
        "not-an-email",
    )
    assert local["rule"] == "not a valid email address"
    assert json.loads(local["source_line"]) == ROWS[1]
    assert (remote["origin"], remote["row_number"], remote["value"]) == (
        "sendgrid",
        "4",
        "bad-phone@example.com",
    )
    assert "phone_number_id" in remote["rule"] and remote["job_id"] in first["job_ids"]
    assert "bad-phone@example.com" in remote["source_line"]


def test_a_clean_run_writes_a_file_with_only_the_header(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path
) -> None:
    path = tmp_path / "rejected.csv"
    rows = [ROWS[0]]
    run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows, rejected_rows_path=str(path))))
    assert rejected(path) == []


def test_strict_mode_still_writes_the_row_that_failed_the_task(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path
) -> None:
    path = tmp_path / "rejected.csv"
    with pytest.raises(SendGridRowError):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=ROWS, rejected_rows_path=str(path))))
    assert [(r["row_number"], r["column_name"]) for r in rejected(path)] == [("2", "email")]


def test_rejected_rows_table_through_the_sources_connection_never_twice(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "warehouse.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE customers (id INTEGER, email TEXT, phone_number_id TEXT)")
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?)",
            [(n, row["email"], row["phone_number_id"]) for n, row in enumerate(ROWS)],
        )
        columns = ", ".join(f"{name} TEXT" for name in (*TASK_COLUMNS, *COLUMNS))
        db.execute(f"CREATE TABLE rejected_contacts ({columns})")
        db.execute(  # another task's row stays
            "INSERT INTO rejected_contacts (dag_id, task_id, run_id, map_index, origin)"
            " VALUES ('d', 'other', 'r', -1, 'x')"
        )
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    store = MemoryTaskStateStore()
    ti = types.SimpleNamespace(dag_id="d", task_id="sync", run_id="r", map_index=-1)
    for _ in range(2):  # a retry replaces the first try's rows
        operator = SendGridUpsertContactsOperator(
            task_id="sync",
            sql="SELECT email, phone_number_id FROM customers ORDER BY id",
            sql_conn_id="warehouse",
            max_error_ratio=0.5,
            rejected_rows_path=str(tmp_path / "rejected.csv"),
            rejected_rows_table="rejected_contacts",
        )
        wire(operator).execute({"task_state_store": store, "ti": ti})
    with sqlite3.connect(database) as db:
        found = db.execute(
            "SELECT task_id, origin, row_number, rule FROM rejected_contacts ORDER BY task_id, origin"
        ).fetchall()
    assert [(task, origin, row) for task, origin, row, _ in found] == [
        ("other", "x", None),
        ("sync", "local", "2"),
        ("sync", "sendgrid", "4"),
    ]


def test_rejected_rows_table_needs_a_sql_source_and_a_path(tmp_path: Path) -> None:
    with pytest.raises(SendGridInputError, match="rejected_rows_table"):
        SendGridUpsertContactsOperator(
            task_id="t", contacts=ROWS, rejected_rows_path=str(tmp_path / "r.csv"), rejected_rows_table="t"
        )
    with pytest.raises(SendGridInputError, match="rejected_rows_table"):
        SendGridUpsertContactsOperator(task_id="t", sql="SELECT 1", sql_conn_id="w", rejected_rows_table="t")


def test_too_many_rejected_rows_still_fail_after_the_file_is_written(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path
) -> None:
    path = tmp_path / "rejected.csv"
    operator = SendGridUpsertContactsOperator(
        task_id="t", contacts=ROWS, max_error_ratio=0.3, rejected_rows_path=str(path)
    )
    with pytest.raises(AirflowFailException, match="above max_error_ratio"):
        run(wire(operator))
    assert sorted(r["origin"] for r in rejected(path)) == ["local", "sendgrid"]


def test_a_huge_message_in_an_errors_file_is_cut_and_the_file_reads_back(tmp_path: Path) -> None:
    # The errors file is SendGrid's answer: a message of any length must not make the published
    # file unreadable for the table load (its lines are bounded) on this try and every retry.
    from airflow_provider_sgseg.operators._rejected_rows import (
        MAX_QUOTED,
        RejectedRows,
        published_records,
        sendgrid_records,
    )

    # Within the csv module's field limit (131,072 characters), beyond the published file's line
    # bound in bytes (4 per character here).
    message = "invalid phone number " + "\N{GRINNING FACE}" * 120_000
    lines = ["row_number,identifier,message\n", f"1,a@example.com,{message}\n"]
    records = list(sendgrid_records(lines, "errors file", "job-1", [[1, 1]]))
    assert len(records) == 1 and len(records[0][COLUMNS.index("rule")]) <= MAX_QUOTED + 1
    path = tmp_path / "rejected.csv"
    rejected_rows = RejectedRows(str(path))
    rejected_rows.add(records[0])
    rejected_rows.publish()
    (read,) = list(published_records(rejected_rows.path))
    assert read[COLUMNS.index("rule")].startswith("invalid phone number \N{GRINNING FACE}")
