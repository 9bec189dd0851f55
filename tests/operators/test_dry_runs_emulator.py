"""Issue 23 part 4: ``dry_run=True`` reads, reports what the real run would write, and writes nothing.

The proof is the emulator's request log: after a dry run it holds only ``GET`` requests (the file
host's uploads are logged there too). Each dry run is followed, where it matters, by the real run
on the same task state store, which must still do all the work.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridNotFoundError
from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.operators import contacts_upsert as contacts_module
from airflow_provider_sgseg.operators._dry_run import QUERY_NOT_VALIDATED, read_only
from airflow_provider_sgseg.operators.contacts import SendGridUpsertContactsOperator
from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridDeleteSegmentOperator,
    SendGridUpdateSegmentOperator,
)
from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from airflow_provider_sgseg.version_compat import AirflowFailException
from tests.operators.test_contacts_emulator import contacts_module_call, people, plan_field, run, wire
from tests.operators.test_segments_emulator import (
    QUERY_DE,
    QUERY_FR,
    MemoryTaskStateStore,
    TaskRun,
    create,
    deleter,
    new_segment,
    segments_left,
    single_send,
    wired,
)
from tests.operators.test_single_sends_emulator import RecordingTaskInstance, make_operator, populated_segment

__all__ = ["plan_field", "wire"]  # fixtures, shared with test_contacts_emulator.py

CONTACTS = "/v3/marketing/contacts"
IMPORTS = "/v3/marketing/contacts/imports"
FIELDS = "/v3/marketing/field_definitions"
SEGMENTS = "/v3/marketing/segments/2.0"
MISSING = "00000000-0000-4000-8000-000000000000"


def mark(emulator: EmulatorHandle) -> int:
    """Where the request log stands: what a test set up before its dry run is left out."""
    return len(emulator.admin.requests())


def sent_since(emulator: EmulatorHandle, since: int) -> list[tuple[str, str]]:
    """The API requests (and file uploads) the emulator logged after the first ``since``."""
    return [(r["method"], r["path"]) for r in emulator.admin.requests()[since:]]


def assert_reads_only(emulator: EmulatorHandle, since: int = 0) -> list[tuple[str, str]]:
    sent = sent_since(emulator, since)
    assert sent, "the dry run read nothing from SendGrid"
    assert [request for request in sent if request[0] != "GET"] == []
    return sent


def ids_and_links(pushed: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A task's XCom pushes without, and its link data (``sendgrid_links``) apart."""
    rest = {key: value for key, value in pushed.items() if key != "sendgrid_links"}
    links = dict(pushed.get("sendgrid_links") or {})
    links.pop("api_base_url", None)
    return rest, links


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, Any]]) -> None:
    """Airflow connection ``warehouse``: SQLite with ``customers`` (``rows``) and an empty
    ``rejected`` table in the rejected rows shape."""
    database = tmp_path / "warehouse.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE customers (email TEXT, first_name TEXT, country TEXT, plan TEXT)")
        db.executemany("INSERT INTO customers VALUES (:email, :first_name, :country, :plan)", rows)
        db.execute(
            "CREATE TABLE rejected (dag_id TEXT, task_id TEXT, run_id TEXT, map_index INTEGER, origin TEXT, "
            "row_number TEXT, source_line TEXT, column_name TEXT, value TEXT, rule TEXT, job_id TEXT)"
        )
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)}))


