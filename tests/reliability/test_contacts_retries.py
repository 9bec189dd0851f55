"""The contacts writes x faults, run the way Airflow runs a task (a fresh operator per try, one
task state store shared by the tries, another try after any failure Airflow would retry). The
export also runs without a store, as on Airflow before 3.3.

Whatever the fault: every contact arrives (no batch lost), only the batch or file whose answer
was lost is sent again, and a retried export never starts a second export.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.operators import contacts_upsert as contacts_module
from airflow_provider_sgseg.operators.contacts import (
    SendGridExportContactsOperator,
    SendGridUpsertContactsOperator,
)

from .conftest import FAST_CONN_ID, Sleeps, record_faults
from .test_operator_retries import FAULT_IDS, FAULTS, Fault, run_like_airflow

CONTACTS = "/v3/marketing/contacts"
IMPORTS = "/v3/marketing/contacts/imports"
EXPORTS = "/v3/marketing/contacts/exports"
ROWS = [{"email": f"r{n}@example.com", "first_name": f"R{n}", "country": "NL"} for n in range(5)]


@pytest.fixture
def manual_clock(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Job waits advance the emulator's clock; status reads use a hook that never really sleeps."""
    admin = emulator.admin
    for cls in (SendGridUpsertContactsOperator, SendGridExportContactsOperator):
        monkeypatch.setattr(cls, "now", lambda self: admin.now())
        monkeypatch.setattr(cls, "sleep", lambda self, seconds: admin.advance_clock(seconds))


def stored_emails(hook: SendGridMarketingHook) -> set[str]:
    from airflow_provider_sgseg.rules.requests import Call

    emails = [row["email"] for row in ROWS]
    found = hook._request(Call("POST", f"{CONTACTS}/search/emails", json={"emails": emails}))
    return {email for email, item in found["result"].items() if item.get("contact")}


def requests(emulator: EmulatorHandle, method: str, pattern: str) -> list[dict[str, Any]]:
    return [r for r in emulator.admin.requests(method=method) if re.search(pattern, r["path"])]


