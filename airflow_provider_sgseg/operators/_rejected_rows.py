"""Rejected rows of an upsert where a team can query them: a CSV file at an ``ObjectStoragePath``
and, optionally, a table reached through the source's ``DbApiHook``.

One record per row refused locally (the validation pass) or rejected by SendGrid (the lines of
the jobs' ``errors_url`` files). Each try rewrites the file whole and replaces the table rows of
its task instance, so a retried task never writes a rejected row twice.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridRowError
from airflow_provider_sgseg.operators._contact_files import csv_records, text_lines
from airflow_provider_sgseg.rules.batching import row_at

COLUMNS = ("origin", "row_number", "source_line", "column_name", "value", "rule", "job_id")
TASK_COLUMNS = ("dag_id", "task_id", "run_id", "map_index")  # the table's key of one task instance
MAX_QUOTED = 10_000  # characters of a source line or value quoted in one record
INSERT_ROWS_PER_COMMIT = 1_000
# The errors file's columns are not documented (INFERRED: the emulator writes row_number,
# identifier, message): read by any of these names, ignoring case.
_POSITION = ("row_number", "row", "line", "line_number")
_MESSAGE = ("message", "error", "errors", "reason")
_IDENTIFIER = ("identifier", "email", "contact", "external_id", "phone_number_id", "anonymous_id")


def _cut(text: str) -> str:
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "…"


def _quoted(value: Any) -> str:
    if value is None or isinstance(value, str):
        return _cut(value or "")
    return _cut(json.dumps(value, default=str, ensure_ascii=False))


def local_record(error: SendGridRowError, row: Mapping[str, Any] | None) -> list[str]:
    """The record of a row refused locally: its row, the row as JSON, column, value and rule."""
    source = _quoted(dict(row)) if row is not None else ""
    return ["local", str(error.row), source, _cut(error.column), _quoted(error.value), _cut(error.rule), ""]


def sendgrid_records(
    lines: Iterable[str], where: str, job_id: str, runs: Sequence[Sequence[int]] | None
) -> Iterator[list[str]]:
    """The records of one job's errors file: SendGrid's message as the rule, the identifier it
    names as the value, its line as the source line, and the source row when the file's row
    number falls within the job's part (``runs``, see :func:`row_at`)."""
    for record in csv_records(lines, where):
        named = {str(key).strip().lower(): value for key, value in record.items() if key is not None}
        position = next((named[name] for name in _POSITION if named.get(name)), "")
        message = next((named[name] for name in _MESSAGE if named.get(name)), "")
        identifier = next((named[name] for name in _IDENTIFIER if named.get(name)), "")
        row = row_at(runs, int(position)) if runs and str(position).strip().isdigit() else None
        source = _quoted({key: value for key, value in record.items() if key is not None})
        # Every field is cut: the file must read back within its line bound (published_records).
        quoted = [_quoted(identifier), _cut(message), _cut(job_id)]
        yield ["sendgrid", "" if row is None else str(row), source, "", *quoted]


class RejectedRows:
    """The rejected rows file of one try, spooled on local disk until :meth:`publish`."""

    def __init__(self, path: Any) -> None:
        from airflow.sdk import ObjectStoragePath

        self.path = path if isinstance(path, ObjectStoragePath) else ObjectStoragePath(str(path))
        self._spool: BinaryIO = tempfile.TemporaryFile()  # noqa: SIM115 (closed by publish)
        self._text = io.TextIOWrapper(self._spool, "utf-8", newline="", write_through=True)
        self._writer = csv.writer(self._text)
        self._writer.writerow(COLUMNS)
        self.count = 0

    def add(self, record: Sequence[str]) -> None:
        self._writer.writerow(record)
        self.count += 1

    def load(self) -> None:
        """Start from the file as published by this try's first part (before a deferral)."""
        for record in published_records(self.path):
            self.add(record)

    def publish(self) -> None:
        """Write the spool to ``path`` (replacing it) and close the spool."""
        self._text.detach()
        with contextlib.closing(self._spool):
            self._spool.seek(0)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("wb") as target:  # type: ignore[no-untyped-call]
                shutil.copyfileobj(self._spool, target, 1024 * 1024)


def published_records(path: Any) -> Iterator[list[str]]:
    """The records of a published rejected rows file, as :data:`COLUMNS` values."""
    # A record quotes at most 2 x MAX_QUOTED characters (4 bytes each at most) and a short rule.
    max_line = 10 * MAX_QUOTED * 4
    with path.open("rb") as published:
        for record in csv_records(text_lines(published, str(path), max_line), str(path)):
            yield [record.get(name) or "" for name in COLUMNS]


def replace_table_rows(hook: Any, table: str, task: Mapping[str, Any], path: Any) -> int:
    """Replace ``table``'s rows of this task instance by the records of the published ``path``,
    through ``hook`` (a ``DbApiHook``): rows inserted. The table has the columns
    :data:`TASK_COLUMNS` + :data:`COLUMNS`."""
    if not table.replace("_", "").replace(".", "").isalnum():
        raise SendGridInputError("rejected_rows_table", table, "must be a plain [schema.]table name")
    key = [task[name] for name in TASK_COLUMNS]
    where = " AND ".join(f"{name} = {hook.placeholder}" for name in TASK_COLUMNS)
    hook.run(f"DELETE FROM {table} WHERE {where}", parameters=key)
    inserted = 0
    batch: list[list[Any]] = []
    for record in published_records(path):
        batch.append([*key, *(value or None for value in record)])
        if len(batch) >= INSERT_ROWS_PER_COMMIT:
            hook.insert_rows(table, batch, target_fields=[*TASK_COLUMNS, *COLUMNS])
            inserted += len(batch)
            batch = []
    if batch:
        hook.insert_rows(table, batch, target_fields=[*TASK_COLUMNS, *COLUMNS])
        inserted += len(batch)
    return inserted
