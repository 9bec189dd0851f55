"""Column mapping and row validation: every refusal names row, column, value and rule."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules.contacts import (
    NO_IDENTIFIER,
    FieldCatalog,
    SendGridRowError,
    column_plan,
    contact_from_row,
    merge_contacts,
    missing_custom_fields,
    plan_columns,
)

CATALOG = FieldCatalog.from_answer(
    {
        "custom_fields": [
            {"id": "w1", "name": "plan", "field_type": "Text"},
            {"id": "w2", "name": "Score", "field_type": "Number"},
            {"id": "d3", "name": "signup", "field_type": "Date"},
        ],
        "reserved_fields": [{"id": "_rf0_T", "name": "first_name"}, {"name": "email"}],
    }
)
COLUMNS = ["email", "first_name", "plan", "score", "signup"]
PLAN = plan_columns(COLUMNS, None, CATALOG)


def test_custom_fields_go_by_id_and_names_ignore_case() -> None:
    row = {
        "email": " Ann@Example.COM ",
        "first_name": "Ann",
        "plan": "pro",
        "score": "42",
        "signup": "2024-05-01",
    }
    assert contact_from_row(1, row, PLAN) == {
        "email": "ann@example.com",
        "first_name": "Ann",
        "custom_fields": {"w1": "pro", "w2": 42, "d3": "2024-05-01"},
    }
    assert CATALOG.reserved_ids == {"first_name": "_rf0_T", "email": None}


def test_empty_values_are_not_sent() -> None:
    assert contact_from_row(1, {"email": "a@b.co", "first_name": "", "plan": None}, PLAN) == {
        "email": "a@b.co"
    }


def test_mapping_renames_and_sends_only_mapped_columns() -> None:
    plan = plan_columns(["mail", "tier", "internal"], {"mail": "email", "tier": "plan"}, CATALOG)
    row = {"mail": "a@b.co", "tier": "x", "internal": "secret"}
    assert contact_from_row(1, row, plan) == {"email": "a@b.co", "custom_fields": {"w1": "x"}}


def test_unknown_field_is_an_error_naming_it_and_listed_as_missing() -> None:
    with pytest.raises(
        SendGridInputError, match=r"'colour'.*neither a writable reserved field nor a custom field"
    ):
        plan_columns(["email", "colour"], None, CATALOG)
    assert missing_custom_fields(["email", "colour", "Plan"], None, CATALOG) == ["colour"]


def test_columns_without_any_identifier_are_refused() -> None:
    with pytest.raises(SendGridInputError, match="none maps to an identifier"):
        plan_columns(["first_name"], None, CATALOG)


def test_mapping_naming_a_column_the_source_lacks() -> None:
    with pytest.raises(SendGridInputError, match="does not have"):
        plan_columns(["email"], {"mail": "email"}, CATALOG)


@pytest.mark.parametrize(
    ("row", "column", "rule"),
    [
        ({"first_name": "Ann"}, "email,phone_number_id,external_id,anonymous_id", "no identifier"),
        ({"email": "not-an-email"}, "email", "not a valid email address"),
        ({"email": "a@b.co", "score": "lots"}, "score", "is a Number"),
        ({"email": "a@b.co", "signup": "yesterday"}, "signup", "is a Date"),
        ({"email": "a@b.co", "first_name": "x" * 51}, "first_name", "at most 50 characters, got 51"),
        ({"email": "a@b.co", "plan": b"pro"}, "plan", "is Text"),
    ],
)
def test_bad_rows_name_row_column_value_and_rule(row: dict[str, Any], column: str, rule: str) -> None:
    with pytest.raises(SendGridRowError, match=rule) as caught:
        contact_from_row(7, row, PLAN)
    assert caught.value.row == 7 and caught.value.column == column
    if "," not in column:  # a rule about one column names it and its value
        assert str(caught.value).startswith(f"row 7: column {column!r} value ")
    assert caught.value.to_dict()["row"] == 7


def test_a_row_without_identifier_reads_plainly_and_says_where_it_is() -> None:
    with pytest.raises(SendGridRowError) as caught:
        contact_from_row(10, {"first_name": "Ann"}, PLAN)
    assert str(caught.value) == "row 10: no identifier (email, phone_number_id, external_id or anonymous_id)"
    assert caught.value.at("line 11 of contacts.csv") is caught.value
    assert str(caught.value) == f"row 10 (line 11 of contacts.csv): {NO_IDENTIFIER}"
    assert (
        caught.value.to_dict()["rule"]
        == "no identifier (email, phone_number_id, external_id or anonymous_id)"
    )


def test_row_errors_about_a_value_or_the_whole_row_read_plainly() -> None:
    with pytest.raises(SendGridRowError) as caught:
        contact_from_row(3, {"email": "not-an-email"}, PLAN)
    assert (
        str(caught.value.at(None)) == "row 3: column 'email' value 'not-an-email': not a valid email address"
    )
    whole_row = SendGridRowError(4, "*", "{bad", "not valid JSON").at("line 6 of people.ndjson")
    assert str(whole_row) == "row 4 (line 6 of people.ndjson): not valid JSON: '{bad'"


@pytest.mark.parametrize(
    ("columns", "mapping", "hint"),
    [
        (["emial", "first_name"], None, "unknown column 'emial': did you mean 'email'?"),
        (["email", "frist_name"], None, "unknown column 'frist_name': did you mean 'first_name'?"),
        (["email", "plna"], None, "unknown column 'plna': did you mean 'plan'?"),  # a custom field
        (["email", "x"], {"email": "email", "x": "Scroe"}, "unknown field 'Scroe': did you mean 'Score'?"),
    ],
)
def test_an_unknown_column_or_field_gets_the_nearest_known_name(
    columns: list[str], mapping: dict[str, str] | None, hint: str
) -> None:
    with pytest.raises(SendGridInputError, match="name no field SendGrid takes") as caught:
        plan_columns(columns, mapping, CATALOG)
    assert hint in str(caught.value)


def test_a_name_far_from_every_field_gets_no_suggestion() -> None:
    with pytest.raises(SendGridInputError) as caught:
        plan_columns(["email", "zzqx"], None, CATALOG)
    assert "did you mean" not in str(caught.value)


@pytest.mark.parametrize("argument", ["column_mapping", "ignore_columns"])
def test_a_mapped_or_ignored_column_the_source_lacks_gets_the_nearest_column(argument: str) -> None:
    named: Any = {"emial": "email"} if argument == "column_mapping" else ["emial"]
    mapping = named if argument == "column_mapping" else None
    ignore = named if argument == "ignore_columns" else ()
    with pytest.raises(SendGridInputError, match=argument) as caught:
        plan_columns(["email", "first_name"], mapping, CATALOG, ignore)
    assert "unknown column 'emial': did you mean 'email'?" in str(caught.value)


def test_an_unknown_field_type_gets_the_nearest_type() -> None:
    from airflow_provider_sgseg.rules.validation import field_type

    with pytest.raises(SendGridInputError) as caught:
        field_type("text")
    assert str(caught.value).endswith("must be one of Text, Number, Date: did you mean 'Text'?")
    with pytest.raises(SendGridInputError, match="did you mean 'Number'"):
        field_type("Numbr")
    with pytest.raises(SendGridInputError) as caught:
        field_type("Boolean")  # far from every type: no hint
    assert "did you mean" not in str(caught.value)


def test_dates_and_numbers_from_database_types() -> None:
    row = {"email": "a@b.co", "score": 2.5, "signup": datetime.date(2024, 1, 2)}
    assert contact_from_row(1, row, PLAN)["custom_fields"] == {"w2": 2.5, "d3": "2024-01-02"}


def test_alternate_emails_limits() -> None:
    plan = plan_columns(["email", "alternate_emails"], None, CATALOG)
    ok = contact_from_row(1, {"email": "a@b.co", "alternate_emails": "X@b.co, y@b.co"}, plan)
    assert ok["alternate_emails"] == ["x@b.co", "y@b.co"]
    with pytest.raises(SendGridRowError, match="at most 5"):
        contact_from_row(2, {"email": "a@b.co", "alternate_emails": [f"{i}@b.co" for i in range(6)]}, plan)


def test_merge_later_values_win_and_custom_fields_combine() -> None:
    earlier = {"email": "a@b.co", "first_name": "A", "custom_fields": {"w1": "x", "w2": 1}}
    later = {"email": "a@b.co", "last_name": "B", "custom_fields": {"w2": 2}}
    assert merge_contacts(earlier, later) == {
        "email": "a@b.co",
        "first_name": "A",
        "last_name": "B",
        "custom_fields": {"w1": "x", "w2": 2},
    }


def test_reserved_names_ignore_case_and_read_only_reserved_columns_are_not_sent() -> None:
    catalog = FieldCatalog.from_answer(
        {"custom_fields": [], "reserved_fields": [{"name": "email"}, {"id": "_rf9_T", "name": "contact_id"}]}
    )
    columns = ["EMAIL", "First_Name", "CONTACT_ID"]
    plan = plan_columns(columns, None, catalog)
    assert [(t.column, t.field) for t in plan] == [("EMAIL", "email"), ("First_Name", "first_name")]
    assert missing_custom_fields(columns, None, catalog) == []
    row = {"EMAIL": "a@example.com", "First_Name": "A", "CONTACT_ID": "x"}
    assert contact_from_row(1, row, plan) == {"email": "a@example.com", "first_name": "A"}
    with pytest.raises(SendGridInputError, match="contact_id"):  # a mapping must name writable fields
        plan_columns(columns, {"EMAIL": "email", "CONTACT_ID": "contact_id"}, catalog)


def test_two_columns_folding_to_one_field_are_refused() -> None:
    with pytest.raises(SendGridInputError, match=r"\['email', 'Email'\].*'email'"):
        plan_columns(["email", "Email"], None, CATALOG)
    with pytest.raises(SendGridInputError, match=r"\['plan', 'PLAN'\].*'plan'"):
        plan_columns(["email", "plan", "PLAN"], None, CATALOG)


def test_writable_reserved_fields_come_from_the_accounts_field_definitions() -> None:
    catalog = FieldCatalog.from_answer(
        {
            "custom_fields": [{"id": "w1", "name": "plan", "field_type": "Text"}],
            "reserved_fields": [
                {"id": "_rf10_T", "name": "phone_number", "field_type": "Text"},
                {"id": "_rf30_T", "name": "instagram", "field_type": "Text"},  # one this code never heard of
                {"id": "_rf31_T", "name": "loyalty_tier", "field_type": "Text", "read_only": True},
                {"id": "_rf20_T", "name": "created_at", "field_type": "Date"},  # set by SendGrid, unmarked
            ],
        }
    )
    columns = ["email", "PHONE_NUMBER", "instagram", "loyalty_tier", "created_at", "w1"]
    plan = column_plan(columns, None, catalog)
    assert [(t.column, t.field) for t in plan.targets] == [
        ("email", "email"),
        ("PHONE_NUMBER", "phone_number"),
        ("instagram", "instagram"),
        ("w1", "plan"),  # a custom field by its id
    ]
    assert plan.unsent == {
        "loyalty_tier": "loyalty_tier is read-only: SendGrid sets it",
        "created_at": "created_at is read-only: SendGrid sets it",
    }
    row = {"email": "a@b.co", "PHONE_NUMBER": "+3130", "instagram": "@a", "w1": "pro"}
    assert contact_from_row(1, row, plan.targets) == {
        "email": "a@b.co",
        "phone_number": "+3130",
        "instagram": "@a",
        "custom_fields": {"w1": "pro"},
    }


def test_every_column_no_field_takes_is_named_and_ignore_columns_leaves_them_out() -> None:
    with pytest.raises(SendGridInputError, match=r"\['colour', 'size -> shoe'\]"):
        column_plan(
            ["email", "colour", "size"], {"email": "email", "colour": "colour", "size": "shoe"}, CATALOG
        )
    plan = column_plan(["email", "colour"], None, CATALOG, ignore=["colour"])
    assert [t.column for t in plan.targets] == ["email"]
    assert plan.unsent == {"colour": "named in ignore_columns"}
    assert missing_custom_fields(["email", "colour"], None, CATALOG, ignore=["colour"]) == []
    with pytest.raises(SendGridInputError, match=r"ignore_columns.*\['shade'\]"):
        column_plan(["email"], None, CATALOG, ignore=["shade"])


def test_native_values_as_drivers_return_them_convert_by_the_target_field_type() -> None:
    import decimal
    import uuid

    catalog = FieldCatalog.from_answer(
        {
            "custom_fields": [
                {"id": "t1", "name": "note", "field_type": "Text"},
                {"id": "n1", "name": "score", "field_type": "Number"},
                {"id": "d1", "name": "signup", "field_type": "Date"},
            ]
        }
    )
    plan = plan_columns(["external_id", "first_name", "note", "score", "signup"], None, catalog)
    ident = uuid.UUID("6F1C4E0A-3B7D-4C1E-9A55-2C0D7B9E8F10")

    def custom(note: Any = None, score: Any = None, signup: Any = None) -> Any:
        row = {"external_id": ident, "note": note, "score": score, "signup": signup}
        return contact_from_row(1, row, plan).get("custom_fields", {})

    assert contact_from_row(1, {"external_id": ident, "first_name": True}, plan) == {
        "external_id": "6f1c4e0a-3b7d-4c1e-9a55-2c0d7b9e8f10",
        "first_name": "true",
    }
    assert custom(note=decimal.Decimal("12.50")) == {"t1": "12.50"}  # exact text
    assert custom(note=decimal.Decimal("1E+2")) == {"t1": "100"}
    assert custom(note=False, score=decimal.Decimal("4.50")) == {"t1": "false", "n1": 4.5}
    assert custom(score=decimal.Decimal("3.000")) == {"n1": 3}
    assert custom(note=ident) == {"t1": "6f1c4e0a-3b7d-4c1e-9a55-2c0d7b9e8f10"}
    assert custom(note=datetime.date(2024, 5, 1)) == {"t1": "2024-05-01"}
    amsterdam = datetime.timezone(datetime.timedelta(hours=2))
    assert custom(signup=datetime.datetime(2024, 5, 1, 10, 30, 5, 123, tzinfo=amsterdam)) == {
        "d1": "2024-05-01T08:30:05Z"
    }
    assert custom(signup=datetime.datetime(2024, 5, 1, 8, 30)) == {"d1": "2024-05-01T08:30:00Z"}  # naive: UTC
    for bad_column, bad in (
        ("score", decimal.Decimal("NaN")),
        ("score", True),
        ("score", ident),
        ("note", b"bytes"),
        ("note", decimal.Decimal("Infinity")),
        ("note", ["a"]),
    ):
        with pytest.raises(SendGridRowError) as caught:
            custom(**{bad_column: bad})
        assert caught.value.row == 1 and caught.value.column == bad_column and caught.value.value is bad


@pytest.mark.parametrize(
    ("column", "value"),
    [
        # A float NaN is how pandas and many drivers spell a missing value: it is no text.
        ("first_name", float("nan")),
        ("first_name", float("inf")),
        ("note", float("nan")),
        ("note", float("-inf")),
        # Beyond a JSON number SendGrid can hold (a double).
        ("score", 10**400),
        ("score", -(10**400)),
        # A moment that has no UTC form (was an OverflowError out of the validation pass).
        ("signup", datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=5)))),
        (
            "signup",
            datetime.datetime(9999, 12, 31, 23, tzinfo=datetime.timezone(-datetime.timedelta(hours=5))),
        ),
        ("signup", "0001-01-01T00:00:00+05:00"),
        ("signup", "9999-12-31T23:00:00-05:00"),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_values_with_no_faithful_form_are_row_errors(column: str, value: Any) -> None:
    catalog = FieldCatalog.from_answer(
        {
            "custom_fields": [
                {"id": "t1", "name": "note", "field_type": "Text"},
                {"id": "n1", "name": "score", "field_type": "Number"},
                {"id": "d1", "name": "signup", "field_type": "Date"},
            ]
        }
    )
    plan = plan_columns(["email", "first_name", "note", "score", "signup"], None, catalog)
    with pytest.raises(SendGridRowError) as caught:
        contact_from_row(7, {"email": "a@b.co", column: value}, plan)
    assert caught.value.row == 7 and caught.value.column == column and caught.value.value is value


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("2024-05-01", "2024-05-01"),
        ("05/01/2024", "2024-05-01"),  # SendGrid's custom fields guide: MM/DD/YYYY
        ("5/1/2024", "2024-05-01"),
        ("2024-05-01T08:30:00Z", "2024-05-01T08:30:00Z"),  # as SendGrid's answers and exports give it
        ("2024-05-01T10:30+02:00", "2024-05-01T08:30:00Z"),
        ("2024-05-01 08:30:00", "2024-05-01T08:30:00Z"),
        ("2024-05-01T08:30:00.250Z", "2024-05-01T08:30:00Z"),
    ],
)
def test_every_documented_date_form_is_taken(text: str, sent: str) -> None:
    assert contact_from_row(1, {"email": "a@b.co", "signup": text}, PLAN)["custom_fields"] == {"d3": sent}


@pytest.mark.parametrize(
    "text", ["20240501", "2024-W18-3", "13/01/2024", "2024-02-30", "01-05-2024", "May 1, 2024"]
)
def test_other_date_forms_are_refused_naming_the_forms_taken(text: str) -> None:
    with pytest.raises(SendGridRowError, match=r"is a Date \(YYYY-MM-DD, MM/DD/YYYY or ISO 8601 date-time\)"):
        contact_from_row(1, {"email": "a@b.co", "signup": text}, PLAN)