def rejected_table_rows(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "warehouse.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0])


# ------------------------------------------------------------------------------------- upsert


@pytest.mark.parametrize("mode", ["batches", "import"])
@pytest.mark.parametrize("source", ["csv", "sql"])
def test_upsert_dry_run_sends_only_reads(
    sendgrid_emulator: EmulatorHandle,
    wire: Any,
    plan_field: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    mode: str,
) -> None:
    rows = [*people(4), {"email": "not-an-email", "first_name": "X", "country": "NL", "plan": "pro"}]
    arguments: dict[str, Any] = {"rejected_rows_path": str(tmp_path / "rejected.csv")}
    if source == "csv":
        arguments["source_path"] = str(write_csv(tmp_path / "contacts.csv", rows))
    else:
        warehouse(tmp_path, monkeypatch, rows)
        arguments.update(
            sql="SELECT * FROM customers", sql_conn_id="warehouse", rejected_rows_table="rejected"
        )
    list_id = SendGridMarketingHook()._request(
        contacts_module_call("POST", "/v3/marketing/lists", {"name": "all"})
    )["id"]
    since = mark(sendgrid_emulator)
    operator = SendGridUpsertContactsOperator(
        task_id="t",
        list_ids=[list_id],
        max_error_ratio=0.5,
        import_threshold=2 if mode == "import" else 200_000,
        dry_run=True,
        **arguments,
    )

    report = run(wire(operator))

    sent = assert_reads_only(sendgrid_emulator, since)
    assert ("GET", FIELDS) in sent and ("GET", "/v3/marketing/lists") in sent
    assert report["dry_run"] is True and report["method"] == mode
    assert (report["rows_read"], report["rows_sent"], report["refused_rows"]) == (5, 4, 1)
    assert report["refused"][0]["row"] == 5 and report["refused"][0]["column"] == "email"
    written = "PUT " + (IMPORTS if mode == "import" else CONTACTS)
    assert [request.split(" (")[0] for request in report["would_send"]] == [written]
    assert report["list_ids"] == [list_id]
    # the team's rejected rows file and table are not written by a dry run
    assert not (tmp_path / "rejected.csv").exists()
    if source == "sql":
        assert rejected_table_rows(tmp_path) == 0


def test_upsert_dry_run_reports_batches_columns_and_target_fields(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contacts_module, "MAX_CONTACTS_PER_UPSERT", 2)
    since = mark(sendgrid_emulator)
    # rows 1-2 and 3-4 are the batches; row 4 (person0 again) is not merged: it is not in row 1's batch
    rows = [{**row, "score": "7", "loyalty": "gold", "CONTACT_ID": "x"} for row in [*people(3), *people(1)]]
    operator = SendGridUpsertContactsOperator(
        task_id="t",
        contacts=rows,
        ignore_columns=["loyalty"],
        create_missing_fields=True,
        custom_field_types={"score": "Number"},
        dry_run=True,
    )

    report = run(wire(operator))

    assert_reads_only(sendgrid_emulator, since)
    assert (report["method"], report["batches"]) == ("batches", 2)
    first, second = report["parts"]
    assert (first["first_row"], first["last_row"], first["contacts"]) == (1, 2, 2)
    assert (second["first_row"], second["last_row"], second["contacts"]) == (3, 4, 2)
    assert report["merged_rows"] == 0 and report["contacts_sent"] == 4
    assert report["columns"] == [
        {"column": "email", "field": "email", "kind": "reserved"},
        {"column": "first_name", "field": "first_name", "kind": "reserved"},
        {"column": "country", "field": "country", "kind": "reserved"},
        {"column": "plan", "field": "plan", "kind": "custom", "field_id": plan_field, "field_type": "Text"},
        {
            "column": "score",
            "field": "score",
            "kind": "custom (to create)",
            "field_id": None,
            "field_type": "Number",
        },
    ]
    assert report["fields_to_create"] == {"score": "Number"}
    assert set(report["unsent_columns"]) == {"loyalty", "CONTACT_ID"}
    assert report["would_send"][0] == f"POST {FIELDS} (create the custom field)"
    assert report["would_send"][1].startswith(f"PUT {CONTACTS} (batch 0: 2 contacts, rows 1-2")
    # the field was not created: SendGrid's definitions are what they were
    custom = SendGridMarketingHook().get_field_definitions()["custom_fields"]
    assert [field["name"] for field in custom] == ["plan"]


def test_upsert_dry_run_reports_merged_rows(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str
) -> None:
    rows = [*people(2), {"email": "PERSON0@example.com", "last_name": "Zero"}]
    since = mark(sendgrid_emulator)
    report = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows, dry_run=True)))
    assert (report["rows_sent"], report["merged_rows"], report["contacts_sent"]) == (3, 1, 2)
    assert report["parts"][0]["merged_rows"] == [3]
    assert_reads_only(sendgrid_emulator, since)


