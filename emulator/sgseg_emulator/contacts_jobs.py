"""Contact jobs: upserts and CSV imports applied after a delay, deletes; their status and errors.

A job is ``pending`` until it is due (``upsert_delay`` after ``PUT /v3/marketing/contacts``,
``import_delay`` after the CSV file is uploaded), then it is applied in chunks of
``CHUNK_ROWS`` contacts (so a 1,000,000-row import never sits in memory) and ends ``completed``
(no row failed), ``errored`` (some did) or ``failed`` (all did, or the file was unprocessable).
Refused rows go to ``contact_job_errors``; ``errors_url`` serves them as a CSV file.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clock import parse_iso, to_iso
from .contact_rules import MAX_IMPORT_BYTES, MAX_IMPORT_CONTACTS, structure_problems, value_problem
from .field_definitions import FieldDefinitions, reserved_field
from .store import identifiers_of, new_id

if TYPE_CHECKING:
    import sqlite3

    from .clock import Clock
    from .config import ConfigSource
    from .file_store import FileStore
    from .store import Store

CHUNK_ROWS = 5_000
# How long an import's upload_uri accepts the file (S3 pre-signed URL lifetime): INFERRED.
UPLOAD_URL_TTL = 3600
ERRORS_FILE_HEADER = ("row_number", "identifier", "message")
_GZIP_MAGIC = b"\x1f\x8b"


def upload_name(job_id: str) -> str:
    return f"imports/{job_id}.upload"


def errors_name(job_id: str) -> str:
    return f"import-errors/{job_id}.csv"


@dataclass
class ContactJobs:
    """The ``contact_jobs`` table: creating, running and reporting upsert, import and delete jobs."""

    store: Store
    clock: Clock
    config: ConfigSource
    files: FileStore

    def _insert(self, **columns: Any) -> str:
        job_id = new_id()
        columns = {"job_id": job_id, "started_at": to_iso(self.clock.now()), **columns}
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        with self.store.lock:
            self.store.conn.execute(
                f"INSERT INTO contact_jobs ({names}) VALUES ({marks})", list(columns.values())
            )
        return job_id

    def _due_at(self, delay: float) -> str:
        return to_iso(self.clock.now() + timedelta(seconds=delay))

    # -- creating jobs ----------------------------------------------------------------------
    def submit_upsert(self, contacts: list[dict[str, Any]], list_ids: list[str]) -> str:
        """A pending upsert job for validated ``contacts``; applied ``upsert_delay`` from now."""
        return self._insert(
            job_type="upsert",
            status="pending",
            source="contacts",
            list_ids=json.dumps(list_ids),
            payload=json.dumps(contacts),
            due_at=self._due_at(self.config().upsert_delay),
            requested_count=len(contacts),
        )

    def record_delete(self, deleted: int) -> str:
        """A delete job, already completed (deletes apply at once here)."""
        now = to_iso(self.clock.now())
        return self._insert(
            job_type="delete",
            status="completed",
            source="delete",
            finished_at=now,
            requested_count=deleted,
            deleted_count=deleted,
        )

    def create_import(self, list_ids: list[str], field_mappings: list[str | None]) -> tuple[str, datetime]:
        """A CSV import waiting for its file; returns (job id, when the upload URL expires)."""
        expires = self.clock.now() + timedelta(seconds=UPLOAD_URL_TTL)
        job_id = self._insert(
            job_type="upsert",
            status="pending",
            source="csv",
            list_ids=json.dumps(list_ids),
            field_mappings=json.dumps(field_mappings),
            upload_expires_at=to_iso(expires),
        )
        return job_id, expires

    def upload_allowed(self, job_id: str) -> bool:
        """An import takes its file until the job starts (a second PUT replaces the first)."""
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT status FROM contact_jobs WHERE job_id = ? AND source = 'csv'", (job_id,)
            ).fetchone()
        return row is not None and row["status"] == "pending"

    def upload_received(self, job_id: str) -> None:
        """The import's file arrived: the job falls due ``import_delay`` seconds from now."""
        due = self._due_at(self.config().import_delay)
        with self.store.lock:
            self.store.conn.execute("UPDATE contact_jobs SET due_at = ? WHERE job_id = ?", (due, job_id))

    # -- running jobs -----------------------------------------------------------------------
    def run(self, job: sqlite3.Row) -> None:
        """Apply one due job (a ``contact_jobs`` row) and record how it ended."""
        run = _JobRun(self.store, self.clock, self.files, job["job_id"], json.loads(job["list_ids"]))
        try:
            if job["source"] == "contacts":
                run.apply_upserts(enumerate(json.loads(job["payload"]), start=1), structured=True)
            else:
                upload = self.files.path(upload_name(job["job_id"]))
                run.apply_csv(upload, json.loads(job["field_mappings"]))
        except Exception as error:  # an emulator bug: end the job, do not retry it forever
            run.failure = f"emulator error: {type(error).__name__}: {error}"
        run.finish()

    # -- reading jobs -----------------------------------------------------------------------
    def view(self, job_id: str, base_url: str) -> dict[str, Any] | None:
        """The ``ContactImport`` shape of a job (None: no such job)."""
        with self.store.lock:
            job = self.store.conn.execute("SELECT * FROM contact_jobs WHERE job_id = ?", (job_id,)).fetchone()
        if job is None:
            return None
        status = job["status"]
        if (
            status == "pending"
            and job["due_at"] is None
            and self.clock.now() > parse_iso(job["upload_expires_at"])
        ):
            status = "failed"  # the upload URL expired without a file
        results: dict[str, Any] = {
            "requested_count": job["requested_count"],
            "created_count": job["created_count"],
            "updated_count": job["updated_count"],
            "errored_count": job["errored_count"],
        }
        if job["job_type"] == "delete":
            results = {"requested_count": job["requested_count"], "deleted_count": job["deleted_count"]}
        if self.errors_file_exists(job_id):
            expires = self.clock.now() + timedelta(seconds=self.config().download_url_ttl)
            results["errors_url"] = self.files.signed_url(base_url, "GET", errors_name(job_id), expires)
        view: dict[str, Any] = {
            "id": job_id,
            "status": status,
            "job_type": job["job_type"],
            "results": results,
            "started_at": job["started_at"],
        }
        if job["finished_at"]:
            view["finished_at"] = job["finished_at"]
        return view

    def errors_file_exists(self, job_id: str) -> bool:
        """Whether job ``job_id`` wrote an errors CSV (served at its ``errors_url``)."""
        return self.files.path(errors_name(job_id)).exists()


