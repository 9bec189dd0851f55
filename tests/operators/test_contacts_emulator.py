"""Contacts operators against the emulator over loopback HTTP (manual clock).

``execute`` is called directly with the context the operators read (``task_state_store``); the
store is the in-memory stand-in of test_segments.py. Waits advance the emulator's clock.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridServerError, SendGridTransportError
from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.operators import contacts_upsert as contacts_module
from airflow_provider_sgseg.operators.contacts import (
    EXPORT_STATE_KEY,
    UPSERT_STATE_KEY,
    SendGridExportContactsOperator,
    SendGridUpsertContactsOperator,
)
from airflow_provider_sgseg.rules import summaries
from airflow_provider_sgseg.rules.contacts import SendGridRowError
from airflow_provider_sgseg.triggers.contacts import SendGridContactsJobsTrigger
from airflow_provider_sgseg.version_compat import AirflowFailException, TaskDeferred
from tests.helpers import last_info_line, task_log_lines
from tests.operators.test_segments_emulator import MemoryTaskStateStore, TaskRun, without_store
from tests.operators.test_single_sends_emulator import RecordingTaskInstance

CONTACTS = "/v3/marketing/contacts"
IMPORTS = "/v3/marketing/contacts/imports"
EXPORTS = "/v3/marketing/contacts/exports"
FIELDS = "/v3/marketing/field_definitions"
SEGMENTS = "/v3/marketing/segments/2.0"
MISSING_LIST = "00000000-0000-4000-8000-000000000000"


def people(count: int, start: int = 0, country: str = "NL") -> list[dict[str, Any]]:
    return [
        {"email": f"person{n}@example.com", "first_name": f"P{n}", "country": country, "plan": "pro"}
        for n in range(start, start + count)
    ]


@pytest.fixture
def wire(sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], Any]:
    """Give operators and the trigger the emulator's clock: a wait advances it."""
    admin = sendgrid_emulator.admin

    async def asleep(self: Any, seconds: float) -> None:
        admin.advance_clock(seconds)

    for cls in (SendGridUpsertContactsOperator, SendGridExportContactsOperator):
        monkeypatch.setattr(cls, "now", lambda self: admin.now())
        monkeypatch.setattr(cls, "sleep", lambda self, seconds: admin.advance_clock(seconds))
    monkeypatch.setattr(SendGridContactsJobsTrigger, "now", lambda self: admin.now())
    monkeypatch.setattr(SendGridContactsJobsTrigger, "sleep", asleep)
    return lambda operator: operator


@pytest.fixture
def plan_field(sendgrid_emulator: EmulatorHandle) -> str:
    """A Text custom field named ``plan``; returns its id."""
    return str(SendGridMarketingHook().create_field_definition("plan", "Text")["id"])


def run(operator: Any, store: MemoryTaskStateStore | None = None) -> dict[str, Any]:
    return dict(
        operator.execute({"task_state_store": store if store is not None else MemoryTaskStateStore()})
    )


def stored(email: str) -> dict[str, Any]:
    found = SendGridMarketingHook()._request(
        contacts_module_call("POST", f"{CONTACTS}/search/emails", {"emails": [email]})
    )
    return dict(found["result"][email]["contact"])


def contacts_module_call(method: str, path: str, body: Any) -> Any:
    from airflow_provider_sgseg.rules.requests import Call, Retry

    return Call(method, path, json=body, retry=Retry.NEVER)


def writes(emulator: EmulatorHandle) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"])
        for r in emulator.admin.requests()
        if r["method"] in ("PUT", "POST") and not r["path"].startswith("/__") and r["path"] != FIELDS
    ]


# ------------------------------------------------------------------------------ upsert: sources


def test_list_source_upserts_custom_fields_by_id(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str
) -> None:
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(3))))
    assert result["rows_read"] == 3 and result["method"] == "batches" and result["batches"] == 1
    assert result["created_count"] == 3 and result["errored_count"] == 0
    (job_id,) = result["job_ids"]
    assert result["jobs"][job_id]["status"] == "completed"
    # the emulator, like SendGrid, takes custom fields by id only: a name would have errored
    assert stored("person1@example.com")["custom_fields"] == {"plan": "pro"}


def test_sql_source_through_a_common_sql_connection_with_list_ids(
    sendgrid_emulator: EmulatorHandle,
    wire: Any,
    plan_field: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = tmp_path / "warehouse.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE customers (id INTEGER, email TEXT, first_name TEXT, plan TEXT)")
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)",
            [(n, f"c{n}@example.com", f"C{n}", "free") for n in range(5)],
        )
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    list_id = SendGridMarketingHook()._request(
        contacts_module_call("POST", "/v3/marketing/lists", {"name": "all"})
    )["id"]
    result = run(
        wire(
            SendGridUpsertContactsOperator(
                task_id="t",
                sql="SELECT email, first_name, plan FROM customers WHERE id >= :low ORDER BY id",
                parameters={"low": 1},
                sql_conn_id="warehouse",
                list_ids=[list_id],
            )
        )
    )
    assert result["rows_read"] == 4 and result["created_count"] == 4
    assert list_id in stored("c4@example.com")["list_ids"]