def conn_for(fault: Fault) -> str:
    return FAST_CONN_ID if fault.short_timeout else "sendgrid_default"


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_upsert_batches(
    fault: Fault,
    emulator: EmulatorHandle,
    clean_hook: SendGridMarketingHook,
    manual_clock: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(contacts_module, "MAX_CONTACTS_PER_UPSERT", 2)  # 3 batches
    emulator.admin.add_fault(method="PUT", path=f"^{re.escape(CONTACTS)}$", **fault.spec)
    outcome = run_like_airflow(
        lambda: SendGridUpsertContactsOperator(
            task_id="sync", contacts=ROWS, sendgrid_conn_id=conn_for(fault)
        ),
        emulator.admin.now(),
    )
    assert record_faults(emulator.admin.requests()) == 1, fault.name
    assert outcome.result is not None, (fault.name, outcome.errors)
    assert outcome.tries == 2, fault.name  # a write is never retried inside the try
    assert stored_emails(clean_hook) == {row["email"] for row in ROWS}  # no batch lost
    # the faulted batch (the first) twice; the others once: the first try stopped at the fault
    assert len(requests(emulator, "PUT", f"^{CONTACTS}$")) == 4, fault.name
    assert outcome.result["batches"] == 3 and len(set(outcome.result["job_ids"])) == 3


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
@pytest.mark.parametrize("write", ["start", "upload"])
def test_upsert_csv_import(
    write: str,
    fault: Fault,
    emulator: EmulatorHandle,
    clean_hook: SendGridMarketingHook,
    manual_clock: None,
) -> None:
    if write == "upload" and fault.name == "malformed-after":
        # The emulator's file host does not apply an upload whose answer a fault replaces (the
        # job waits for its file and fails), unlike S3: a 200 there would mean the file is in.
        pytest.skip("emulator: 'after' faults on the upload URL drop the upload (reported)")
    if write == "start":
        emulator.admin.add_fault(method="PUT", path=f"^{re.escape(IMPORTS)}$", **fault.spec)
    else:
        emulator.admin.add_fault(method="PUT", path=r"^/__files__/imports/", **fault.spec)
    outcome = run_like_airflow(
        lambda: SendGridUpsertContactsOperator(
            task_id="sync", contacts=ROWS, import_threshold=1, sendgrid_conn_id=conn_for(fault)
        ),
        emulator.admin.now(),
    )
    assert record_faults(emulator.admin.requests()) == 1, fault.name
    assert outcome.result is not None, (fault.name, outcome.errors)
    assert outcome.result["method"] == "import" and len(outcome.result["job_ids"]) == 1
    assert stored_emails(clean_hook) == {row["email"] for row in ROWS}
    assert len(requests(emulator, "PUT", f"^{IMPORTS}$")) == 2  # the first try's, then the retry's
    assert len(requests(emulator, "PUT", "^/__files__/imports/")) == (1 if write == "start" else 2)


def everyone_segment(emulator: EmulatorHandle, hook: SendGridMarketingHook) -> str:
    """A populated segment of the ROWS contacts."""
    emulator.admin.seed_contacts(ROWS)
    segment_id = str(hook.create_segment("everyone", "SELECT contact_id, updated_at FROM contact_data")["id"])
    emulator.admin.advance_clock(3600)
    return segment_id


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
@pytest.mark.parametrize("read", ["import status", "export status", "download"])
def test_reads_while_waiting_are_retried_or_waited_out(
    read: str,
    fault: Fault,
    emulator: EmulatorHandle,
    clean_hook: SendGridMarketingHook,
    manual_clock: None,
    sleeps: Sleeps,
    tmp_path: Path,
) -> None:
    pattern = {
        "import status": f"^{re.escape(IMPORTS)}/",
        "export status": f"^{re.escape(EXPORTS)}/",
        "download": "^/__files__/exports/",
    }[read]
    operator: Any
    if read == "import status":
        operator = SendGridUpsertContactsOperator(task_id="sync", contacts=ROWS)
    else:
        segment_id = everyone_segment(emulator, clean_hook)
        operator = SendGridExportContactsOperator(
            task_id="export", segment_ids=[segment_id], destination=str(tmp_path)
        )
    # the hook's own retries of a GET sleep on the recording policy, not for real
    operator.__dict__["hook"] = SendGridMarketingHook(conn_for(fault), retry=sleeps.policy())
    emulator.admin.add_fault(method="GET", path=pattern, **fault.spec)
    outcome = run_like_airflow(lambda: operator, emulator.admin.now())
    assert record_faults(emulator.admin.requests()) == 1, fault.name
    assert outcome.result is not None, (fault.name, outcome.errors)
    # A read's fault never costs a try, except a garbled download: its row count does not match
    # the export's contact_count, and the retry downloads the same export again.
    garbled = read == "download" and fault.name == "malformed-after"
    assert outcome.tries == (2 if garbled else 1), (fault.name, outcome.errors)
    if read == "import status":
        assert stored_emails(clean_hook) == {row["email"] for row in ROWS}
    else:
        assert outcome.result["row_count"] == len(ROWS)
        assert len(clean_hook.list_contact_exports()) == 1


@pytest.mark.parametrize("state_store", [True, False], ids=["state-store", "no-store (Airflow < 3.3)"])
@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_export_start_never_duplicates(
    fault: Fault,
    state_store: bool,
    emulator: EmulatorHandle,
    clean_hook: SendGridMarketingHook,
    manual_clock: None,
    tmp_path: Path,
) -> None:
    segment_id = everyone_segment(emulator, clean_hook)
    emulator.admin.add_fault(method="POST", path=f"^{re.escape(EXPORTS)}$", **fault.spec)
    outcome = run_like_airflow(
        lambda: SendGridExportContactsOperator(
            task_id="export",
            segment_ids=[segment_id],
            destination=str(tmp_path),
            sendgrid_conn_id=conn_for(fault),
        ),
        emulator.admin.now(),
        state_store=state_store,
    )
    assert record_faults(emulator.admin.requests()) == 1, fault.name
    assert outcome.result is not None, (fault.name, outcome.errors)
    exports = clean_hook.list_contact_exports()
    assert len(exports) == 1, (fault.name, exports)  # never a second export
    assert outcome.result["export_id"] == exports[0]["id"] and outcome.result["row_count"] == 5
    applied = fault.spec.get("when") == "after"
    assert len(requests(emulator, "POST", f"^{EXPORTS}$")) == (1 if applied else 2), fault.name
