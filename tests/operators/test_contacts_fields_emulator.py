"""Issue 19 part 1: no column is dropped without a word (against the emulator over loopback HTTP).

Writable fields come from the account's field definitions; a column no field takes fails before
any write unless ``ignore_columns`` names it; exports (CSV and JSON) upsert back losslessly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridRowError
from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.operators.contacts import (
    SendGridExportContactsOperator,
    SendGridUpsertContactsOperator,
)
from tests.operators.test_contacts_emulator import FIELDS, contacts_module_call, run, stored, wire, writes

__all__ = ["wire"]  # the fixture, shared with test_contacts_emulator.py

# Every writable reserved field (the ContactRequest schema's and the ones only field definitions
# list: phone_number, whatsapp, line, facebook, unique_name).
FULL = {
    "email": "full@example.com",
    "phone_number_id": "+31612345678",
    "external_id": "ext-1",
    "anonymous_id": "anon-1",
    "first_name": "Fien",
    "last_name": "Vos",
    "alternate_emails": ["fien@example.org", "f.vos@example.net"],
    "address_line_1": "Kade 1",
    "address_line_2": "2 hoog",
    "city": "Utrecht",
    "state_province_region": "UT",
    "postal_code": "3511 AB",
    "country": "NL",
    "phone_number": "+31301234567",
    "whatsapp": "+31612345679",
    "line": "fien.line",
    "facebook": "fien.fb",
    "unique_name": "fien-vos",
}
ONLY_IN_FIELD_DEFINITIONS = ("phone_number", "whatsapp", "line", "facebook", "unique_name")
CUSTOM = {"plan": ("Text", "pro, yearly"), "score": ("Number", 4.5), "orders": ("Number", 12)}
CUSTOM_DATE = ("signup", "Date", "2024-05-01T08:30:00Z")


def _custom_fields() -> None:
    hook = SendGridMarketingHook()
    for name, (kind, _) in CUSTOM.items():
        hook.create_field_definition(name, kind)
    hook.create_field_definition(CUSTOM_DATE[0], CUSTOM_DATE[1])


def test_reserved_fields_only_field_definitions_list_are_sent(
    sendgrid_emulator: EmulatorHandle, wire: Any
) -> None:
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=[FULL])))
    assert result["created_count"] == 1 and result["unsent_columns"] == {}
    contact = stored(FULL["email"])
    assert {name: contact.get(name) for name in ONLY_IN_FIELD_DEFINITIONS} == {
        name: FULL[name] for name in ONLY_IN_FIELD_DEFINITIONS
    }


def test_field_definitions_are_read_once_per_task(sendgrid_emulator: EmulatorHandle, wire: Any) -> None:
    rows = [{"email": f"r{n}@example.com", "tier": "gold", "phone_number": "+31301234567"} for n in range(3)]
    operator = SendGridUpsertContactsOperator(
        task_id="t",
        contacts=rows,
        create_missing_fields=True,
        custom_field_types={"tier": "Text"},
        import_threshold=1,  # the CSV import needs every field's id
    )
    assert run(wire(operator))["created_count"] == 3
    reads = sendgrid_emulator.admin.requests(method="GET", path_prefix=FIELDS)
    assert len(reads) == 1
    assert stored("r2@example.com")["custom_fields"] == {"tier": "gold"}
    assert stored("r2@example.com")["phone_number"] == "+31301234567"


def test_columns_no_field_takes_fail_before_any_write_naming_every_one(
    sendgrid_emulator: EmulatorHandle, wire: Any
) -> None:
    rows = [{"email": "a@example.com", "colour": "red", "shoe_size": 42, "internal_note": "x"}]
    with pytest.raises(SendGridInputError, match="ignore_columns") as caught:
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows)))
    for column in ("colour", "shoe_size", "internal_note"):
        assert repr(column) in str(caught.value)
    assert writes(sendgrid_emulator) == []


def test_ignore_columns_leaves_named_columns_out_and_says_so(
    sendgrid_emulator: EmulatorHandle, wire: Any
) -> None:
    rows = [{"email": "a@example.com", "first_name": "A", "internal_note": "x", "CREATED_AT": "2020-01-01"}]
    operator = SendGridUpsertContactsOperator(task_id="t", contacts=rows, ignore_columns=["internal_note"])
    result = run(wire(operator))
    assert result["created_count"] == 1
    assert result["unsent_columns"] == {
        "internal_note": "named in ignore_columns",
        "CREATED_AT": "created_at is read-only: SendGrid sets it",
    }
    with pytest.raises(SendGridInputError, match=r"ignore_columns.*\['note'\].*does not have"):
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows, ignore_columns=["note"])))
    with pytest.raises(SendGridInputError, match="ignore_columns"):
        SendGridUpsertContactsOperator(task_id="t", contacts=rows, ignore_columns="internal_note")


def test_unmapped_columns_are_reported(sendgrid_emulator: EmulatorHandle, wire: Any) -> None:
    rows = [{"mail": "m@example.com", "secret": "s"}]
    operator = SendGridUpsertContactsOperator(task_id="t", contacts=rows, column_mapping={"mail": "email"})
    assert run(wire(operator))["unsent_columns"] == {"secret": "not in column_mapping"}


def _comparable(contact: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in contact.items() if key not in ("updated_at", "_metadata")}


@pytest.mark.parametrize("file_type", ["csv", "json"])
def test_an_export_upserts_back_losslessly(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path, file_type: str
) -> None:
    _custom_fields()
    list_id = SendGridMarketingHook()._request(
        contacts_module_call("POST", "/v3/marketing/lists", {"name": "round trip"})
    )["id"]
    custom = {name: value for name, (_, value) in CUSTOM.items()} | {CUSTOM_DATE[0]: CUSTOM_DATE[2]}
    second = {"email": "plain@example.com", "first_name": "Plain", "score": -3}
    rows = [FULL | custom, second]
    run(wire(SendGridUpsertContactsOperator(task_id="seed", contacts=rows, list_ids=[list_id])))
    before = {row["email"]: _comparable(stored(row["email"])) for row in rows}
    assert all(before[FULL["email"]].get(name) for name in ONLY_IN_FIELD_DEFINITIONS)

    export = SendGridExportContactsOperator(
        task_id="e", list_ids=[list_id], file_type=file_type, destination=str(tmp_path / "out")
    )
    (path,) = run(wire(export))["paths"]
    if file_type == "json":  # the nested custom_fields of SendGrid's JSON lines
        assert "custom_fields" in json.loads(Path(path).read_text().splitlines()[0])

    # Every field changed, then the file alone brings every one of them back.
    changed = {
        name: f"changed-{name}"
        for name in FULL
        if name not in ("email", "phone_number_id", "external_id", "anonymous_id", "alternate_emails")
    }
    changed |= {"alternate_emails": ["other@example.com"], "plan": "free", "score": 1, "orders": 2}
    changed |= {"signup": "2000-01-01T00:00:00Z"}
    identifiers = {name: FULL[name] for name in ("email", "phone_number_id", "external_id", "anonymous_id")}
    overwrite = [{**identifiers, **changed}, {"email": second["email"], "first_name": "X", "score": 9}]
    run(wire(SendGridUpsertContactsOperator(task_id="overwrite", contacts=overwrite)))
    assert stored(FULL["email"])["city"] == "changed-city"

    result = run(wire(SendGridUpsertContactsOperator(task_id="back", source_path=path)))
    assert result["rows_read"] == 2 and result["updated_count"] == 2
    assert set(result["unsent_columns"]) == {
        column for column in result["unsent_columns"] if "read-only" in result["unsent_columns"][column]
    }
    after = {email: _comparable(stored(email)) for email in before}
    for email, contact in before.items():
        for name, value in contact.items():
            assert after[email].get(name) == value, (email, name)


@pytest.mark.parametrize("name", ["contacts-1.csv.gz", "contacts-1.json.gz", "contacts-1.json"])
def test_export_file_names_are_sources_as_they_are(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path, name: str
) -> None:
    import gzip

    SendGridMarketingHook().create_field_definition("plan", "Text")
    if ".csv" in name:
        text = "EMAIL,FIRST_NAME,PHONE_NUMBER,CONTACT_ID,plan\r\ngz@example.com,Gz,+31301234567,c-1,pro\r\n"
    else:
        line = {"email": "gz@example.com", "first_name": "Gz", "phone_number": "+31301234567"}
        text = json.dumps(line | {"contact_id": "c-1", "custom_fields": {"plan": "pro"}}) + "\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", source_path=str(path))))
    assert result["created_count"] == 1
    contact = stored("gz@example.com")
    assert (contact["first_name"], contact["phone_number"], contact["custom_fields"]) == (
        "Gz",
        "+31301234567",
        {"plan": "pro"},
    )


def test_a_field_both_nested_and_outside_custom_fields_is_a_row_error(
    sendgrid_emulator: EmulatorHandle, wire: Any
) -> None:
    SendGridMarketingHook().create_field_definition("plan", "Text")
    rows = [{"email": "a@example.com", "plan": "x", "custom_fields": {"plan": "y"}}]
    with pytest.raises(SendGridRowError, match="also given outside custom_fields") as caught:
        run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows)))
    assert caught.value.row == 1 and caught.value.column == "custom_fields.plan"


# ------------------------------------------------------------------ part 2: values as drivers give them


def test_native_driver_values_reach_sendgrid_converted_by_field_type(
    sendgrid_emulator: EmulatorHandle, wire: Any
) -> None:
    import datetime
    import decimal
    import uuid

    hook = SendGridMarketingHook()
    for name, kind in (
        ("note", "Text"),
        ("vip", "Text"),
        ("score", "Number"),
        ("signup", "Date"),
        ("seen", "Date"),
    ):
        hook.create_field_definition(name, kind)
    ident = uuid.uuid4()
    rows = [
        {
            "email": "native@example.com",
            "external_id": ident,
            "note": decimal.Decimal("12.50"),
            "vip": True,
            "score": decimal.Decimal("4.25"),
            "signup": datetime.date(2024, 5, 1),
            "seen": datetime.datetime(
                2024, 5, 1, 10, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
        },
        {"email": "us-date@example.com", "signup": "05/02/2024", "seen": "2024-05-02T08:00:00.5Z"},
    ]
    result = run(wire(SendGridUpsertContactsOperator(task_id="t", contacts=rows)))
    assert result["created_count"] == 2 and result["errored_count"] == 0
    contact = stored("native@example.com")
    assert contact["external_id"] == str(ident)
    assert contact["custom_fields"] == {
        "note": "12.50",
        "vip": "true",
        "score": 4.25,
        "signup": "2024-05-01T00:00:00Z",
        "seen": "2024-05-01T08:30:00Z",
    }
    later = stored("us-date@example.com")["custom_fields"]
    assert later == {"signup": "2024-05-02T00:00:00Z", "seen": "2024-05-02T08:00:00Z"}


def test_the_emulator_takes_the_same_date_forms() -> None:
    from sgseg_emulator.field_definitions import normalized_value

    for text, stored_as in (
        ("2024-05-01", "2024-05-01T00:00:00Z"),
        ("05/01/2024", "2024-05-01T00:00:00Z"),
        ("5/1/2024", "2024-05-01T00:00:00Z"),
        ("2024-05-01T10:30+02:00", "2024-05-01T08:30:00Z"),
    ):
        assert normalized_value("Date", text) == (stored_as, None)
    for text in ("20240501", "2024-W18-3", "13/01/2024", "May 1, 2024"):
        value, problem = normalized_value("Date", text)
        assert value is None and problem is not None and "MM/DD/YYYY" in problem