@pytest.mark.parametrize("suffix", ["csv", "ndjson"])
def test_file_source_at_an_object_storage_path(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"contacts.{suffix}"
    rows = people(4)
    if suffix == "csv":
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    source = ObjectStoragePath(f"file://{path}")
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", source_path=source)))
    assert result["rows_read"] == 4 and result["created_count"] == 4
    assert stored("person3@example.com")["first_name"] == "P3"


def test_large_source_goes_through_the_csv_import(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str
) -> None:
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(5), import_threshold=2)))
    assert result["method"] == "import" and result["created_count"] == 5
    assert [m for m, p in writes(sendgrid_emulator) if p == IMPORTS] == ["PUT"]
    assert [r for r in sendgrid_emulator.admin.requests(method="PUT") if r["path"] == CONTACTS] == []
    assert stored("person4@example.com")["custom_fields"] == {"plan": "pro"}


def test_several_batches_and_merged_duplicates(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contacts_module, "MAX_CONTACTS_PER_UPSERT", 2)
    rows = [*people(3), {"email": "PERSON0@example.com", "last_name": "Zero"}]
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows)))
    assert result["batches"] == 2 and len(result["job_ids"]) == 2
    assert result["merged_rows"] == 0  # row 4 lands in batch 2, apart from row 1
    assert stored("person0@example.com")["last_name"] == "Zero"
    merged = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=[rows[0], rows[3]])))
    assert merged["merged_rows"] == 1 and merged["batches"] == 1


# ------------------------------------------------------------------------- upsert: bad input


def test_unknown_custom_field_fails_before_any_write(sendgrid_emulator: EmulatorHandle, wire: Any) -> None:
    with pytest.raises(SendGridInputError, match="'plan'"):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(2))))
    assert writes(sendgrid_emulator) == []


def test_a_custom_field_types_key_naming_no_column_gets_the_nearest_field_to_create(
    sendgrid_emulator: EmulatorHandle, wire: Any
) -> None:
    rows = [{"email": "a@example.com", "score": "12"}]
    operator = SendGridUpsertContactsOperator(
        task_id="t", contacts=rows, create_missing_fields=True, custom_field_types={"scroe": "Number"}
    )
    with pytest.raises(SendGridInputError, match="declare a type") as caught:
        run(wire(operator))
    assert "unknown key 'scroe': did you mean 'score'?" in str(caught.value)
    assert writes(sendgrid_emulator) == []


def test_a_misspelt_field_type_gets_the_nearest_type_when_the_dag_is_parsed() -> None:
    with pytest.raises(SendGridInputError, match="did you mean 'Number'"):
        SendGridUpsertContactsOperator(
            task_id="t", contacts=[], create_missing_fields=True, custom_field_types={"score": "number"}
        )


def test_an_unknown_column_gets_the_nearest_field_before_any_write(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str
) -> None:
    rows = [{"emial": "a@example.com", "plna": "pro"}]
    with pytest.raises(SendGridInputError, match="name no field SendGrid takes") as caught:
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows)))
    assert "unknown column 'emial': did you mean 'email'?" in str(caught.value)
    assert "unknown column 'plna': did you mean 'plan'?" in str(caught.value)  # the account's field
    assert writes(sendgrid_emulator) == []


def test_missing_field_created_with_its_declared_type(sendgrid_emulator: EmulatorHandle, wire: Any) -> None:
    rows = [{"email": "a@example.com", "score": "12"}]
    with pytest.raises(SendGridInputError, match="declare a type"):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows, create_missing_fields=True)))
    operator = SendGridUpsertContactsOperator(
        task_id="t", contacts=rows, create_missing_fields=True, custom_field_types={"score": "Number"}
    )
    assert run(wire(operator))["created_count"] == 1
    fields = SendGridMarketingHook().get_field_definitions()["custom_fields"]
    assert [(f["name"], f["field_type"]) for f in fields] == [("score", "Number")]
    assert stored("a@example.com")["custom_fields"] == {"score": 12}


def test_bad_row_fails_before_any_write_naming_row_column_value_rule(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str
) -> None:
    rows = [*people(2), {"email": "not-an-email", "plan": "x"}]
    with pytest.raises(
        SendGridRowError, match=r"row 3: column 'email' value 'not-an-email': not a valid email"
    ):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows)))
    assert writes(sendgrid_emulator) == []


