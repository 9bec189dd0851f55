"""Where contacts come from: a list of dicts, a SQL query (any common-sql ``DbApiHook``), or a
CSV / NDJSON file at an Airflow ``ObjectStoragePath``. Every source streams its rows and can be
read again (the upsert reads it twice: validate, then send), numbering rows 1, 2, ... in order.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import importlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from airflow_provider_sgseg.exceptions import SendGridFileError, SendGridInputError, SendGridRowError
from airflow_provider_sgseg.operators._contact_files import csv_records, text_lines
from airflow_provider_sgseg.rules import validation
from airflow_provider_sgseg.rules.batching import DEFAULT_MAX_LINE_BYTES
from airflow_provider_sgseg.version_compat import AirflowException

SQL_FETCH_ROWS = 5_000
FILE_FORMATS = ("csv", "ndjson")
# Suffixes read as JSON lines: .json too, as SendGrid's JSON export writes one object per line.
JSON_LINES_SUFFIXES = ("ndjson", "jsonl", "json")


class ContactSource(Protocol):
    """Rows as ``(row_number, {column: value})``, the column names used, and where the row last
    given is in the source (for error messages)."""

    def columns(self) -> list[str]: ...

    def rows(self) -> Iterator[tuple[int, Mapping[str, Any]]]: ...

    def where(self, row_number: int) -> str | None: ...


class ListSource:
    """Contacts given as a list of dicts (e.g. templated, or an upstream task's XCom)."""

    def __init__(self, contacts: Sequence[Any] | str) -> None:
        if isinstance(contacts, str):
            contacts = validation.rendered_literal(  # type: ignore[assignment]
                "contacts", contacts, "text must be a JSON or Python list of dicts"
            )
        if isinstance(contacts, bytes | Mapping) or not isinstance(contacts, Sequence):
            raise SendGridInputError("contacts", contacts, "must be a list of dicts")
        self._contacts = contacts

    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for _, row in self.rows():
            seen.update(dict.fromkeys(str(key) for key in row))
        return list(seen)

    def where(self, row_number: int) -> str | None:
        """Nothing beyond the row number: row N is the N-th item of the list."""
        return None

    def rows(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        for number, row in enumerate(self._contacts, start=1):
            if not isinstance(row, Mapping):
                raise SendGridRowError(number, "*", row, "each contact must be a dict of column -> value")
            yield number, nested_custom_fields_flattened(number, row)


def nested_custom_fields_flattened(number: int, row: Mapping[str, Any]) -> Mapping[str, Any]:
    """A row whose ``custom_fields`` is an object (a JSON export's line, an upsert body's contact)
    with those fields as columns of their own, by their keys (names or ids)."""
    nested = row.get("custom_fields")
    if not isinstance(nested, Mapping):
        return row
    flat = {key: value for key, value in row.items() if key != "custom_fields"}
    for key, value in nested.items():
        if key in flat:
            raise SendGridRowError(
                number, f"custom_fields.{key}", value, f"column {key!r} is also given outside custom_fields"
            )
        flat[str(key)] = value
    return flat


# SQLite reports a bad query as an OperationalError, like a locked database; its words tell them apart.
_SQLITE_BAD_QUERY = (
    "no such table",
    "no such column",
    "syntax error",
    "no such function",
    "ambiguous column",
)


def query_error_is_definitive(error: BaseException) -> bool:
    """Whether a failed source query would fail again on a retry: PEP 249's ``ProgrammingError``
    (bad SQL, a missing table or column), ``DataError`` and ``NotSupportedError``, in any driver's
    subclass; SQLite's bad-query messages. Anything else (``OperationalError`` for a lost
    connection or a lock, ``InterfaceError``, a timeout) is transient."""
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & {"ProgrammingError", "DataError", "NotSupportedError"}:
        return True
    return type(error).__module__ == "sqlite3" and any(words in str(error) for words in _SQLITE_BAD_QUERY)


class SqlSource:
    """The rows of ``sql`` on Airflow connection ``conn_id`` (any ``DbApiHook``), fetched in pages
    of :data:`SQL_FETCH_ROWS`. Where a driver's plain cursor would hold the whole result in
    memory, a server-side cursor streams it (:func:`streaming_cursor`)."""

    def __init__(self, conn_id: str, sql: str, parameters: Mapping[str, Any] | Sequence[Any] | None) -> None:
        self.conn_id = conn_id
        self.sql = sql
        self.parameters = parameters

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor over the executed query; its connection is closed afterwards."""
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        from airflow_provider_sgseg.version_compat import BaseHook

        hook = BaseHook.get_connection(self.conn_id).get_hook()  # type: ignore[no-untyped-call]
        if not isinstance(hook, DbApiHook):
            raise SendGridInputError("sql_conn_id", self.conn_id, "must be a SQL connection (a DbApiHook)")
        with (
            contextlib.closing(hook.get_conn()) as connection,
            contextlib.closing(streaming_cursor(connection)) as cursor,
        ):
            try:
                if self.parameters is None:
                    cursor.execute(self.sql)
                else:
                    cursor.execute(self.sql, self.parameters)
            except Exception as error:
                if query_error_is_definitive(error):
                    raise SendGridInputError("sql", self.sql, f"the query failed: {error}") from error
                raise AirflowException(  # a lost connection, a lock, a failover: retries apply
                    f"The source query on {self.conn_id!r} failed ({type(error).__name__}: {error}); "
                    "the task's retries apply."
                ) from error
            yield cursor

    def columns(self) -> list[str]:
        with self._cursor() as cursor:
            if cursor.description is None:  # a psycopg2 named cursor describes after a fetch
                cursor.fetchmany(1)
            return _names(cursor)

    def where(self, row_number: int) -> str | None:
        """Nothing beyond the row number: row N is the N-th row of the query's result."""
        return None

    def rows(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        with self._cursor() as cursor:
            page = cursor.fetchmany(SQL_FETCH_ROWS)
            names = _names(cursor)
            number = 0
            while page:
                for values in page:
                    number += 1
                    yield number, dict(zip(names, values, strict=True))
                page = cursor.fetchmany(SQL_FETCH_ROWS)


def _names(cursor: Any) -> list[str]:
    return [str(item[0]) for item in cursor.description or ()]


# Drivers whose plain cursor fetches the whole result on execute, and how to stream instead:
# PostgreSQL (psycopg2, psycopg 3) has named (server-side) cursors, MySQL (mysqlclient, PyMySQL)
# unbuffered SSCursor classes. Other DB-API drivers of common-sql hooks fetch as they are asked.
_SERVER_SIDE_CURSORS = {"psycopg2": "named", "psycopg": "named", "MySQLdb": "SSCursor", "pymysql": "SSCursor"}


def streaming_cursor(connection: Any) -> Any:
    """A cursor of ``connection`` that fetches rows from the server as they are asked for: a
    named cursor on PostgreSQL, an unbuffered ``SSCursor`` on MySQL, else the plain cursor."""
    driver = type(connection).__module__.split(".", 1)[0]
    kind = _SERVER_SIDE_CURSORS.get(driver)
    if kind == "named":
        cursor = connection.cursor(name=f"sgseg_contacts_{uuid.uuid4().hex}")
        cursor.itersize = SQL_FETCH_ROWS
        return cursor
    if kind == "SSCursor":
        return connection.cursor(importlib.import_module(f"{driver}.cursors").SSCursor)
    return connection.cursor()


class FileSource:
    """A CSV (header row) or NDJSON (one JSON object per line) file at an ``ObjectStoragePath``
    (local, S3, GCS...), UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8"). Row N is
    the N-th data record. A name ending in ``.gz`` is gunzipped while read. Bytes that are not
    UTF-8, a line longer than ``max_line_bytes`` or a malformed CSV record raise
    :class:`SendGridFileError` naming the file and line."""

    def __init__(
        self, path: Any, file_format: str | None, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    ) -> None:
        from airflow.sdk import ObjectStoragePath

        self.max_line_bytes = max_line_bytes
        self.path = path if isinstance(path, ObjectStoragePath) else ObjectStoragePath(str(path))
        name = self.path.name.lower()
        self.gzipped = name.endswith(".gz")
        if file_format is None:
            suffix = name.removesuffix(".gz").rsplit(".", 1)[-1]
            file_format = "ndjson" if suffix in JSON_LINES_SUFFIXES else suffix
        if file_format not in FILE_FORMATS:
            raise SendGridInputError(
                "source_format", file_format, f"must be one of {', '.join(FILE_FORMATS)}"
            )
        self.file_format = file_format
        self._last = (0, 0)  # (row number, line) of the row last given

    def columns(self) -> list[str]:
        if self.file_format == "csv":
            with self._open() as stream:
                try:
                    return next(csv.reader(self._lines(stream)), [])
                except csv.Error as error:
                    raise SendGridFileError(str(self.path), f"not CSV: {error}", line=1) from None
        seen: dict[str, None] = {}
        for _, row in self.rows():
            seen.update(dict.fromkeys(row))
        return list(seen)

    def where(self, row_number: int) -> str | None:
        """``line 11 of contacts.csv`` for the row last given (its last line, for a CSV record
        spanning lines), None for another row."""
        row, line = self._last
        return f"line {line} of {self.path.name}" if row == row_number else None

    def rows(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        with self._open() as stream:
            lines = _Counted(self._lines(stream))
            records = self._csv_rows(lines) if self.file_format == "csv" else _ndjson_rows(lines)
            try:
                for number, row in records:
                    self._last = (number, lines.count)
                    yield number, row
            except SendGridRowError as error:  # a row the source itself cannot read
                error.at(f"line {lines.count} of {self.path.name}")
                raise

    def _csv_rows(self, lines: Iterable[str]) -> Iterator[tuple[int, Mapping[str, Any]]]:
        for number, row in enumerate(csv_records(lines, str(self.path)), start=1):
            if None in row:
                raise SendGridRowError(number, "*", row[None], "more values than header columns")
            yield number, row

    @contextlib.contextmanager
    def _open(self) -> Iterator[Any]:
        """The file's bytes, gunzipped (streaming) when its name ends in ``.gz``."""
        try:
            raw = self.path.open("rb")  # type: ignore[no-untyped-call]
        except (*_MISSING_OR_FORBIDDEN, ValueError) as error:
            # Definitive (no retries); any other OSError (a storage hiccup) stays retriable.
            raise SendGridInputError("source_path", str(self.path), f"cannot be opened: {error}") from error
        with raw, gzip.GzipFile(fileobj=raw) if self.gzipped else contextlib.nullcontext(raw) as stream:
            yield stream

    def _lines(self, stream: Any) -> Iterator[str]:
        return text_lines(stream, str(self.path), self.max_line_bytes)


class _Counted:
    """Lines passed through, counted: ``count`` is the number of the last line read (1-based)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.count += 1
            yield line


# Errors opening a source that a retry would meet again.
_MISSING_OR_FORBIDDEN = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _ndjson_rows(stream: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    number = 0
    for line in stream:
        if not line.strip():
            continue
        number += 1
        try:
            row = json.loads(line)
        except ValueError:
            raise SendGridRowError(number, "*", line.strip(), "not valid JSON") from None
        if not isinstance(row, dict):
            raise SendGridRowError(number, "*", row, "each line must be a JSON object")
        yield number, nested_custom_fields_flattened(number, row)
