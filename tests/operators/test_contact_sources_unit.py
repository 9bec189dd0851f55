"""Issue 19 part 2: the SQL source streams on drivers whose plain cursor holds the whole result.

Narrow unit tests with stand-ins for the drivers' connections (named like the real modules, as
the source tells drivers by their module); the bench runs the real PostgreSQL.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from airflow_provider_sgseg.operators import _contact_sources
from airflow_provider_sgseg.operators._contact_sources import SqlSource, streaming_cursor

RESULT = [(f"c{n}@example.com", f"C{n}") for n in range(12_345)]


class FakeCursor:
    """A cursor over RESULT: ``buffered`` ones load it all on execute (like psycopg2's plain cursor)."""

    def __init__(self, name: str | None = None, kind: Any = None) -> None:
        self.name = name
        self.kind = kind
        self.description: Any = None
        self.position = 0
        self.largest_fetch = 0
        self.itersize = 2000

    def execute(self, sql: str, parameters: Any = None) -> None:
        if self.name is None:  # psycopg2 describes a named cursor only after its first fetch
            self.description = (("email",), ("first_name",))

    def fetchmany(self, size: int) -> list[tuple[str, str]]:
        self.description = (("email",), ("first_name",))
        self.largest_fetch = max(self.largest_fetch, size)
        page = RESULT[self.position : self.position + size]
        self.position += len(page)
        return page

    def close(self) -> None:
        pass


def fake_connection(module: str) -> Any:
    cursors: list[FakeCursor] = []

    def cursor(self: Any, *args: Any, name: str | None = None) -> FakeCursor:
        made = FakeCursor(name, args[0] if args else None)
        cursors.append(made)
        return made

    cls = type("connection", (), {"cursor": cursor, "close": lambda self: None, "__module__": module})
    connection = cls()
    connection.cursors = cursors
    return connection


@pytest.mark.parametrize("module", ["psycopg2.extensions", "psycopg"])
def test_postgresql_drivers_get_a_named_server_side_cursor(module: str) -> None:
    cursor = streaming_cursor(fake_connection(module))
    assert cursor.name and cursor.name.startswith("sgseg_contacts_")
    assert cursor.itersize == _contact_sources.SQL_FETCH_ROWS


@pytest.mark.parametrize("driver", ["MySQLdb", "pymysql"])
def test_mysql_drivers_get_an_unbuffered_cursor(driver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cursors = types.ModuleType(f"{driver}.cursors")
    cursors.SSCursor = object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, f"{driver}.cursors", cursors)
    cursor = streaming_cursor(fake_connection(f"{driver}.connections"))
    assert cursor.kind is cursors.SSCursor  # type: ignore[attr-defined]


def test_other_drivers_keep_their_plain_cursor() -> None:
    cursor = streaming_cursor(fake_connection("sqlite3"))
    assert cursor.name is None and cursor.kind is None


def test_the_sql_source_streams_both_passes_through_a_named_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    connection = fake_connection("psycopg2.extensions")

    class Hook(DbApiHook):  # type: ignore[misc]
        conn_name_attr = "warehouse_conn_id"

        def get_conn(self) -> Any:
            return connection

    found = types.SimpleNamespace(get_hook=lambda: Hook())
    monkeypatch.setattr(_contact_sources, "SQL_FETCH_ROWS", 1000)
    from airflow_provider_sgseg import version_compat

    monkeypatch.setattr(version_compat.BaseHook, "get_connection", classmethod(lambda cls, conn_id: found))
    source = SqlSource("warehouse", "SELECT email, first_name FROM customers", None)
    assert source.columns() == ["email", "first_name"]  # described after a first fetch
    rows = list(source.rows())
    assert len(rows) == len(RESULT) and rows[-1] == (
        len(RESULT),
        {"email": "c12344@example.com", "first_name": "C12344"},
    )
    assert all(cursor.name for cursor in connection.cursors)  # every pass on a server-side cursor
    assert max(cursor.largest_fetch for cursor in connection.cursors) == 1000  # never the whole result


# ------------------------------------------------- issue 23: where a bad row is in its file


def _rows_and_places(source: Any) -> list[tuple[int, str | None]]:
    return [(number, source.where(number)) for number, _ in source.rows()]


def test_a_csv_row_is_located_by_its_line(tmp_path: Any) -> None:
    from airflow_provider_sgseg.operators._contact_sources import FileSource

    path = tmp_path / "contacts.csv"
    path.write_text('email,note\na@x.co,one\nb@x.co,"two\nlines"\nc@x.co,three\n', encoding="utf-8")
    source = FileSource(str(path), None)
    assert _rows_and_places(source) == [
        (1, "line 2 of contacts.csv"),
        (2, "line 4 of contacts.csv"),  # a record spanning lines: its last one
        (3, "line 5 of contacts.csv"),
    ]
    assert source.where(1) is None  # only the row last given is located


def test_an_ndjson_row_is_located_by_its_line_past_blank_lines(tmp_path: Any) -> None:
    from airflow_provider_sgseg.operators._contact_sources import FileSource

    path = tmp_path / "people.ndjson"
    path.write_text('{"email": "a@x.co"}\n\n{"email": "b@x.co"}\n{bad\n', encoding="utf-8")
    source = FileSource(str(path), None)
    rows = source.rows()
    assert [next(rows)[0], source.where(1)] == [1, "line 1 of people.ndjson"]
    assert [next(rows)[0], source.where(2)] == [2, "line 3 of people.ndjson"]
    with pytest.raises(_contact_sources.SendGridRowError) as caught:
        next(rows)
    assert str(caught.value) == "row 3 (line 4 of people.ndjson): not valid JSON: '{bad'"


def test_a_csv_row_with_too_many_values_is_located(tmp_path: Any) -> None:
    from airflow_provider_sgseg.operators._contact_sources import FileSource

    path = tmp_path / "contacts.csv"
    path.write_text("email\na@x.co\nb@x.co,extra\n", encoding="utf-8")
    with pytest.raises(_contact_sources.SendGridRowError) as caught:
        list(FileSource(str(path), None).rows())
    assert str(caught.value) == ("row 2 (line 3 of contacts.csv): more values than header columns: ['extra']")


def test_list_and_sql_rows_are_located_by_their_number_alone() -> None:
    from airflow_provider_sgseg.operators._contact_sources import ListSource

    assert ListSource([{"email": "a@x.co"}]).where(1) is None
    assert SqlSource("conn", "SELECT 1", None).where(1) is None


class FlakyStorage:
    """An object store path whose open fails as a network hiccup would."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def open(self, mode: str) -> Any:
        raise self.error


def test_only_a_missing_or_forbidden_source_fails_without_retries(tmp_path: Any) -> None:
    from airflow_provider_sgseg.exceptions import SendGridInputError
    from airflow_provider_sgseg.operators._contact_sources import FileSource

    source = FileSource(str(tmp_path / "rows.csv"), None)
    for definitive in (FileNotFoundError("gone"), PermissionError("denied")):
        source.path = FlakyStorage(definitive)
        with pytest.raises(SendGridInputError, match="cannot be opened"):  # an AirflowFailException
            source.columns()
    source.path = FlakyStorage(ConnectionResetError("reset by peer"))
    with pytest.raises(ConnectionResetError):  # a plain error: the task's retries apply
        source.columns()


# A failed source query: only an answer a retry would meet again fails without retries.


class ProgrammingError(Exception):  # as PEP 249 drivers name them (psycopg2, MySQLdb, ...)
    pass


class UndefinedTable(ProgrammingError):  # psycopg2.errors.UndefinedTable
    pass


class OperationalError(Exception):  # a lost connection, a failover, a lock
    pass


class InterfaceError(Exception):
    pass


def test_only_bad_queries_are_definitive() -> None:
    import sqlite3

    from airflow_provider_sgseg.operators._contact_sources import query_error_is_definitive

    assert query_error_is_definitive(ProgrammingError("syntax error at or near FROM"))
    assert query_error_is_definitive(UndefinedTable('relation "nowhere" does not exist'))
    assert query_error_is_definitive(sqlite3.OperationalError("no such table: nowhere"))
    assert query_error_is_definitive(sqlite3.OperationalError('near "SELEC": syntax error'))
    assert not query_error_is_definitive(OperationalError("server closed the connection unexpectedly"))
    assert not query_error_is_definitive(InterfaceError("connection already closed"))
    assert not query_error_is_definitive(sqlite3.OperationalError("database is locked"))
    assert not query_error_is_definitive(TimeoutError("timed out"))


def test_a_query_that_loses_its_connection_stays_retriable(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_sgseg.exceptions import SendGridInputError
    from airflow_provider_sgseg.version_compat import AirflowException, AirflowFailException

    class LostCursor:
        def execute(self, *args: Any) -> None:
            raise OperationalError("server closed the connection unexpectedly")

        def close(self) -> None:
            pass

    class Connection:
        def close(self) -> None:
            pass

    class Hook:
        def get_conn(self) -> Connection:
            return Connection()

    class Conn:
        def get_hook(self) -> Hook:
            return Hook()

    monkeypatch.setattr(_contact_sources, "streaming_cursor", lambda connection: LostCursor())
    monkeypatch.setattr(
        "airflow_provider_sgseg.version_compat.BaseHook.get_connection", lambda conn_id: Conn()
    )
    monkeypatch.setattr("airflow.providers.common.sql.hooks.sql.DbApiHook", Hook)  # the SQL-hook check
    with pytest.raises(AirflowException, match="server closed the connection") as caught:
        SqlSource("warehouse", "SELECT email FROM people", None).columns()
    assert not isinstance(caught.value, (AirflowFailException, SendGridInputError))