def test_upsert_dry_run_validates_every_row_then_fails_as_the_real_run_would(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    since = mark(sendgrid_emulator)
    rows = people(4)
    rows[1]["email"] = "not-an-email"
    rows[3]["email"] = "also bad"
    operator = SendGridUpsertContactsOperator(task_id="t", contacts=rows, dry_run=True)  # strict
    with pytest.raises(AirflowFailException, match=r"2 of 4 rows refused locally, above max_error_ratio=0.0"):
        run(wire(operator))
    # row 4 was validated and its refusal logged too: the real run stops at row 2
    assert "also bad" in capsys.readouterr().out
    assert_reads_only(sendgrid_emulator, since)


def test_upsert_dry_run_fails_on_an_unknown_field_as_the_real_run_would(
    sendgrid_emulator: EmulatorHandle, wire: Any
) -> None:
    with pytest.raises(SendGridInputError, match="'plan'"):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(2), dry_run=True)))
    assert_reads_only(sendgrid_emulator)


def test_upsert_dry_run_leaves_the_task_state_store_to_the_real_run(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contacts_module, "MAX_CONTACTS_PER_UPSERT", 2)
    store = MemoryTaskStateStore()

    def attempt(dry_run: bool | str) -> dict[str, Any]:
        operator = SendGridUpsertContactsOperator(task_id="t", contacts=people(3), dry_run=dry_run)
        return run(wire(operator), store)

    report = attempt("True")  # as a template renders it
    assert report["dry_run"] is True and report["batches"] == 2
    assert store.values == {}
    result = attempt("false")
    assert "dry_run" not in result
    assert (result["batches"], result["created_count"]) == (2, 3)
    upserts = sendgrid_emulator.admin.requests(method="PUT", path_prefix=CONTACTS)
    assert [r["path"] for r in upserts] == [CONTACTS, CONTACTS]


def test_upsert_dry_run_of_an_empty_source(sendgrid_emulator: EmulatorHandle, wire: Any) -> None:
    report = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=[], dry_run=True)))
    assert (report["dry_run"], report["rows_read"], report["method"], report["would_send"]) == (
        True,
        0,
        "none",
        [],
    )


# ----------------------------------------------------------------------------------- segments


def test_create_dry_run_reports_the_segment_it_would_create(sendgrid_emulator: EmulatorHandle) -> None:
    run_ = TaskRun()
    report = create(sendgrid_emulator, name="dry-de", dry_run=True).execute(run_.context())

    assert_reads_only(sendgrid_emulator)
    assert report == {
        "dry_run": True,
        "name": "dry-de",
        "query_dsl": QUERY_DE,
        "parent_list_ids": [],
        "action": "create",
        "segment_id": None,
        "changes": {"name": {"from": None, "to": "dry-de"}, "query_dsl": {"from": None, "to": QUERY_DE}},
        "query_validation": QUERY_NOT_VALIDATED,
        "would_send": [f"POST {SEGMENTS} (create 'dry-de')"],
    }
    assert segments_left() == []
    assert run_.last_ti is not None and run_.last_ti.pushed == {}  # no segment id to link to
    # the same task instance's real run creates it
    assert run_.store is not None and run_.store.values == {}
    created = create(sendgrid_emulator, name="dry-de").execute(run_.context())
    assert segments_left() == [created["id"]]