def test_tolerated_bad_rows_are_refused_counted_and_reported(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str
) -> None:
    rows = [*people(3), {"first_name": "nobody"}]
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows, max_error_ratio=0.3)))
    assert result["rows_read"] == 4 and result["rows_sent"] == 3 and result["refused_rows"] == 1
    assert result["refused"] == [
        {"row": 4, "column": "email,phone_number_id,external_id,anonymous_id", "value": "None",
         "rule": "no identifier (email, phone_number_id, external_id or anonymous_id)"}
    ]  # fmt: skip
    assert result["created_count"] == 3
    with pytest.raises(AirflowFailException, match="above max_error_ratio"):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows, max_error_ratio=0.2)))


def test_unknown_list_id_fails_before_any_write(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str
) -> None:
    with pytest.raises(SendGridInputError, match=f"{MISSING_LIST}.*no such list"):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(1), list_ids=[MISSING_LIST])))
    assert writes(sendgrid_emulator) == []


def test_unreadable_source(sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path) -> None:
    with pytest.raises(SendGridInputError, match="cannot be opened"):
        run(wire(SendGridUpsertContactsOperator(task_id="t", source_path=str(tmp_path / "nope.csv"))))
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"email": "a@example.com"}\n[1, 2]\n')
    with pytest.raises(SendGridRowError, match=r"row 2.*JSON object"):
        run(wire(SendGridUpsertContactsOperator(task_id="t", source_path=str(bad))))
    assert writes(sendgrid_emulator) == []


def test_empty_source_succeeds_with_zero_rows(sendgrid_emulator: EmulatorHandle, wire: Any) -> None:
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=[])))
    assert result["rows_read"] == 0 and result["method"] == "none" and result["job_ids"] == []
    assert writes(sendgrid_emulator) == []


def test_one_source_only() -> None:
    with pytest.raises(SendGridInputError, match="exactly one"):
        SendGridUpsertContactsOperator(task_id="t", contacts=[], sql="SELECT 1", sql_conn_id="x")


# ---------------------------------------------------------------------------- upsert: retries


def test_retry_sends_only_the_batches_never_accepted(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contacts_module, "MAX_CONTACTS_PER_UPSERT", 2)
    store = MemoryTaskStateStore()
    admin = sendgrid_emulator.admin
    first = SendGridUpsertContactsOperator(task_id="t", contacts=people(5))
    calls = {"n": 0}
    original = SendGridMarketingHook.upsert_contacts

    def second_put_fails(self: SendGridMarketingHook, body: bytes) -> str:  # batch 0 passes, batch 1: 503
        calls["n"] += 1
        if calls["n"] == 2:
            admin.add_fault("status", method="PUT", path=f"^{CONTACTS}$", status=503, times=1)
        return original(self, body)

    monkeypatch.setattr(SendGridMarketingHook, "upsert_contacts", second_put_fails)
    with pytest.raises(SendGridServerError):
        run(wire(first), store)
    assert list(store.values[UPSERT_STATE_KEY]["parts"]) == ["0"]
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(5))), store)
    puts = [r for r in admin.requests(method="PUT") if r["path"] == CONTACTS]
    assert len(puts) == 4  # batch 0, batch 1 (503), then batches 1 and 2 on the retry
    assert result["batches"] == 3 and result["created_count"] == 5
    assert result["reused_batches"] == 1  # batch 0: accepted by the first try, not sent again


def test_a_lost_answer_resends_only_that_batch(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contacts_module, "MAX_CONTACTS_PER_UPSERT", 2)
    store = MemoryTaskStateStore()
    admin = sendgrid_emulator.admin
    admin.add_fault("drop", method="PUT", path=f"^{CONTACTS}$", when="after", times=1)
    with pytest.raises(SendGridTransportError):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(4))), store)
    assert UPSERT_STATE_KEY not in store.values  # the only batch sent has no recorded answer
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(4))), store)
    puts = [r for r in admin.requests(method="PUT") if r["path"] == CONTACTS]
    assert len(puts) == 3  # batch 0 twice (its answer was lost), batch 1 once
    assert result["created_count"] + result["updated_count"] == 4


def test_a_retry_after_everything_was_accepted_only_waits(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str
) -> None:
    store = MemoryTaskStateStore()
    first = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(2))), store)
    again = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(2))), store)
    assert again["job_ids"] == first["job_ids"]
    assert (first["reused_batches"], again["reused_batches"]) == (0, 1)
    assert len([r for r in sendgrid_emulator.admin.requests(method="PUT") if r["path"] == CONTACTS]) == 1


# ---------------------------------------------------------------------------- deferrable mode


async def test_deferred_upsert_waits_in_one_trigger_for_all_jobs(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contacts_module, "MAX_CONTACTS_PER_UPSERT", 2)
    operator = wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(5), deferrable=True))
    context = {"task_state_store": MemoryTaskStateStore()}
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SendGridContactsJobsTrigger) and len(trigger.job_ids) == 3
    assert "SG." not in json.dumps(trigger.serialize()[1])  # no API key in trigger args
    events = [event async for event in trigger.run()]
    assert len(events) == 1 and events[0].payload["status"] == "success"
    assert deferred.value.kwargs is None  # what the task needs comes back in the event
    result = getattr(operator, deferred.value.method_name)(context, event=events[0].payload)
    assert result["created_count"] == 5 and result["batches"] == 3