class _JobRun:
    """One job being applied: counts, refused rows, and the chunked writes."""

    def __init__(
        self, store: Store, clock: Clock, files: FileStore, job_id: str, list_ids: list[str]
    ) -> None:
        self.store = store
        self.clock = clock
        self.files = files
        self.job_id = job_id
        self.list_ids = list_ids
        self.custom_types = {field.id: field.field_type for field in FieldDefinitions(self.store).custom()}
        self.requested = self.created = self.updated = 0
        self.errors: list[tuple[int, str, str]] = []  # not yet flushed to contact_job_errors
        self.errored = 0
        self.failure: str | None = None

    def apply_upserts(self, rows: Iterator[tuple[int, Any]], *, structured: bool) -> None:
        """Validate and write ``(row_number, contact)`` pairs, ``CHUNK_ROWS`` at a time."""
        chunk: list[tuple[int, dict[str, Any]]] = []
        for row_number, contact in rows:
            self.requested += 1
            problem = contact if isinstance(contact, str) else self._problem(contact, structured)
            if problem is not None:
                self._refuse(row_number, contact, problem)
                continue
            chunk.append((row_number, contact))
            if len(chunk) >= CHUNK_ROWS:
                self._write(chunk)
                chunk = []
        self._write(chunk)

    def _problem(self, contact: dict[str, Any], structured: bool) -> str | None:
        problems = [] if structured else structure_problems(contact, self.custom_types)
        if problems:
            field, message = problems[0]
            return f"{field}: {message}" if field else message
        return value_problem(contact, self.custom_types)

    def _refuse(self, row_number: int, contact: Any, message: str) -> None:
        identifiers = identifiers_of(contact) if isinstance(contact, dict) else {}
        self.errors.append((row_number, next(iter(identifiers.values()), ""), message))
        if len(self.errors) >= CHUNK_ROWS:
            self._flush_errors()

    def _write(self, chunk: list[tuple[int, dict[str, Any]]]) -> None:
        if not chunk:
            return
        contacts = [contact for _, contact in chunk]
        result = self.store.upsert_contacts(contacts, self.list_ids, to_iso(self.clock.now()))
        self.created += result.created
        self.updated += result.updated
        for index, _identifier, message in result.errors:
            self._refuse(*chunk[index], message)

    def _flush_errors(self) -> None:
        with self.store.lock:
            self.store.conn.executemany(
                "INSERT INTO contact_job_errors (job_id, row_number, identifier, message)"
                " VALUES (?, ?, ?, ?)",
                [(self.job_id, *error) for error in self.errors],
            )
        self.errored += len(self.errors)
        self.errors = []

    def apply_csv(self, path: Path, field_mappings: list[str | None]) -> None:
        try:
            if path.stat().st_size > MAX_IMPORT_BYTES:
                raise _Unprocessable(f"the file is larger than {MAX_IMPORT_BYTES} bytes")
            rows = sum(1 for _ in _csv_rows(path)) - 1
            if rows > MAX_IMPORT_CONTACTS:
                raise _Unprocessable(f"the file has {rows} contacts; at most {MAX_IMPORT_CONTACTS}")
            self.apply_upserts(_contacts_from_csv(path, field_mappings), structured=False)
        except _Unprocessable as error:
            self.failure = str(error)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as error:
            self.failure = f"the file could not be read as a (gzipped) UTF-8 CSV file: {error}"

    def finish(self) -> None:
        if self.failure is not None:
            self.errors.append((0, "", self.failure))
        self._flush_errors()
        errored = self.errored
        if self.failure is not None:  # every row counts as failed; the file's row 0 says why
            status, errored = "failed", self.requested
        elif errored == 0:
            status = "completed"
        else:
            status = "failed" if errored >= self.requested else "errored"
        if self.errored:
            self._write_errors_file()
        with self.store.lock:
            self.store.conn.execute(
                "UPDATE contact_jobs SET status = ?, finished_at = ?, requested_count = ?, created_count = ?,"
                " updated_count = ?, errored_count = ?, payload = NULL WHERE job_id = ?",
                (
                    status,
                    to_iso(self.clock.now()),
                    self.requested,
                    self.created,
                    self.updated,
                    errored,
                    self.job_id,
                ),
            )

    def _write_errors_file(self) -> None:
        path = self.files.path(errors_name(self.job_id))
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(ERRORS_FILE_HEADER)
            last = (-1, -1)  # (row_number, rowid) of the last row written: rows come in order
            while True:
                with self.store.lock:
                    batch = self.store.conn.execute(
                        "SELECT rowid, row_number, identifier, message FROM contact_job_errors"
                        " WHERE job_id = ? AND (row_number, rowid) > (?, ?)"
                        " ORDER BY row_number, rowid LIMIT ?",
                        (self.job_id, *last, CHUNK_ROWS),
                    ).fetchall()
                if not batch:
                    break
                writer.writerows((row["row_number"], row["identifier"], row["message"]) for row in batch)
                last = (batch[-1]["row_number"], batch[-1]["rowid"])


class _Unprocessable(Exception):
    pass


def _open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    raw = gzip.open(path, "rb") if gzipped else path.open("rb")  # noqa: SIM115 - the wrapper closes it
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _csv_rows(path: Path) -> Iterator[list[str]]:
    with _open_text(path) as text:
        yield from csv.reader(text)


def _contacts_from_csv(path: Path, field_mappings: list[str | None]) -> Iterator[tuple[int, Any]]:
    """``(row_number, contact)`` per data row (row 1 is the first after the header)."""
    rows = _csv_rows(path)
    next(rows, None)  # the header row: columns are mapped by position through field_mappings
    for row_number, row in enumerate(rows, start=1):
        if len(row) != len(field_mappings):
            yield row_number, f"has {len(row)} columns, field_mappings has {len(field_mappings)}"
            continue
        contact: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for field_id, value in zip(field_mappings, row, strict=True):
            if field_id is None or value == "":
                continue
            reserved = reserved_field(field_id)
            if reserved is None:
                custom[field_id] = value
            elif reserved.name == "alternate_emails":
                contact["alternate_emails"] = [item.strip() for item in value.split(",") if item.strip()]
            else:
                contact[reserved.name] = value
        if custom:
            contact["custom_fields"] = custom
        yield row_number, contact
