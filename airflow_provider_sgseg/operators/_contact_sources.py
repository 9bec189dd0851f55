"""Where contacts come from: a list of dicts, a SQL query (any common-sql ``DbApiHook``), or a
CSV / NDJSON file at an Airflow ``ObjectStoragePath``. Every source streams its rows and can be
read again (the upsert reads it twice: validate, then send), numbering rows 1, 2, ... in order.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridRowError
from airflow_provider_sgseg.rules import validation

SQL_FETCH_ROWS = 5_000
FILE_FORMATS = ("csv", "ndjson")


class ContactSource(Protocol):
    """Rows as ``(row_number, {column: value})``, and the column names used."""

    def columns(self) -> list[str]: ...

    def rows(self) -> Iterator[tuple[int, Mapping[str, Any]]]: ...


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

    def rows(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        for number, row in enumerate(self._contacts, start=1):
            if not isinstance(row, Mapping):
                raise SendGridRowError(number, "*", row, "each contact must be a dict of column -> value")
            yield number, row


class SqlSource:
    """The rows of ``sql`` on Airflow connection ``conn_id`` (any ``DbApiHook``), fetched in pages."""

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
            contextlib.closing(connection.cursor()) as cursor,
        ):
            try:
                if self.parameters is None:
                    cursor.execute(self.sql)
                else:
                    cursor.execute(self.sql, self.parameters)
            except Exception as error:
                raise SendGridInputError("sql", self.sql, f"the query failed: {error}") from error
            yield cursor

    def columns(self) -> list[str]:
        with self._cursor() as cursor:
            return [str(item[0]) for item in cursor.description or ()]

    def rows(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        with self._cursor() as cursor:
            names = [str(item[0]) for item in cursor.description or ()]
            number = 0
            while page := cursor.fetchmany(SQL_FETCH_ROWS):
                for values in page:
                    number += 1
                    yield number, dict(zip(names, values, strict=True))


class FileSource:
    """A CSV (header row) or NDJSON (one JSON object per line) file at an ``ObjectStoragePath``
    (local, S3, GCS...), UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8"). Row N is
    the N-th data record. Bytes that are not UTF-8 raise :class:`SendGridInputError` naming the
    file, line and byte offset."""

    def __init__(self, path: Any, file_format: str | None) -> None:
        from airflow.sdk import ObjectStoragePath

        self.path = path if isinstance(path, ObjectStoragePath) else ObjectStoragePath(str(path))
        if file_format is None:
            suffix = self.path.suffix.lower().lstrip(".")
            file_format = "ndjson" if suffix in ("ndjson", "jsonl") else suffix
        if file_format not in FILE_FORMATS:
            raise SendGridInputError(
                "source_format", file_format, f"must be one of {', '.join(FILE_FORMATS)}"
            )
        self.file_format = file_format

    def columns(self) -> list[str]:
        if self.file_format == "csv":
            with self._open() as stream:
                return next(csv.reader(self._lines(stream)), [])
        seen: dict[str, None] = {}
        for _, row in self.rows():
            seen.update(dict.fromkeys(row))
        return list(seen)

    def rows(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        try:
            with self._open() as stream:
                if self.file_format == "csv":
                    for number, row in enumerate(csv.DictReader(self._lines(stream)), start=1):
                        if None in row:
                            raise SendGridRowError(number, "*", row[None], "more values than header columns")
                        yield number, row
                else:
                    yield from _ndjson_rows(self._lines(stream))
        except csv.Error as error:
            raise SendGridInputError("source_path", str(self.path), f"unreadable: {error}") from error

    def _open(self) -> Any:
        try:
            return self.path.open("rb")  # type: ignore[no-untyped-call]
        except (OSError, ValueError) as error:
            raise SendGridInputError("source_path", str(self.path), f"cannot be opened: {error}") from error

    def _lines(self, stream: Any) -> Iterator[str]:
        """The file's lines decoded as UTF-8 (line endings kept, for the csv module), a leading
        byte-order mark dropped. Decoded here, line by line, to name where a bad byte is."""
        offset = 0
        # readline, not iteration: Airflow 3.0's ObjectStoragePath file wrapper forwards attribute
        # access but not __iter__ (iterating it fails with "not subscriptable").
        for line_number, raw in enumerate(iter(stream.readline, b""), start=1):
            start = len(codecs.BOM_UTF8) if line_number == 1 and raw.startswith(codecs.BOM_UTF8) else 0
            try:
                yield raw[start:].decode("utf-8")
            except UnicodeDecodeError as error:
                bad = offset + start + error.start
                raise SendGridInputError(
                    "source_path",
                    str(self.path),
                    f"not UTF-8 text: byte {raw[start + error.start : start + error.end]!r} at byte offset "
                    f"{bad} (line {line_number}); save the file as UTF-8",
                ) from None
            offset += len(raw)


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
        yield number, row