# ----------------------------------------------------------------------------------- export


@pytest.fixture
def populated_segment(sendgrid_emulator: EmulatorHandle) -> str:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([*people(7), *people(3, start=100, country="US")])
    hook = SendGridMarketingHook()
    segment = hook.create_segment(
        "Dutch", "SELECT contact_id, updated_at FROM contact_data WHERE country = 'NL'"
    )
    admin.advance_clock(3600)
    assert hook.get_segment(segment["id"])["contacts_count"] == 7
    return str(segment["id"])


def test_export_downloads_the_exact_members(
    sendgrid_emulator: EmulatorHandle, wire: Any, populated_segment: str, tmp_path: Path
) -> None:
    operator = SendGridExportContactsOperator(
        task_id="e", segment_ids=[populated_segment], destination=str(tmp_path / "out")
    )
    result = run(wire(operator))
    assert result["contact_count"] == 7 and result["row_count"] == 7
    (path,) = result["paths"]
    with open(path, newline="") as file:
        emails = sorted(row["EMAIL"] for row in csv.DictReader(file))  # SendGrid's export header
    assert emails == sorted(f"person{n}@example.com" for n in range(7))


def test_export_retry_reuses_the_earlier_export(
    sendgrid_emulator: EmulatorHandle, wire: Any, populated_segment: str, tmp_path: Path
) -> None:
    operator = SendGridExportContactsOperator(
        task_id="e", segment_ids=[populated_segment], destination=str(tmp_path)
    )
    export_id = SendGridMarketingHook().start_contacts_export(segment_ids=[populated_segment])
    store = MemoryTaskStateStore()
    store.set(EXPORT_STATE_KEY, {"export_id": export_id, "request": [[populated_segment], [], "csv"]})
    result = run(wire(operator), store)
    assert result["export_id"] == export_id  # a retry reuses the earlier export
    assert len(sendgrid_emulator.admin.requests(method="POST", path_prefix=EXPORTS)) == 1


def test_export_retry_after_expiry_starts_a_new_export(
    sendgrid_emulator: EmulatorHandle, wire: Any, populated_segment: str, tmp_path: Path
) -> None:
    store = MemoryTaskStateStore()
    make = lambda: SendGridExportContactsOperator(  # noqa: E731
        task_id="e", segment_ids=[populated_segment], destination=str(tmp_path)
    )
    first = run(wire(make()), store)
    sendgrid_emulator.admin.advance_clock(73 * 3600)  # past the export's expiry (72 h)
    second = run(wire(make()), store)
    assert second["export_id"] != first["export_id"] and second["row_count"] == 7
    assert len(sendgrid_emulator.admin.requests(method="POST", path_prefix=EXPORTS)) == 2


# Airflow < 3.3: no task state store; a retry adopts what SendGrid created since the DAG run started.


def exporter(segment_id: str, destination: Path) -> SendGridExportContactsOperator:
    return SendGridExportContactsOperator(task_id="e", segment_ids=[segment_id], destination=str(destination))


def exports_listed(emulator: EmulatorHandle) -> int:
    return len([r for r in emulator.admin.requests(method="GET") if r["path"] == EXPORTS])


@pytest.mark.parametrize("crash", ["answer lost", "worker died before the download"])
def test_export_retry_without_a_store_adopts_the_earlier_tries_export(
    sendgrid_emulator: EmulatorHandle,
    wire: Any,
    populated_segment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    crash: str,
) -> None:
    admin = sendgrid_emulator.admin
    task = without_store(sendgrid_emulator)
    admin.advance_clock(60)  # try 1 starts a minute into the DAG run
    if crash == "answer lost":
        admin.add_fault("drop", method="POST", path=f"^{EXPORTS}$", when="after")
        with pytest.raises(SendGridTransportError):
            wire(exporter(populated_segment, tmp_path)).execute(task.context())
    else:

        def die(self: Any, export_id: str, urls: list[str]) -> None:
            raise RuntimeError("the worker died")

        with monkeypatch.context() as patch:
            patch.setattr(SendGridExportContactsOperator, "_download", die)
            with pytest.raises(RuntimeError, match="the worker died"):
                wire(exporter(populated_segment, tmp_path)).execute(task.context())
    admin.advance_clock(300)
    result = wire(exporter(populated_segment, tmp_path)).execute(task.context())  # try 2
    (export,) = SendGridMarketingHook().list_contact_exports()
    assert result["export_id"] == export["id"] and result["row_count"] == 7
    assert len(admin.requests(method="POST", path_prefix=EXPORTS)) == 1