def test_create_dry_run_of_an_invalid_query_says_it_is_not_validated(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    query = "SELECT contact_id, updated_at FROM contact_data WHERE no_such_column = 1"
    report = create(sendgrid_emulator, name="broken", query=query, dry_run=True).execute(TaskRun().context())
    assert report["action"] == "create"
    assert report["query_validation"].startswith("not checked: SendGrid validates a query only when")
    assert_reads_only(sendgrid_emulator)


def test_create_dry_run_reuses_a_segment_defined_as_the_dag_says(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator, name="dry-de")
    since = mark(sendgrid_emulator)
    run_ = TaskRun()
    report = create(sendgrid_emulator, name="dry-de", dry_run=True).execute(run_.context())
    assert_reads_only(sendgrid_emulator, since)
    assert (report["action"], report["segment_id"], report["changes"], report["would_send"]) == (
        "reuse",
        segment_id,
        {},
        [],
    )
    assert report["query_validation"] == "VALID"
    assert run_.last_ti is not None
    assert ids_and_links(run_.last_ti.pushed) == ({"segment_id": segment_id}, {"segment_id": segment_id})


def test_create_dry_run_reports_the_query_update_if_exists_would_make(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = new_segment(sendgrid_emulator, name="dry-de")
    since = mark(sendgrid_emulator)
    operator = create(sendgrid_emulator, name="dry-de", query=QUERY_FR, if_exists="update", dry_run=True)
    report = operator.execute(TaskRun().context())
    assert_reads_only(sendgrid_emulator, since)
    assert report["action"] == "update" and report["segment_id"] == segment_id
    assert report["changes"] == {"query_dsl": {"from": QUERY_DE, "to": QUERY_FR}}
    assert report["would_send"] == [f"PATCH {SEGMENTS}/{segment_id} (its query_dsl)"]
    assert report["query_validation"] == QUERY_NOT_VALIDATED
    assert SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)["query_dsl"] == QUERY_DE


def test_create_dry_run_fails_where_if_exists_refuses_the_segment(sendgrid_emulator: EmulatorHandle) -> None:
    new_segment(sendgrid_emulator, name="dry-de")
    since = mark(sendgrid_emulator)
    with pytest.raises(AirflowFailException, match="exists but is not the one the DAG defines"):
        create(sendgrid_emulator, name="dry-de", query=QUERY_FR, dry_run=True).execute(TaskRun().context())
    with pytest.raises(AirflowFailException, match="if_exists='fail'"):
        create(sendgrid_emulator, name="dry-de", if_exists="fail", dry_run=True).execute(TaskRun().context())
    assert_reads_only(sendgrid_emulator, since)


def test_update_dry_run_diffs_field_by_field(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator, name="dry-de")
    since = mark(sendgrid_emulator)
    operator = SendGridUpdateSegmentOperator(
        task_id="u", segment_id=segment_id, name="dry-fr", query_dsl=QUERY_FR, dry_run=True
    )
    run_ = TaskRun()
    report = wired(operator, sendgrid_emulator).execute(run_.context())

    assert_reads_only(sendgrid_emulator, since)
    assert report["action"] == "update"
    assert report["changes"] == {
        "name": {"from": "dry-de", "to": "dry-fr"},
        "query_dsl": {"from": QUERY_DE, "to": QUERY_FR},
    }
    assert report["segment"] == {"name": "dry-de", "query_dsl": QUERY_DE, "parent_list_ids": []}
    assert report["query_validation"] == QUERY_NOT_VALIDATED
    assert report["would_send"] == [f"PATCH {SEGMENTS}/{segment_id} (set name, query_dsl)"]
    assert run_.last_ti is not None
    assert ids_and_links(run_.last_ti.pushed) == ({"segment_id": segment_id}, {"segment_id": segment_id})
    segment = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)
    assert (segment["name"], segment["query_dsl"]) == ("dry-de", QUERY_DE)


def test_update_dry_run_with_nothing_to_change(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator, name="dry-de")
    spaced = QUERY_DE.replace(" WHERE ", "\n  WHERE ")
    operator = SendGridUpdateSegmentOperator(
        task_id="u", segment_id=segment_id, query_dsl=spaced, dry_run=True
    )
    report = wired(operator, sendgrid_emulator).execute(TaskRun().context())
    assert (report["action"], report["changes"]) == ("none", {})
    assert report["query_validation"] != QUERY_NOT_VALIDATED


