"""query_dsl compiler: SendGrid's examples evaluated over a real SQLite database, and its rules."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import pytest
from sgseg_emulator.query import (
    CompiledQuery,
    QueryRuleError,
    QuerySyntaxError,
    compile_query,
)
from sgseg_emulator.query.time import interval_modifiers, normalise_timestamp
from sgseg_emulator.store import SCHEMA

# The store's own schema: the compiled SQL must run against the tables the emulator has.
DDL = SCHEMA

CUSTOM_FIELDS = ("my_number_custom_field", "Birthday", "favourite_colour")
NOW = "2024-06-20T12:00:00Z"
SS1, SS2 = "ss-0001", "ss-0002"
LIST_A, LIST_B = "aaa", "bbb"

# name -> contact columns (contact_id is the name).
CONTACTS: dict[str, dict[str, object]] = {
    "alice": {
        "email": "alice@gmail.com",
        "first_name": "John",
        "last_name": "Doe",
        "city": "Denver",
        "alternate_emails": ["alternate@gmail.com"],
        "list_ids": [LIST_A],
        "custom_fields": {"my_number_custom_field": 12, "Birthday": "1990-05-01", "favourite_colour": "blue"},
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-06-18T10:00:00Z",
    },
    "bob": {
        "email": "bob@example.com",
        "first_name": "Dave",
        "last_name": "Jones",
        "city": "Austin",
        "list_ids": [LIST_B],
        # the contacts API takes custom field values as strings too
        "custom_fields": {"my_number_custom_field": "7", "Birthday": "2001-02-03T00:00:00Z"},
        "created_at": "2024-02-01T00:00:00Z",
        "updated_at": "2024-06-19T00:00:00Z",  # exactly on the boundary used below
    },
    "carol": {
        "email": "carol@gmail.com",
        "first_name": None,
        "last_name": "Lee",
        "city": None,
        "custom_fields": {"favourite_colour": "red"},
        "created_at": "2024-03-01T00:00:00Z",
        "updated_at": "2024-06-20T00:00:00Z",
    },
    "dan": {
        "email": "dan@yahoo.com",
        "first_name": "John",
        "last_name": "Smith",
        "city": "Denver",
        "list_ids": [LIST_A, LIST_B],
        "custom_fields": {"my_number_custom_field": 12.5},
        "created_at": "2024-04-01T00:00:00Z",
        "updated_at": "2024-06-18T23:59:59Z",
    },
}
EVERYONE = set(CONTACTS)

# (contact, event_type, event_timestamp, singlesend_id)
EVENTS = [
    ("alice", "processed", "2024-06-10T09:00:00Z", SS1),
    ("alice", "open", "2024-06-10T10:00:00Z", SS1),
    ("alice", "click", "2024-06-10T10:05:00Z", SS1),
    ("alice", "click", "2024-06-18T08:00:00Z", SS1),
    ("bob", "processed", "2024-06-10T09:00:00Z", SS1),
    ("dan", "processed", "2024-06-15T09:00:00Z", SS2),
    ("dan", "click", "2024-06-19T09:00:00Z", SS2),
]


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(DDL)
    for contact_id, row in CONTACTS.items():
        values = dict(row)
        email = str(values["email"])
        values["email_domains"] = [email.split("@", 1)[1]]
        for array_or_object in ("alternate_emails", "list_ids", "email_domains", "custom_fields"):
            if array_or_object in values:
                values[array_or_object] = json.dumps(values[array_or_object])
        columns = ["contact_id", *values]
        placeholders = ", ".join("?" for _ in columns)
        conn.execute(
            f"INSERT INTO contacts ({', '.join(columns)}) VALUES ({placeholders})",
            [contact_id, *values.values()],
        )
    conn.executemany(
        "INSERT INTO events (contact_id, event_type, event_timestamp, data) VALUES (?, ?, ?, ?)",
        [
            (contact_id, event_type, at, json.dumps({"payload": {"unique_args": {"singlesend_id": ss}}}))
            for contact_id, event_type, at, ss in EVENTS
        ],
    )
    yield conn
    conn.close()


def run(conn: sqlite3.Connection, compiled: CompiledQuery, now: str = NOW) -> list[str]:
    rows = conn.execute(compiled.sql, {**compiled.params, "now": now}).fetchall()
    assert all(len(row) == 1 for row in rows), "the compiled query must return one column"
    return [row[0] for row in rows]


def members(conn: sqlite3.Connection, query_dsl: str) -> set[str]:
    ids = run(conn, compile_query(query_dsl, CUSTOM_FIELDS))
    assert len(ids) == len(set(ids)), f"duplicate contact ids from {query_dsl!r}: {ids}"
    return set(ids)


# -- SendGrid's examples (reference §3) ------------------------------------------------------

ALL = "SELECT contact_id, updated_at FROM contact_data"
ALL_C = "SELECT c.contact_id, c.updated_at FROM contact_data c"

REFERENCE_EXAMPLES = [
    pytest.param("SELECT contact_id, updated_at FROM contact_data", EVERYONE, id="select-all"),
    pytest.param(
        "SELECT c.contact_id, c.updated_at FROM contact_data as c "
        "JOIN event_data as e ON c.contact_id= e.contact_id WHERE e.event_type = 'click'",
        {"alice", "dan"},
        id="clicked-join",
    ),
    pytest.param(
        "SELECT c.contact_id, c.updated_at FROM contact_data AS c "
        "WHERE c.first_name='John' AND c.last_name='Doe'",
        {"alice"},
        id="first-and-last-name",
    ),
    pytest.param(
        "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.email LIKE '%gmail.com%'",
        {"alice", "carol"},
        id="like",
    ),
    pytest.param(
        "SELECT c.contact_id, c.updated_at FROM contact_data AS c "
        "WHERE array_contains(c.alternate_emails,'alternate@gmail.com')",
        {"alice"},
        id="array-contains-single",
    ),
    pytest.param(
        "SELECT c.contact_id, c.updated_at FROM contact_data AS c "
        "WHERE array_contains(c.list_ids,['aaa','bbb'])",
        {"alice", "bob", "dan"},
        id="array-contains-any-of-list",
    ),
    pytest.param(
        "SELECT c.contact_id, c.updated_at FROM contact_data AS c "
        "WHERE c.first_name!='Dave' OR c.first_name IS NULL",
        {"alice", "carol", "dan"},
        id="not-equal-or-null",
    ),
    pytest.param(
        "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.updated_at<'2024-06-19T00:00:00Z'",
        {"alice", "dan"},
        id="updated-before",
    ),
    pytest.param(
        "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.my_number_custom_field=12",
        {"alice"},
        id="custom-field-number",
    ),
    pytest.param(
        f"""SELECT c.contact_id, c.updated_at FROM contact_data c
        JOIN event_data e1 ON c.contact_id = e1.contact_id
        WHERE e1.event_source = 'mail' AND e1.event_type = 'processed'
          AND e1.DATA:payload.unique_args.singlesend_id = '{SS1}'
          AND c.contact_id NOT IN (SELECT e2.contact_id FROM event_data e2
              WHERE e2.event_source='mail' AND e2.event_type='open'
                AND e2.DATA:payload.unique_args.singlesend_id='{SS1}')""",
        {"bob"},
        id="engagement-processed-not-opened",
    ),
]


@pytest.mark.parametrize(("query_dsl", "expected"), REFERENCE_EXAMPLES)
def test_reference_examples_select_exactly_the_matching_contacts(
    db: sqlite3.Connection, query_dsl: str, expected: set[str]
) -> None:
    assert members(db, query_dsl) == expected


def test_only_event_queries_are_flagged_as_engagement() -> None:
    assert not compile_query(ALL).uses_events
    joined = f"{ALL_C} JOIN event_data e ON c.contact_id = e.contact_id"
    assert compile_query(joined).uses_events
    subquery = f"{ALL} WHERE contact_id IN (SELECT contact_id FROM event_data)"
    assert compile_query(subquery).uses_events


# -- more of the language --------------------------------------------------------------------

MORE_QUERIES = [
    # timestamp literals in every common spelling compare like the stored format
    (
        f"{ALL} WHERE updated_at < '2024-06-19 00:00:00'",
        {"alice", "dan"},
    ),
    (f"{ALL} WHERE updated_at < '2024-06-19';", {"alice", "dan"}),
    (
        f"{ALL} WHERE updated_at <= '2024-06-19'",
        {"alice", "bob", "dan"},
    ),
    (
        f"{ALL} WHERE updated_at = '2024-06-19T02:00:00+02:00'",
        {"bob"},
    ),
    (
        f"{ALL} WHERE updated_at >= '2024-06-18T23:59:59.900Z'",
        {"bob", "carol", "dan"},
    ),
    (
        f"{ALL} WHERE updated_at BETWEEN '2024-06-18' AND '2024-06-19'",
        {"alice", "bob", "dan"},
    ),
    (
        f"{ALL} WHERE created_at IN ('2024-01-01', '2024-03-01 00:00:00')",
        {"alice", "carol"},
    ),
    (
        f"{ALL} WHERE updated_at > TO_TIMESTAMP('2024-06-19')",
        {"carol"},
    ),
    (f"{ALL} WHERE updated_at > '2024-06-19'::timestamp", {"carol"}),
    # relative to the emulator clock (:now = 2024-06-20T12:00:00Z)
    (
        f"{ALL} WHERE updated_at > CURRENT_TIMESTAMP - INTERVAL '1 day'",
        {"carol"},
    ),
    (
        f"{ALL} WHERE updated_at > DATEADD(day, -2, CURRENT_TIMESTAMP())",
        {"bob", "carol", "dan"},
    ),
    (
        f"{ALL} WHERE updated_at >= CURRENT_DATE - INTERVAL '1 day 12 hours'",
        {"bob", "carol", "dan"},
    ),
    (
        f"{ALL} WHERE updated_at + INTERVAL '2 days' > NOW()",
        {"bob", "carol", "dan"},
    ),
    # DATEDIFF counts unit boundaries crossed, as Snowflake does
    (f"{ALL} WHERE DATEDIFF(day, updated_at, CURRENT_TIMESTAMP()) <= 1", {"bob", "carol"}),
    (f"{ALL} WHERE DATEDIFF(hour, updated_at, '2024-06-19T01:30:00Z') = 1", {"bob"}),
    (f"{ALL} WHERE DATEDIFF(month, created_at, CURRENT_DATE) = 3", {"carol"}),
    (f"{ALL} WHERE DATEDIFF('year', created_at, '2025-01-01') = 1", EVERYONE),
    # custom fields: case-insensitive names, numbers, dates, text
    (f"{ALL} WHERE MY_NUMBER_CUSTOM_FIELD > 10", {"alice", "dan"}),
    (f"{ALL} WHERE my_number_custom_field = 7", {"bob"}),
    (f"{ALL} WHERE my_number_custom_field BETWEEN 5 AND 12", {"alice", "bob"}),
    (f"{ALL} WHERE my_number_custom_field IN (7, 12)", {"alice", "bob"}),
    (f"{ALL} WHERE my_number_custom_field NOT IN (7)", {"alice", "dan"}),
    (f"{ALL} WHERE favourite_colour = 'blue'", {"alice"}),
    (f"{ALL} WHERE my_number_custom_field * 2 = 25", {"dan"}),
    (f"{ALL} WHERE my_number_custom_field % 7 = 0", {"bob"}),
    (f"{ALL} WHERE birthday < '2000-01-01'", {"alice"}),
    (f"{ALL} WHERE birthday = '2001-02-03'", {"bob"}),
    (f"{ALL} WHERE favourite_colour IS NULL", {"bob", "dan"}),
    (f"{ALL} WHERE favourite_colour NOT IN ('red')", {"alice"}),
    # the rest of the predicate grammar
    (f"{ALL} WHERE email NOT LIKE '%gmail.com'", {"bob", "dan"}),
    (f"{ALL} WHERE email ILIKE 'ALICE%'", {"alice"}),
    (
        f"{ALL} WHERE city IN ('Denver', 'Austin')",
        {"alice", "bob", "dan"},
    ),
    (f"{ALL} WHERE NOT (city = 'Denver') ", {"bob"}),
    (
        f"{ALL} WHERE city IS NOT NULL AND last_name != 'Doe'",
        {"bob", "dan"},
    ),
    (f"{ALL} WHERE lower(first_name) = 'john'", {"alice", "dan"}),
    (
        f"{ALL} WHERE first_name || ' ' || last_name = 'John Smith'",
        {"dan"},
    ),
    ("SELECT CONTACT_ID, UPDATED_AT FROM CONTACT_DATA WHERE FIRST_NAME = 'Dave'", {"bob"}),
    # arrays
    (f"{ALL} WHERE array_contains(list_ids, 'bbb')", {"bob", "dan"}),
    (
        f"{ALL} WHERE NOT array_contains(list_ids, 'aaa')",
        {"bob", "carol"},
    ),
    (
        f"{ALL} WHERE array_contains('aaa', list_ids)",
        {"alice", "dan"},
    ),
    (
        f"{ALL} WHERE array_contains(email_domains, 'gmail.com')",
        {"alice", "carol"},
    ),
    (f"{ALL} WHERE array_contains(list_ids, [])", set()),
    (f"{ALL} WHERE ARRAY_SIZE(list_ids) = 2", {"dan"}),
    (f"{ALL} WHERE list_ids IS NULL", {"carol"}),
    # events
    (
        f"{ALL} WHERE contact_id IN (SELECT contact_id FROM event_data WHERE event_type = 'click')",
        {"alice", "dan"},
    ),
    (
        f"{ALL_C} WHERE NOT c.contact_id IN "
        "(SELECT e.contact_id FROM event_data e WHERE e.event_type = 'processed')",
        {"carol"},
    ),
    (
        f"{ALL_C} WHERE EXISTS "
        "(SELECT contact_id FROM event_data e WHERE e.contact_id = c.contact_id AND e.event_type = 'open')",
        {"alice"},
    ),
    (
        f"{ALL_C} JOIN event_data e ON contact_id = contact_id WHERE e.timestamp >= '2024-06-15'",
        {"alice", "dan"},
    ),
    (
        "SELECT DISTINCT c.contact_id, c.updated_at FROM contact_data c "
        "JOIN event_data e ON (e.contact_id = c.contact_id) WHERE e.event_type = 'open'",
        {"alice"},
    ),
    (
        f"{ALL_C} INNER JOIN event_data e USING (contact_id) "
        "WHERE e.event_timestamp > CURRENT_TIMESTAMP - INTERVAL '36 hours'",
        {"dan"},
    ),
    (
        "SELECT contact_data.contact_id, contact_data.updated_at FROM contact_data JOIN event_data "
        "ON contact_data.contact_id = event_data.contact_id WHERE event_data.event_type = 'open'",
        {"alice"},
    ),
    (
        f"{ALL_C} JOIN event_data ON contact_id "
        f"WHERE event_type = 'processed' AND DATA['payload']['unique_args']['singlesend_id'] = '{SS2}'",
        {"dan"},
    ),
    (
        f"{ALL_C} "
        "JOIN event_data o ON c.contact_id = o.contact_id JOIN event_data k ON k.contact_id = c.contact_id "
        "WHERE o.event_type = 'open' AND k.event_type = 'click'",
        {"alice"},
    ),
    # last-event query: MAX(...) AS alias with GROUP BY / HAVING
    (
        "SELECT c.contact_id, c.updated_at, MAX(e.event_timestamp) AS last_click FROM contact_data c "
        "JOIN event_data e ON c.contact_id = e.contact_id WHERE e.event_type = 'click' "
        "GROUP BY c.contact_id, c.updated_at HAVING last_click < '2024-06-19'",
        {"alice"},
    ),
    (
        "SELECT c.contact_id, c.updated_at, MAX(e.event_timestamp) AS last_event FROM contact_data c "
        "JOIN event_data e ON c.contact_id = e.contact_id GROUP BY c.contact_id "
        "HAVING MAX(e.event_timestamp) > DATEADD(hour, -60, CURRENT_TIMESTAMP)",
        {"alice", "dan"},
    ),
]


@pytest.mark.parametrize(("query_dsl", "expected"), MORE_QUERIES)
def test_language_features_select_exactly_the_matching_contacts(
    db: sqlite3.Connection, query_dsl: str, expected: set[str]
) -> None:
    assert members(db, query_dsl) == expected


def test_relative_time_follows_the_bound_clock(db: sqlite3.Connection) -> None:
    compiled = compile_query(f"{ALL} WHERE updated_at > CURRENT_TIMESTAMP - INTERVAL '1 day'")
    assert set(run(db, compiled, now="2024-06-19T09:00:00Z")) == {"alice", "bob", "carol", "dan"}
    assert set(run(db, compiled, now="2024-06-21T12:00:00Z")) == set()


def test_literals_are_bound_parameters_never_spliced_into_sql(db: sqlite3.Connection) -> None:
    hostile = "x'); DROP TABLE contacts; --"
    compiled = compile_query(
        f"{ALL} WHERE first_name = '{hostile.replace(chr(39), chr(39) * 2)}'"
        " AND my_number_custom_field = 12345",
        CUSTOM_FIELDS,
    )
    assert "DROP" not in compiled.sql and "12345" not in compiled.sql
    assert hostile in compiled.params.values() and 12345 in compiled.params.values()
    assert run(db, compiled) == []
    assert db.execute("SELECT count(*) FROM contacts").fetchone()[0] == len(CONTACTS)


def test_unknown_custom_field_is_a_rule_error_until_it_is_defined() -> None:
    query_dsl = f"{ALL} WHERE shoe_size = 44"
    with pytest.raises(QueryRuleError, match="shoe_size"):
        compile_query(query_dsl)
    assert "custom_fields" in compile_query(query_dsl, ["Shoe_Size"]).sql


# -- SendGrid's rules ------------------------------------------------------------------------

RULE_VIOLATIONS = [
    pytest.param(
        "SELECT contact_id, updated_at, email FROM contact_data",
        "email cannot be selected",
        id="extra-column",
    ),
    pytest.param("SELECT contact_id FROM contact_data", "missing: updated_at", id="missing-updated-at"),
    pytest.param("SELECT updated_at FROM contact_data", "missing: contact_id", id="missing-contact-id"),
    pytest.param("SELECT * FROM contact_data", "SELECT \\*", id="star"),
    pytest.param("SELECT contact_id updated_at FROM contact_data", "comma missing", id="alias-missing-comma"),
    pytest.param(
        "SELECT contact_id, contact_id, updated_at FROM contact_data", "selected twice", id="duplicate"
    ),
    pytest.param(
        "SELECT c.contact_id, c.updated_at, MAX(e.event_timestamp) FROM contact_data c "
        "JOIN event_data e ON c.contact_id = e.contact_id",
        "needs an alias",
        id="max-without-alias",
    ),
    pytest.param("SELECT contact_id, updated_at FROM contacts", "unknown table 'contacts'", id="wrong-table"),
    pytest.param(
        "SELECT contact_id, updated_at FROM event_data", "must be contact_data", id="from-event-data"
    ),
    pytest.param(
        f"{ALL_C} JOIN event_data e ON c.email = e.contact_id",
        "ON contact_id = contact_id only",
        id="join-on-other-column",
    ),
    pytest.param(
        f"{ALL_C} JOIN event_data e ON c.contact_id = e.contact_id AND e.event_type = 'open'",
        "ON contact_id = contact_id only",
        id="join-on-extra-condition",
    ),
    pytest.param(
        f"{ALL_C}, event_data e WHERE c.contact_id = e.contact_id",
        "must be joined with JOIN ... ON contact_id = contact_id",
        id="comma-join",
    ),
    pytest.param(
        f"{ALL_C} LEFT JOIN event_data e ON c.contact_id = e.contact_id",
        "LEFT JOIN",
        id="left-join",
    ),
    pytest.param(
        f"{ALL_C} JOIN contact_data d ON c.contact_id = d.contact_id",
        "must be event_data",
        id="self-join",
    ),
    pytest.param("DELETE FROM contact_data", "DELETE is not allowed", id="delete"),
    pytest.param(
        "DELETE FROM contact_data WHERE email = 'a@b.c'", "DELETE is not allowed", id="delete-where"
    ),
    pytest.param("UPDATE contact_data SET email = 'x'", "UPDATE is not allowed", id="update"),
    pytest.param("INSERT INTO contact_data (email) VALUES ('x')", "INSERT is not allowed", id="insert"),
    pytest.param("DROP TABLE contact_data", "DROP is not allowed", id="drop"),
    pytest.param("TRUNCATE TABLE contact_data", "TRUNCATE is not allowed", id="truncate"),
    pytest.param(
        "SELECT contact_id, updated_at FROM contact_data; DELETE FROM contact_data",
        "exactly one",
        id="two-statements",
    ),
    pytest.param(
        f"{ALL} UNION SELECT contact_id, updated_at FROM contact_data",
        "single plain SELECT",
        id="union",
    ),
    pytest.param(
        f'{ALL} WHERE first_name = "John"',
        "single quotes",
        id="double-quoted-text",
    ),
    pytest.param(
        f"{ALL} WHERE shoe_size = 44",
        "shoe_size",
        id="unknown-column",
    ),
    pytest.param(
        f"{ALL_C} WHERE c.event_type = 'open'",
        "unknown column c.event_type",
        id="event-column-on-contacts",
    ),
    pytest.param(
        f"{ALL_C} JOIN event_data e ON c.contact_id = e.contact_id WHERE e.email = 'x'",
        "event_data columns are",
        id="contact-column-on-events",
    ),
    pytest.param(
        f"{ALL_C} WHERE x.city = 'a'",
        "alias 'x'",
        id="bad-alias",
    ),
    pytest.param("", "empty", id="empty-string"),
    pytest.param("   \n ", "empty", id="blank-string"),
    pytest.param(";", "no statement", id="only-semicolon"),
    pytest.param(f"{ALL} ORDER BY updated_at", "ORDER BY", id="order-by"),
    pytest.param(f"{ALL} LIMIT 10", "LIMIT 10", id="limit"),
    pytest.param(
        f"{ALL} WHERE contact_id IN (SELECT email FROM contact_data)",
        "select only contact_id",
        id="subquery-selects-other-column",
    ),
    pytest.param(
        f"{ALL} WHERE email IN (SELECT contact_id FROM event_data)",
        "only contact_id can be matched",
        id="subquery-on-other-column",
    ),
    pytest.param(f"{ALL} WHERE list_ids = 'aaa'", "is an array", id="array-eq"),
    pytest.param(
        f"{ALL} WHERE array_contains(city, 'x')",
        "needs one array column",
        id="array-contains-on-text",
    ),
    pytest.param(
        f"{ALL} WHERE updated_at > 'last tuesday'",
        "'last tuesday' is not a timestamp",
        id="non-iso-timestamp",
    ),
    pytest.param(
        f"{ALL} WHERE updated_at > NOW() - INTERVAL '3 fortnights'",
        "unsupported interval",
        id="bad-interval-unit",
    ),
    pytest.param(
        f"{ALL} WHERE updated_at - created_at > 5",
        "only ± INTERVAL",
        id="timestamp-difference",
    ),
    pytest.param(
        f"{ALL} WHERE DATEDIFF(week, created_at, updated_at) > 1",
        "unsupported DATEDIFF",
        id="datediff-weeks",
    ),
    pytest.param(
        f"{ALL} WHERE MD5(email) = 'x'",
        r"MD5\(email\)",
        id="unknown-function",
    ),
    pytest.param(
        f"{ALL} WHERE MAX(updated_at) > '2024-01-01'",
        "only in the select list and HAVING",
        id="aggregate-in-where",
    ),
    pytest.param(
        f"{ALL} WHERE city:foo = 1",
        "only to event_data DATA",
        id="path-on-city",
    ),
    pytest.param(
        f"{ALL} GROUP BY email",
        "GROUP BY may list only",
        id="group-by-email",
    ),
]


@pytest.mark.parametrize(("query_dsl", "message"), RULE_VIOLATIONS)
def test_rule_violations_are_rule_errors_naming_the_offending_piece(query_dsl: str, message: str) -> None:
    with pytest.raises(QueryRuleError, match=message):
        compile_query(query_dsl, CUSTOM_FIELDS)


SYNTAX_ERRORS = [
    pytest.param("SELECT contact_id, updated_at FROM", id="missing-table"),
    pytest.param(f"{ALL} WHERE", id="empty-where"),
    pytest.param(f"{ALL} WHERE AND", id="dangling-and"),
    pytest.param("SELECT (contact_id, updated_at FROM contact_data", id="unbalanced-paren"),
    pytest.param(f"{ALL} WHERE email = 'unterminated", id="open-quote"),
    pytest.param("hello world", id="not-a-statement"),
]


@pytest.mark.parametrize("query_dsl", SYNTAX_ERRORS)
def test_unparseable_queries_are_syntax_errors(query_dsl: str) -> None:
    with pytest.raises(QuerySyntaxError, match="query_dsl is not") as caught:
        compile_query(query_dsl)
    assert "\x1b" not in str(caught.value), "no terminal colour codes in an API message"
    assert not isinstance(caught.value, QueryRuleError)


def test_parse_error_message_points_at_the_position() -> None:
    with pytest.raises(QuerySyntaxError, match=r"line 1, column \d+"):
        compile_query(f"{ALL} WHERE AND")


# -- scale -------------------------------------------------------------------------------------


def test_a_simple_segment_over_100k_contacts_is_one_sql_statement() -> None:
    """Correctness at scale; the time is measured by the benchmark, not asserted here."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(DDL)
    conn.executemany(
        "INSERT INTO contacts (contact_id, email, list_ids, email_domains, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            (
                f"id-{n:06d}",
                f"user{n}@{'gmail.com' if n % 4 == 0 else 'example.com'}",
                json.dumps([LIST_A] if n % 3 == 0 else [LIST_B]),
                json.dumps(["gmail.com" if n % 4 == 0 else "example.com"]),
                "2024-01-01T00:00:00Z",
                "2024-06-01T00:00:00Z",
            )
            for n in range(100_000)
        ),
    )
    compiled = compile_query(f"{ALL_C} WHERE c.email LIKE '%gmail.com' AND array_contains(c.list_ids, 'aaa')")
    ids = run(conn, compiled)
    assert len(ids) == len(set(ids)) == len([n for n in range(100_000) if n % 12 == 0])
    conn.close()


# -- time helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("2024-06-19", "2024-06-19T00:00:00Z"),
        ("2024-06-19 13:45", "2024-06-19T13:45:00Z"),
        ("2024-06-19T13:45:10.999Z", "2024-06-19T13:45:10Z"),
        ("2024-06-19T01:00:00-05:00", "2024-06-19T06:00:00Z"),
        ("2024-06-19 01:00:00 UTC", "2024-06-19T01:00:00Z"),
        ("2024-13-01", None),
        ("20240619", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_timestamp_literals_normalise_to_the_stored_format(text: str, stored: str | None) -> None:
    assert normalise_timestamp(text) == stored


@pytest.mark.parametrize(
    ("quantity", "unit", "modifiers"),
    [
        ("10", "DAY", ["+10 days"]),
        ("-3", "hours", ["-3 hours"]),
        ("1 day 2 hours", None, ["+1 days", "+2 hours"]),
        ("2 weeks", None, ["+14 days"]),
        ("3 fortnights", None, None),
        ("ten", "day", None),
        ("5 days and more", None, None),
    ],
)
def test_intervals_become_sqlite_date_modifiers(
    quantity: str, unit: str | None, modifiers: list[str] | None
) -> None:
    assert interval_modifiers(quantity, unit) == modifiers