def test_export_first_try_without_a_store_never_adopts(
    sendgrid_emulator: EmulatorHandle, wire: Any, populated_segment: str, tmp_path: Path
) -> None:
    task = without_store(sendgrid_emulator)
    sendgrid_emulator.admin.advance_clock(60)
    theirs = SendGridMarketingHook().start_contacts_export(segment_ids=[populated_segment])
    result = wire(exporter(populated_segment, tmp_path)).execute(task.context())  # try 1
    assert result["export_id"] != theirs and result["row_count"] == 7
    assert exports_listed(sendgrid_emulator) == 0  # try 1 does not even look
    assert len(SendGridMarketingHook().list_contact_exports()) == 2


@pytest.mark.parametrize("age", ["started before the DAG run", "expired"])
def test_export_retry_without_a_store_does_not_adopt_an_older_or_expired_export(
    sendgrid_emulator: EmulatorHandle, wire: Any, populated_segment: str, tmp_path: Path, age: str
) -> None:
    admin = sendgrid_emulator.admin
    task = TaskRun(store=None, tries=1)  # the next context is try 2: a retry
    if age == "started before the DAG run":  # e.g. the previous DAG run's: older members
        earlier = SendGridMarketingHook().start_contacts_export(segment_ids=[populated_segment])
        admin.advance_clock(1)
        task.dag_run.start_date = admin.now()
    else:
        task.dag_run.start_date = admin.now()
        earlier = SendGridMarketingHook().start_contacts_export(segment_ids=[populated_segment])
        admin.advance_clock(3600)
        assert SendGridMarketingHook().get_export_status(earlier)["status"] == "ready"
        admin.advance_clock(72 * 3600)  # past the export's expiry (72 h after it was ready)
    result = wire(exporter(populated_segment, tmp_path)).execute(task.context())
    assert result["export_id"] != earlier and result["row_count"] == 7
    assert exports_listed(sendgrid_emulator) == 1  # the retry did look
    assert len(admin.requests(method="POST", path_prefix=EXPORTS)) == 2


def test_export_retry_without_a_store_skips_a_sibling_tasks_json_export(
    sendgrid_emulator: EmulatorHandle, wire: Any, populated_segment: str, tmp_path: Path
) -> None:
    admin = sendgrid_emulator.admin
    task = TaskRun(store=None, tries=1)  # the next context is try 2: a retry
    task.dag_run.start_date = admin.now()
    theirs = SendGridMarketingHook().start_contacts_export(segment_ids=[populated_segment], file_type="json")
    admin.advance_clock(3600)
    assert ".json" in SendGridMarketingHook().get_export_status(theirs)["urls"][0]  # what the list shows
    result = wire(exporter(populated_segment, tmp_path)).execute(task.context())
    assert result["export_id"] != theirs and result["file_type"] == "csv" and result["row_count"] == 7
    assert exports_listed(sendgrid_emulator) == 1  # the retry did look
    with open(result["paths"][0], newline="") as file:
        assert "EMAIL" in next(csv.reader(file))  # a CSV header, not JSON lines


@pytest.mark.parametrize(("theirs", "ours"), [("json", "csv"), ("csv", "json")])
def test_an_adopted_export_of_another_file_type_fails_without_retries(
    sendgrid_emulator: EmulatorHandle,
    wire: Any,
    populated_segment: str,
    tmp_path: Path,
    theirs: str,
    ours: str,
) -> None:
    # The sibling's export is still pending when the retry lists exports: no URL tells its type.
    task = TaskRun(store=None, tries=1)
    task.dag_run.start_date = sendgrid_emulator.admin.now()
    sibling = SendGridMarketingHook().start_contacts_export(segment_ids=[populated_segment], file_type=theirs)
    operator = SendGridExportContactsOperator(
        task_id="e", segment_ids=[populated_segment], destination=str(tmp_path), file_type=ours
    )
    with pytest.raises(AirflowFailException) as failed:
        wire(operator).execute(task.context())
    message = str(failed.value)
    assert f"Export {sibling} holds {theirs.upper()}" in message
    assert f"asked for {ours.upper()}" in message and "before Airflow 3.3" in message
    assert "rows" not in message  # never the row-count error
    # the misnamed file is not left behind (the manifest names the files the try meant to write)
    assert [path.name for path in tmp_path.iterdir()] == [".sgseg-export-manifest"]
    assert len(sendgrid_emulator.admin.requests(method="POST", path_prefix=EXPORTS)) == 1


def test_export_needs_a_segment_or_list(sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path) -> None:
    with pytest.raises(SendGridInputError, match="give segment_ids, list_ids or both"):
        run(wire(SendGridExportContactsOperator(task_id="e", destination=str(tmp_path))))
    with pytest.raises(SendGridInputError, match="csv, json"):
        SendGridExportContactsOperator(
            task_id="e", destination=str(tmp_path), segment_ids=["x"], file_type="xml"
        )