def test_update_dry_run_fails_as_the_real_run_would(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator, name="dry-de")
    new_segment(sendgrid_emulator, name="taken")
    since = mark(sendgrid_emulator)

    def update(segment: str, **changes: Any) -> Any:
        operator = SendGridUpdateSegmentOperator(task_id="u", segment_id=segment, dry_run=True, **changes)
        return wired(operator, sendgrid_emulator).execute(TaskRun().context())

    with pytest.raises(
        AirflowFailException, match=r"SendGrid would refuse renaming .*segment names are unique"
    ):
        update(segment_id, name="taken")
    run_ = TaskRun()
    operator = SendGridUpdateSegmentOperator(task_id="u", segment_id=MISSING, name="x", dry_run=True)
    with pytest.raises(SendGridNotFoundError):
        wired(operator, sendgrid_emulator).execute(run_.context())
    assert run_.last_ti is not None and run_.last_ti.pushed == {}  # no link to a segment that is not there
    assert_reads_only(sendgrid_emulator, since)


def test_delete_dry_run_names_the_segment_it_would_delete(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator, name="dry-de")
    since = mark(sendgrid_emulator)
    run_ = TaskRun()
    report = deleter(sendgrid_emulator, segment_id, dry_run=True).execute(run_.context())

    assert_reads_only(sendgrid_emulator, since)
    assert report["would_delete"] is True and report["deleted"] is False
    assert report["segment"]["name"] == "dry-de"
    assert report["would_send"] == [f"DELETE {SEGMENTS}/{segment_id}"]
    assert segments_left() == [segment_id]
    # the real run of the same task instance still deletes it (a sent DELETE is not assumed)
    assert run_.store is not None and run_.store.values == {}
    assert deleter(sendgrid_emulator, segment_id).execute(run_.context()) == {
        "segment_id": segment_id,
        "deleted": True,
    }


def test_delete_dry_run_of_a_missing_segment(sendgrid_emulator: EmulatorHandle) -> None:
    report = deleter(sendgrid_emulator, MISSING, missing_ok=True, dry_run=True).execute(TaskRun().context())
    assert (report["would_delete"], report["segment"], report["would_send"]) == (False, None, [])
    with pytest.raises(SendGridNotFoundError, match="set missing_ok=True"):
        deleter(sendgrid_emulator, MISSING, dry_run=True).execute(TaskRun().context())
    assert_reads_only(sendgrid_emulator)


def test_delete_dry_run_checks_scheduled_single_sends(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator, name="dry-de")
    scheduled = single_send([segment_id], "Digest")
    since = mark(sendgrid_emulator)
    with pytest.raises(AirflowFailException, match="Not deleting segment"):
        deleter(sendgrid_emulator, segment_id, dry_run=True).execute(TaskRun().context())
    report = deleter(sendgrid_emulator, segment_id, force=True, dry_run=True).execute(TaskRun().context())
    assert [send["id"] for send in report["scheduled_single_sends"]] == [scheduled]
    assert_reads_only(sendgrid_emulator, since)


# -------------------------------------------------------------------------------- Single Send


def test_single_send_dry_run_reports_the_gate_draft_and_schedule(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=5)
    since = mark(sendgrid_emulator)
    ti = RecordingTaskInstance()
    report = make_operator(segment_id, min_contacts=5, dry_run=True).execute({"ti": ti})  # type: ignore[arg-type]

    assert_reads_only(sendgrid_emulator, since)
    assert report["dry_run"] is True and report["single_send_id"] is None
    assert report["audience_gate"]["passed"] is True
    assert ids_and_links(ti.xcom) == ({"audience_gate": report["audience_gate"]}, {})  # no link to a draft
    assert report["send_to"] == {"segment_ids": [segment_id], "list_ids": [], "all": False}
    assert report["would_send"] == [
        "POST /v3/marketing/singlesends (create the draft 'Weekly digest 2026-11-26')",
        "PUT /v3/marketing/singlesends/<new id>/schedule (send_at now)",
    ]
    assert SendGridMarketingHook().list_single_sends() == [] and sendgrid_emulator.admin.sends() == []