def test_export_failure_fails_with_sendgrids_message(
    sendgrid_emulator: EmulatorHandle,
    wire: Any,
    populated_segment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = sendgrid_emulator.admin

    def delete_then_sleep(self: Any, seconds: float) -> None:  # the segment is gone when the export runs
        if SendGridMarketingHook().list_segments():
            SendGridMarketingHook().delete_segment(populated_segment)
        admin.advance_clock(seconds)

    monkeypatch.setattr(SendGridExportContactsOperator, "sleep", delete_then_sleep)
    operator = SendGridExportContactsOperator(
        task_id="e", segment_ids=[populated_segment], destination=str(tmp_path)
    )
    with pytest.raises(AirflowFailException, match=f"export .* failed: .*{populated_segment}"):
        run(operator)
    assert list(tmp_path.iterdir()) == []


def sendgrid_says(emulator: EmulatorHandle, status: str, errored: int) -> None:
    """Every import-status read answers this job outcome (SendGrid's own verdict on the rows)."""
    body = {
        "id": "job",
        "status": status,
        "job_type": "upsert",
        "results": {"requested_count": 4, "created_count": 4 - errored, "updated_count": 0,
                    "errored_count": errored, "errors_url": "https://errors.example.test/job.csv"},
    }  # fmt: skip
    emulator.admin.add_fault(
        "status", method="GET", path_prefix=f"{IMPORTS}/", status=200, body=body, times=50
    )


def test_a_failed_job_always_fails_the_task_with_its_errors_url(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str
) -> None:
    sendgrid_says(sendgrid_emulator, "failed", errored=4)
    with pytest.raises(AirflowFailException, match=r"failed.*https://errors\.example\.test/job\.csv"):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(4), max_error_ratio=1.0)))


@pytest.mark.parametrize(("ratio", "fails"), [(0.0, True), (0.25, False)])
def test_errored_rows_at_sendgrid_count_against_max_error_ratio(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str, ratio: float, fails: bool
) -> None:
    sendgrid_says(sendgrid_emulator, "errored", errored=1)
    operator = SendGridUpsertContactsOperator(task_id="t", contacts=people(4), max_error_ratio=ratio)
    if fails:
        with pytest.raises(
            AirflowFailException, match=r"1 rows errored at SendGrid.*above max_error_ratio=0\.0"
        ):
            run(wire(operator))
    else:
        result = run(wire(operator))
        assert result["errored_count"] == 1 and result["errors_urls"] == [
            "https://errors.example.test/job.csv"
        ]


def test_a_failing_query_is_a_clear_error_before_any_write(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "empty.db"
    sqlite3.connect(database).close()
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    operator = SendGridUpsertContactsOperator(
        task_id="t", sql="SELECT email FROM nowhere", sql_conn_id="warehouse"
    )
    with pytest.raises(SendGridInputError, match="the query failed: no such table: nowhere"):
        run(wire(operator))
    assert writes(sendgrid_emulator) == []


def test_fields_to_create_are_checked_with_their_declared_type_before_any_write(
    sendgrid_emulator: EmulatorHandle, wire: Any
) -> None:
    rows = [{"email": "a@example.com", "score": "12"}, {"email": "b@example.com", "score": "lots"}]
    operator = SendGridUpsertContactsOperator(
        task_id="t", contacts=rows, create_missing_fields=True, custom_field_types={"score": "Number"}
    )
    with pytest.raises(SendGridRowError, match=r"row 2: column 'score' value 'lots'.*is a Number"):
        run(wire(operator))
    assert SendGridMarketingHook().get_field_definitions()["custom_fields"] == []  # nothing created
    assert [r for r in sendgrid_emulator.admin.requests(method="POST") if r["path"] == FIELDS] == []


@pytest.mark.parametrize("render", [json.dumps, repr])
def test_contacts_rendered_to_text_by_a_template(
    sendgrid_emulator: EmulatorHandle, wire: Any, render: Callable[[Any], str]
) -> None:
    rows = [{"email": "t1@example.com"}, {"email": "t2@example.com"}]
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=render(rows))))
    assert result["rows_read"] == 2 and result["created_count"] == 2
    with pytest.raises(SendGridInputError, match="JSON or Python list"):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts="not a list")))


# ------------------------------------------------------------------ upsert: file encodings, names


@pytest.mark.parametrize("max_error_ratio", [0, 0.5])
@pytest.mark.parametrize("suffix", ["csv", "ndjson"])
def test_a_file_that_is_not_utf8_is_a_typed_error_before_any_write(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path, suffix: str, max_error_ratio: float
) -> None:
    first = b"\xff\xfe\x00bad"
    late = b'{"email": "a@example.com"}\n{"email": "\xe9@example.com"}\n'
    if suffix == "csv":
        late = b"email\na@example.com\n\xe9@example.com\n"
    late_line = late.count(b"\n")  # the bad byte is on the last line
    expected = (
        (first, "byte offset 0 (line 1)"),
        (late, f"byte offset {late.index(0xE9)} (line {late_line})"),
    )
    for content, where in expected:
        path = tmp_path / f"bin.{suffix}"
        path.write_bytes(content)
        operator = SendGridUpsertContactsOperator(
            task_id="t", source_path=str(path), deferrable=False, max_error_ratio=max_error_ratio
        )
        with pytest.raises(SendGridInputError, match="not UTF-8") as raised:
            run(wire(operator))
        assert str(path) in str(raised.value) and where in str(raised.value)
    assert writes(sendgrid_emulator) == []


@pytest.mark.parametrize("suffix", ["csv", "ndjson"])
def test_a_utf8_byte_order_mark_is_accepted(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"excel.{suffix}"
    if suffix == "csv":
        path.write_bytes("\ufeffemail,first_name\r\nbom@example.com,Bom\r\n".encode())
    else:
        path.write_bytes('\ufeff{"email": "bom@example.com", "first_name": "Bom"}\n'.encode())
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", source_path=str(path))))
    assert result["created_count"] == 1
    assert stored("bom@example.com")["first_name"] == "Bom"


def test_reserved_field_names_ignore_case(sendgrid_emulator: EmulatorHandle, wire: Any) -> None:
    rows = [{"Email": "case@example.com", "FIRST_NAME": "Case"}]
    assert run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows)))["created_count"] == 1
    assert stored("case@example.com")["first_name"] == "Case"
    twice = [{"email": "a@example.com", "EMAIL": "b@example.com"}]
    with pytest.raises(SendGridInputError, match=r"\['email', 'EMAIL'\].*same field|map to field 'email'"):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=twice)))


def test_an_exported_csv_upserts_back_as_is(
    sendgrid_emulator: EmulatorHandle, wire: Any, populated_segment: str, tmp_path: Path
) -> None:
    export = SendGridExportContactsOperator(
        task_id="e", segment_ids=[populated_segment], destination=str(tmp_path / "out")
    )
    (path,) = run(wire(export))["paths"]
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    rows[0]["FIRST_NAME"] = "Changed"
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", source_path=str(path))))
    assert result["rows_read"] == 7 and result["updated_count"] == 7 and result["created_count"] == 0
    assert stored(rows[0]["EMAIL"])["first_name"] == "Changed"


def test_counts_tell_rows_from_contacts(sendgrid_emulator: EmulatorHandle, wire: Any) -> None:
    rows = [{"email": "same@example.com", "first_name": str(n)} for n in range(3)]
    rows.append({"email": "not-an-email"})
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows, max_error_ratio=0.5)))
    assert result["rows_read"] == 4 and result["refused_rows"] == 1 and result["rows_sent"] == 3
    assert result["merged_rows"] == 2 and result["contacts_sent"] == 1 and result["created_count"] == 1
    assert result["rows_read"] == result["contacts_sent"] + result["merged_rows"] + result["refused_rows"]


def test_flags_written_as_text_mean_what_they_say() -> None:
    task = SendGridUpsertContactsOperator(
        task_id="t", contacts=[], create_missing_fields="false", deferrable="false"
    )
    assert task.create_missing_fields is False and task.deferrable is False
    with pytest.raises(SendGridInputError, match="create_missing_fields"):
        SendGridUpsertContactsOperator(task_id="t", contacts=[], create_missing_fields="maybe")


# ------------------------------------------------------------- issue 23: the last log line


def test_the_upsert_ends_its_log_with_a_summary_and_locates_refused_rows(
    sendgrid_emulator: EmulatorHandle,
    wire: Any,
    plan_field: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "email,first_name\n" + "".join(f"p{n}@example.com,P{n}\n" for n in range(9)) + ",nobody\n"
    )
    capsys.readouterr()
    result = run(
        wire(SendGridUpsertContactsOperator(task_id="t", source_path=str(path), max_error_ratio=0.2))
    )
    out = capsys.readouterr().out
    assert last_info_line(out) == summaries.upsert(result)
    assert last_info_line(out).startswith(
        "Upsert done: 10 rows read, 9 created, 0 updated, 0 errored at SendGrid, 1 refused locally (row 10); "
        "sent as 1 batch (1 job: "
    )
    no_identifier = "no identifier (email, phone_number_id, external_id or anonymous_id)"
    assert f"Refused row 10 (line 11 of contacts.csv): {no_identifier}" in task_log_lines(out, "warning")
    with pytest.raises(SendGridRowError, match=r"^row 10 \(line 11 of contacts.csv\): no identifier \("):
        run(wire(SendGridUpsertContactsOperator(task_id="t", source_path=str(path))))