def test_single_send_dry_run_of_an_existing_draft_and_of_a_scheduled_send(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    # An earlier try's draft, with the task's own content (another content is refused: trust fixes).
    draft_id = str(SendGridMarketingHook().run(make_operator(segment_id).build_request().create)["id"])
    since = mark(sendgrid_emulator)
    ti = RecordingTaskInstance()
    report = make_operator(segment_id, dry_run=True).execute({"ti": ti})  # type: ignore[arg-type]
    assert (report["single_send_id"], report["status"]) == (draft_id, "draft")
    assert report["would_send"] == [f"PUT /v3/marketing/singlesends/{draft_id}/schedule (send_at now)"]
    assert ids_and_links(ti.xcom) == ({"single_send_id": draft_id}, {})  # a draft gets no link
    assert_reads_only(sendgrid_emulator, since)

    SendGridMarketingHook().schedule_single_send(draft_id, send_at="2100-01-01T09:00:00Z")
    since = mark(sendgrid_emulator)
    report = make_operator(segment_id, dry_run=True).execute({"ti": RecordingTaskInstance()})  # type: ignore[arg-type]
    assert (report["status"], report["would_send"]) == ("scheduled", [])
    assert_reads_only(sendgrid_emulator, since)


def test_single_send_dry_run_fails_when_the_gate_would(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=2)
    since = mark(sendgrid_emulator)
    operator = make_operator(segment_id, min_contacts=5, dry_run=True)
    with pytest.raises(AirflowFailException, match="Not sending"):
        operator.execute({"ti": RecordingTaskInstance()})  # type: ignore[arg-type]
    assert_reads_only(sendgrid_emulator, since)


# ------------------------------------------------------------------------------ the guard, the flag


def test_a_dry_run_hook_refuses_any_write(sendgrid_emulator: EmulatorHandle) -> None:
    hook = read_only(SendGridMarketingHook())
    assert hook.get_field_definitions()["custom_fields"] == []
    with pytest.raises(AirflowFailException, match=f"Dry run: refusing to send POST {FIELDS}"):
        hook.create_field_definition("plan", "Text")
    with pytest.raises(AirflowFailException, match=f"refusing to send PUT {CONTACTS}"):
        hook.upsert_contacts(b'{"contacts":[{"email":"a@example.com"}]}')
    assert_reads_only(sendgrid_emulator)


@pytest.mark.parametrize("value", ["yes", "None", ""])
def test_a_dry_run_flag_that_renders_to_neither_true_nor_false_fails_before_any_request(
    sendgrid_emulator: EmulatorHandle, value: str
) -> None:
    operator = SendGridDeleteSegmentOperator(task_id="d", segment_id=new_id(), dry_run=value)
    with pytest.raises(SendGridInputError, match="dry_run"):
        operator.execute(TaskRun().context())
    assert sendgrid_emulator.admin.requests() == []


def new_id() -> str:
    return "00000000-0000-4000-8000-000000000001"


def test_dry_run_is_templated_and_checked_when_the_dag_is_parsed() -> None:
    for operator_class in (
        SendGridUpsertContactsOperator,
        SendGridCreateSegmentOperator,
        SendGridUpdateSegmentOperator,
        SendGridDeleteSegmentOperator,
        SendGridSingleSendOperator,
    ):
        assert "dry_run" in operator_class.template_fields
    with pytest.raises(SendGridInputError, match="dry_run"):
        SendGridDeleteSegmentOperator(task_id="d", segment_id=new_id(), dry_run=1)  # type: ignore[arg-type]
    operator = SendGridDeleteSegmentOperator(task_id="d", segment_id=new_id(), dry_run="{{ params.dry }}")
    operator.render_template_fields({"params": {"dry": True}})  # type: ignore[arg-type]
    assert operator.dry_run == "True"