async def test_a_deferred_upsert_ends_its_log_with_the_summary_when_it_resumes(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    operator = wire(SendGridUpsertContactsOperator(task_id="t", contacts=people(3), deferrable=True))
    context = {"task_state_store": MemoryTaskStateStore()}
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    events = [event async for event in deferred.value.trigger.run()]
    capsys.readouterr()
    result = getattr(operator, deferred.value.method_name)(context, event=events[0].payload)
    assert last_info_line(capsys.readouterr().out) == summaries.upsert(result)
    assert "3 rows read, 3 created" in summaries.upsert(result)


def test_the_export_ends_its_log_with_rows_files_and_destination(
    sendgrid_emulator: EmulatorHandle,
    wire: Any,
    populated_segment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    destination = str(tmp_path / "out")
    operator = SendGridExportContactsOperator(
        task_id="e", segment_ids=[populated_segment], destination=destination
    )
    capsys.readouterr()
    result = run(wire(operator))
    line = last_info_line(capsys.readouterr().out)
    assert line == summaries.export(result, [populated_segment], [], destination)
    assert line.startswith(
        f"Export {result['export_id']} of segments {populated_segment} done: 7 rows written "
    )
    assert (
        "(SendGrid's contact_count 7) in 1 csv file (contacts-1.csv" in line and f"at {destination};" in line
    )


def test_upsert_and_export_link_to_the_contacts_page_highlighting_their_job(
    sendgrid_emulator: EmulatorHandle, wire: Any, plan_field: str, populated_segment: str, tmp_path: Path
) -> None:
    from airflow_provider_sgseg.links import SendGridContactsLink, contacts_url

    for operator_class in (SendGridUpsertContactsOperator, SendGridExportContactsOperator):
        assert [type(link) for link in operator_class.operator_extra_links] == [SendGridContactsLink]
    upsert_ti, export_ti = RecordingTaskInstance(), RecordingTaskInstance()
    upserted = wire(SendGridUpsertContactsOperator(task_id="u", contacts=people(2))).execute(
        {"task_state_store": MemoryTaskStateStore(), "ti": upsert_ti}
    )
    exported = wire(exporter(populated_segment, tmp_path)).execute(
        {"task_state_store": MemoryTaskStateStore(), "ti": export_ti}
    )
    base_url = sendgrid_emulator.base_url
    (job_id,) = upserted["job_ids"]
    assert upsert_ti.xcom == {"sendgrid_links": {"api_base_url": base_url, "job_id": job_id}}
    assert export_ti.xcom == {"sendgrid_links": {"api_base_url": base_url, "job_id": exported["export_id"]}}
    page = f"{base_url}/__emulator__/inspect?job_id={exported['export_id']}"
    assert contacts_url(exported["export_id"], base_url) == page


def test_an_empty_source_starts_no_job_and_gets_no_contacts_link(wire: Any) -> None:
    ti = RecordingTaskInstance()
    wire(SendGridUpsertContactsOperator(task_id="u", contacts=[])).execute(
        {"task_state_store": MemoryTaskStateStore(), "ti": ti}
    )
    assert ti.xcom == {}


def test_a_rerun_into_the_same_destination_leaves_no_stale_export_files(
    sendgrid_emulator: EmulatorHandle, wire: Any, populated_segment: str, tmp_path: Path
) -> None:
    def export(file_type: str) -> dict[str, Any]:
        operator = SendGridExportContactsOperator(
            task_id="e", segment_ids=[populated_segment], destination=str(tmp_path), file_type=file_type
        )
        return run(wire(operator))

    export("json")  # an earlier run: contacts-1.json
    (tmp_path / "README.txt").write_text("someone else's file")
    (tmp_path / "contacts-9.csv").write_text("EMAIL\nold@example.com\n")  # written without a manifest

    result = export("csv")  # the rerun, its DAG changed to CSV

    assert [Path(path).name for path in result["paths"]] == ["contacts-1.csv"]
    # The earlier run's file is gone; a file no manifest names is left (and warned about).
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        ".sgseg-export-manifest",
        "README.txt",
        "contacts-1.csv",
        "contacts-9.csv",
    ]
    assert json.loads((tmp_path / ".sgseg-export-manifest").read_text())["files"] == ["contacts-1.csv"]


def test_an_export_manifest_naming_other_files_is_not_followed(
    sendgrid_emulator: EmulatorHandle, wire: Any, populated_segment: str, tmp_path: Path
) -> None:
    destination = tmp_path / "out"
    destination.mkdir()
    outside = tmp_path / "precious.csv"
    outside.write_text("keep me")
    (destination / "data.csv").write_text("keep me too")
    manifest = {"files": ["../precious.csv", "data.csv", str(outside), "contacts-2.csv"]}
    (destination / ".sgseg-export-manifest").write_text(json.dumps(manifest))
    (destination / "contacts-2.csv").write_text("EMAIL\nstale@example.com\n")

    run(
        wire(
            SendGridExportContactsOperator(
                task_id="e", segment_ids=[populated_segment], destination=str(destination)
            )
        )
    )

    assert outside.read_text() == "keep me" and (destination / "data.csv").exists()
    assert not (destination / "contacts-2.csv").exists()  # named by the manifest: an earlier run's
