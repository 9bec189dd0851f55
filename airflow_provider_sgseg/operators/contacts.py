"""Contacts in and out of SendGrid: upsert from a warehouse/file/list, export a segment's members.

``SendGridUpsertContactsOperator`` streams a source (list of dicts, SQL via any common-sql
``DbApiHook``, CSV/NDJSON at an ``ObjectStoragePath``) into ``PUT /v3/marketing/contacts`` batches
(or CSV imports for large sources), then waits for every job. ``SendGridExportContactsOperator``
exports the exact members of segments/lists and downloads the files, streaming.

Retry safety: the jobs a try submitted are recorded in Airflow's task state store, so a retried
task waits for them again and sends only what was never accepted; an export still valid is
re-read for fresh URLs instead of being started again (before Airflow 3.3, found in SendGrid's
exports list: see docs/operators.md, "Airflow before 3.3").
"""

from __future__ import annotations

import csv
import datetime
import functools
import gzip
import hashlib
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_sgseg.exceptions import (
    SendGridError,
    SendGridInputError,
    SendGridNotFoundError,
    SendGridResponseError,
)
from airflow_provider_sgseg.operators._contact_sources import ContactSource, FileSource, ListSource, SqlSource
from airflow_provider_sgseg.operators.base import DEFAULT_CONN_ID, SendGridBaseOperator
from airflow_provider_sgseg.rules import pacing, validation, waiting
from airflow_provider_sgseg.rules.batching import MAX_CONTACTS_PER_UPSERT, MAX_UPSERT_BYTES, batches
from airflow_provider_sgseg.rules.contacts import (
    ColumnTarget,
    CustomField,
    FieldCatalog,
    SendGridRowError,
    contact_from_row,
    missing_custom_fields,
    plan_columns,
)
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.jobs import (
    ADOPTION_SKEW,
    JobBoard,
    adoptable_export,
    content_file_type,
    export_reusable,
    job_outcome,
    job_payload,
)
from airflow_provider_sgseg.state_store import TaskStateStore, earlier_tries_since
from airflow_provider_sgseg.version_compat import AirflowFailException, conf

if TYPE_CHECKING:
    from airflow.sdk import Context


UPSERT_STATE_KEY = "sendgrid_contacts_upsert"
EXPORT_STATE_KEY = "sendgrid_contacts_export"
DEFAULT_IMPORT_THRESHOLD = 200_000
MAX_IMPORT_ROWS = 1_000_000  # per CSV import (SendGrid: 1,000,000 contacts or 5 GB)
MAX_IMPORT_BYTES = 5_000_000_000
MAX_REPORTED_ROWS = 100  # refused/merged rows detailed in XCom; all are counted and logged
DEFAULT_WAIT_TIMEOUT = 6 * 3600.0
DEFAULT_BOUNDS = pacing.WaitBounds(floor=5.0, ceiling=300.0, interval=15.0)


def _default_deferrable() -> bool:
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


class _ContactsTask(SendGridBaseOperator):
    """What both contacts operators share beyond :class:`SendGridBaseOperator`: job waits (poke
    or deferred)."""

    def __init__(
        self,
        *,
        sendgrid_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool | None = None,
        poll_interval: float = DEFAULT_BOUNDS.interval,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(sendgrid_conn_id=sendgrid_conn_id, **kwargs)
        self.deferrable = (
            _default_deferrable() if deferrable is None else validation.flag("deferrable", deferrable)
        )
        poll_interval = validation.seconds("poll_interval", poll_interval)
        self.bounds = pacing.WaitBounds(
            floor=min(DEFAULT_BOUNDS.floor, poll_interval),
            ceiling=max(DEFAULT_BOUNDS.ceiling, poll_interval),
            interval=poll_interval,
        )
        self.wait_timeout = validation.seconds("wait_timeout", wait_timeout)

    def _wait_for_jobs(
        self, kind: str, job_ids: list[str], method_name: str, resume: dict[str, Any]
    ) -> dict[str, Any]:
        """Wait until every job ended: here (poke) or in the triggerer (deferrable). Returns the
        event payload (:class:`SendGridContactsJobsTrigger`'s shape); deferring never returns."""
        deadline = self.now() + datetime.timedelta(seconds=self.wait_timeout)
        if self.deferrable:
            from airflow_provider_sgseg.triggers.contacts import SendGridContactsJobsTrigger

            self.defer(
                trigger=SendGridContactsJobsTrigger(
                    sendgrid_conn_id=self.sendgrid_conn_id,
                    job_kind=kind,
                    job_ids=job_ids,
                    bounds=self.bounds.to_dict(),
                    deadline=deadline.isoformat(),
                    resume=resume,
                ),
                method_name=method_name,
            )
        from airflow_provider_sgseg.triggers.contacts import event_for

        read = self.hook.get_import_status if kind == "import" else self.hook.get_export_status
        board = JobBoard(kind, job_ids)
        state = waiting.WaitState()
        while True:
            for job_id in board.to_read():
                try:
                    board.answered(job_id, read(job_id))
                except SendGridError as error:
                    board.failed(job_id, error)
            action = waiting.step(state, board.outcome(), self.now(), self.bounds, deadline)
            if not isinstance(action, waiting.Wait):
                return event_for(action)
            self.log.info("SendGrid %s jobs: %s; next look in %.0f s", kind, action.reason, action.delay)
            state = action.state
            self.sleep(action.delay)


# ------------------------------------------------------------------------------------- upsert


@dataclass
class _Scan:
    """What the validation pass learnt about the source."""

    rows_read: int = 0
    refused: int = 0
    refused_report: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, error: SendGridRowError, log: Any) -> None:
        self.refused += 1
        log.warning("Refused %s", error)
        if len(self.refused_report) < MAX_REPORTED_ROWS:
            self.refused_report.append(error.to_dict())


class _SentParts:
    """The parts of an upsert (batches or import files) SendGrid accepted, by index, with a digest
    of what was sent: kept in the task state store so a retry resends only the others."""

    def __init__(self, store: TaskStateStore, method: str) -> None:
        record = store.get(UPSERT_STATE_KEY) or {}
        self._store = store
        self.method = method
        self.parts: dict[str, list[str]] = (
            dict(record.get("parts") or {}) if record.get("method") == method else {}
        )

    def accepted(self, index: int, digest: str) -> str | None:
        """The job id an earlier try got for this very part, if any."""
        part = self.parts.get(str(index))
        return part[0] if part and part[1] == digest else None

    def add(self, index: int, job_id: str, digest: str) -> None:
        self.parts[str(index)] = [job_id, digest]
        self._store.set(UPSERT_STATE_KEY, {"method": self.method, "parts": self.parts})

    def job_ids(self) -> list[str]:
        return [self.parts[key][0] for key in sorted(self.parts, key=int)]


class SendGridUpsertContactsOperator(_ContactsTask):
    """Add or update SendGrid contacts from a list, a SQL query or a CSV/NDJSON file.

    Give exactly one source: ``contacts`` (list of dicts), ``sql`` + ``sql_conn_id`` (any Airflow
    SQL connection: the common-sql ``DbApiHook`` interface), or ``source_path`` (an
    ``ObjectStoragePath`` or its URL; ``.csv`` with a header row, ``.ndjson``/``.jsonl``).

    Columns are SendGrid fields: reserved fields by name (``email``, ``first_name``...), custom
    fields by **name** (resolved to ids with ``GET /v3/marketing/field_definitions``). Rows are
    validated in a first pass before any write; then sent in ``PUT /v3/marketing/contacts`` batches
    within 30,000 contacts and 6,000,000 encoded bytes, or, above ``import_threshold`` rows, as
    CSV imports (``PUT /v3/marketing/contacts/imports`` + upload, 1,000,000 rows per file). The
    source is read twice (so a SQL query runs twice) and never held in memory.

    Rows of one batch sharing an identifier are merged (later values win), as two upserts in a row
    would leave the contact; the merged rows are reported.

    :param column_mapping: source column -> field name; only mapped columns are sent. Default:
        every column is the field of the same name.
    :param list_ids: lists (UUIDs) to add every contact to; each must exist.
    :param create_missing_fields: create custom fields the columns name but the account lacks,
        with their type from ``custom_field_types`` (``{name: "Text" | "Number" | "Date"}``).
    :param import_threshold: above this many valid rows, use CSV imports instead of batches.
    :param max_error_ratio: share of rows (refused locally + errored at SendGrid) tolerated:
        ``0`` (default) fails on the first bad row before any write; above 0, bad rows are
        refused, counted and reported, and the task succeeds with a warning while the ratio holds.
    :param deferrable: wait for the jobs in the triggerer (one trigger for all of them).
    :param poll_interval: seconds between job status reads.
    :param wait_timeout: seconds to wait for the jobs before failing.

    :raises SendGridInputError: bad arguments, unknown fields or lists, an unreadable source.
    :raises SendGridRowError: a bad row (row number, column, value, rule), when not tolerated.
    :raises AirflowFailException: a ``failed`` job, or too many errored/refused rows.

    Returns (XCom) ``{"rows_read", "rows_sent" (rows read minus refused), "refused_rows", "refused"
    (first 100: {row, column, value, rule}), "merged_rows" (rows merged into an earlier row of the
    same contact), "contacts_sent" (rows_sent - merged_rows), "method": "batches"|"import"|"none", "batches",
    "job_ids", "jobs" ({job_id: {status, requested_count, created_count, updated_count,
    errored_count, errors_url}}), "created_count", "updated_count", "errored_count",
    "errors_urls"}``.
    """

    template_fields: Sequence[str] = (
        "contacts",
        "sql",
        "parameters",
        "sql_conn_id",
        "source_path",
        "list_ids",
        "sendgrid_conn_id",
    )
    template_fields_renderers = {"sql": "sql"}

    def __init__(
        self,
        *,
        contacts: list[dict[str, Any]] | str | None = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        source_path: Any = None,
        source_format: str | None = None,
        column_mapping: Mapping[str, str] | None = None,
        list_ids: list[str] | None = None,
        create_missing_fields: bool = False,
        custom_field_types: Mapping[str, str] | None = None,
        import_threshold: int = DEFAULT_IMPORT_THRESHOLD,
        max_error_ratio: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        sources = {"contacts": contacts, "sql": sql, "source_path": source_path}
        given = [name for name, value in sources.items() if value is not None]
        if len(given) != 1:
            raise SendGridInputError("source", given, "give exactly one of contacts, sql or source_path")
        if sql is not None and not sql_conn_id:
            raise SendGridInputError(
                "sql_conn_id", sql_conn_id, "a sql source needs its Airflow connection id"
            )
        if (
            isinstance(import_threshold, bool)
            or not isinstance(import_threshold, int)
            or import_threshold < 1
        ):
            raise SendGridInputError("import_threshold", import_threshold, "must be a positive integer")
        if (
            isinstance(max_error_ratio, bool)
            or not isinstance(max_error_ratio, int | float)
            or not 0 <= max_error_ratio <= 1
        ):
            raise SendGridInputError("max_error_ratio", max_error_ratio, "must be a number from 0 to 1")
        self.contacts = contacts
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.source_path = source_path
        self.source_format = source_format
        self.column_mapping = dict(column_mapping) if column_mapping is not None else None
        self.list_ids = list_ids
        self.create_missing_fields = validation.flag("create_missing_fields", create_missing_fields)
        self.custom_field_types = {
            name: validation.field_type(kind) for name, kind in (custom_field_types or {}).items()
        }
        self.import_threshold = import_threshold
        self.max_error_ratio = float(max_error_ratio)

    # ----------------------------------------------------------------------------- execute

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate every row, then upsert in batches (``PUT /v3/marketing/contacts``) or import a
        CSV (``PUT /v3/marketing/contacts/imports`` + upload), and wait for the jobs
        (``GET /v3/marketing/contacts/imports/{id}``). Returns the summary in the class docstring.

        :raises SendGridInputError: bad arguments or rows, before any write.
        :raises AirflowFailException: SendGrid refused a request or too many rows failed.
        :raises TaskDeferred: deferrable mode, while the jobs run.
        :raises SendGridError: any other failure (see the hook's "Errors").
        """
        source = self._source()
        list_ids = validation.contact_list_ids(self.list_ids)
        store = TaskStateStore(context)
        columns = source.columns()
        plan, missing = self._plan(columns, FieldCatalog.from_answer(self.hook.get_field_definitions()))
        scan = self._validate(source, plan)
        summary: dict[str, Any] = {
            "rows_read": scan.rows_read,
            "rows_sent": scan.rows_read - scan.refused,
            "refused_rows": scan.refused,
            "refused": scan.refused_report,
            "merged_rows": 0,
            "contacts_sent": 0,
            "method": "none",
            "batches": 0,
            "job_ids": [],
        }
        if scan.rows_read == 0:
            self.log.info("The source is empty: 0 rows read, nothing sent to SendGrid.")
            return self._finish(summary, {})
        if scan.refused == scan.rows_read:
            raise AirflowFailException(f"All {scan.rows_read} rows were refused: {scan.refused_report[:3]}")
        self._check_lists(list_ids)  # GETs only: nothing written yet
        if missing:
            plan = self._create_fields(columns, missing)

        if summary["rows_sent"] > self.import_threshold:
            summary.update(self._send_imports(source, plan, list_ids, _SentParts(store, "import")))
        else:
            summary.update(self._send_batches(source, plan, list_ids, _SentParts(store, "batches")))
        summary["contacts_sent"] = summary["rows_sent"] - summary["merged_rows"]
        event = self._wait_for_jobs("import", summary["job_ids"], "execute_complete", summary)
        return self.execute_complete(context, event, summary)

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, resume: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after the jobs ended (deferrable mode), or finish after the poke-mode wait."""
        resume = resume if resume is not None else (event or {}).get("resume")
        if not event or resume is None:
            raise AirflowFailException(f"The contacts job wait ended without a usable event: {event!r}")
        if event.get("status") != "success":
            raise AirflowFailException(f"Waiting for SendGrid upsert jobs: {event.get('message')}")
        return self._finish(resume, event.get("results") or {})

    # -------------------------------------------------------------------------------- steps

    def _source(self) -> ContactSource:
        if self.contacts is not None:
            return ListSource(self.contacts)
        if self.sql is not None:
            return SqlSource(str(self.sql_conn_id), self.sql, self.parameters)
        return FileSource(self.source_path, self.source_format)

    def _plan(self, columns: list[str], catalog: FieldCatalog) -> tuple[list[ColumnTarget], list[str]]:
        """The column plan, and the custom fields to create first. Fields still to create are
        planned with their declared type and a placeholder id, so rows validate before any write."""
        missing = list(dict.fromkeys(missing_custom_fields(columns, self.column_mapping, catalog)))
        if missing and not self.create_missing_fields:
            plan_columns(columns, self.column_mapping, catalog)  # raises, naming the first unknown field
        untyped = [name for name in missing if name not in self.custom_field_types]
        if untyped:
            raise SendGridInputError(
                "custom_field_types",
                self.custom_field_types,
                f"declare a type for the fields to create: {untyped}",
            )
        planned = {
            name.lower(): CustomField(
                f"(new) {validation.custom_field_name(name)}", name, self.custom_field_types[name]
            )
            for name in missing
        }
        return plan_columns(
            columns, self.column_mapping, replace(catalog, custom={**catalog.custom, **planned})
        ), missing

    def _create_fields(self, columns: list[str], missing: list[str]) -> list[ColumnTarget]:
        """Create the missing custom fields (after every check passed); the plan with their ids."""
        for name in missing:
            self.log.info("Creating custom field %r (%s)", name, self.custom_field_types[name])
            self.hook.create_field_definition(name, self.custom_field_types[name])
        return plan_columns(
            columns, self.column_mapping, FieldCatalog.from_answer(self.hook.get_field_definitions())
        )

    def _validate(self, source: ContactSource, plan: list[ColumnTarget]) -> _Scan:
        """First pass: every row converted, none sent. Strict mode raises on the first bad row."""
        scan = _Scan()
        for row_number, row in source.rows():
            scan.rows_read += 1
            try:
                contact_from_row(row_number, row, plan)
            except SendGridRowError as error:
                if self.max_error_ratio == 0:
                    raise
                scan.refuse(error, self.log)
        if scan.rows_read and scan.refused / scan.rows_read > self.max_error_ratio:
            raise AirflowFailException(
                f"{scan.refused} of {scan.rows_read} rows refused locally, above max_error_ratio="
                f"{self.max_error_ratio}; nothing was sent. First: {scan.refused_report[:3]}"
            )
        return scan

    def _contacts(
        self, source: ContactSource, plan: list[ColumnTarget]
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        for row_number, row in source.rows():
            try:
                yield row_number, contact_from_row(row_number, row, plan)
            except SendGridRowError:
                continue  # refused and reported by the validation pass

    def _check_lists(self, list_ids: list[str]) -> None:
        if not list_ids:
            return
        known = self.hook.list_ids()
        for list_id in list_ids:
            if list_id not in known:
                raise SendGridInputError("list_ids", list_id, "no such list in this SendGrid account")

    def _send_batches(
        self, source: ContactSource, plan: list[ColumnTarget], list_ids: list[str], sent: _SentParts
    ) -> dict[str, Any]:
        merged = 0
        limits = {"max_contacts": MAX_CONTACTS_PER_UPSERT, "max_bytes": MAX_UPSERT_BYTES}
        for batch in batches(self._contacts(source, plan), list_ids, **limits):
            merged += len(batch.merged_rows)
            if batch.merged_rows:
                self.log.info(
                    "Batch %d: rows %s merged into earlier rows with the same identifier",
                    batch.index,
                    list(batch.merged_rows),
                )
            where = (
                f"batch {batch.index} ({batch.contacts} contacts, rows {batch.first_row}-{batch.last_row})"
            )
            self._send_once(
                sent,
                batch.index,
                [batch.body],
                where,
                functools.partial(self.hook.upsert_contacts, batch.body),
            )
        return {
            "method": "batches",
            "batches": len(sent.parts),
            "merged_rows": merged,
            "job_ids": sent.job_ids(),
        }

    def _send_imports(
        self, source: ContactSource, plan: list[ColumnTarget], list_ids: list[str], sent: _SentParts
    ) -> dict[str, Any]:
        mappings = self._field_mappings(plan)
        contacts = self._contacts(source, plan)
        index = 0
        while True:
            with tempfile.TemporaryFile() as spool:
                rows = _write_csv_chunk(spool, contacts, plan)
                if rows == 0:
                    break

                def start_and_upload() -> str:
                    started = self.hook.start_contacts_import(mappings, list_ids)
                    spool.seek(0)
                    self.hook.upload_contacts_file(
                        started["upload_uri"], started.get("upload_headers") or [], spool
                    )
                    return str(started["job_id"])

                self._send_once(
                    sent, index, _chunks(spool), f"import file {index} ({rows} rows)", start_and_upload
                )
                index += 1
        return {"method": "import", "batches": len(sent.parts), "job_ids": sent.job_ids()}

    def _send_once(
        self, sent: _SentParts, index: int, content: Iterable[bytes], where: str, send: Callable[[], str]
    ) -> None:
        """Send one part unless an earlier try had this very part accepted; record its job."""
        digest = _digest(content)
        earlier = sent.accepted(index, digest)
        if earlier is not None:
            self.log.info("%s was accepted by an earlier try as job %s; not sent again", where, earlier)
            return
        job_id = send()
        sent.add(index, job_id, digest)
        self.log.info("%s -> job %s", where, job_id)

    def _field_mappings(self, plan: list[ColumnTarget]) -> list[str | None]:
        catalog = FieldCatalog.from_answer(self.hook.get_field_definitions())
        mappings: list[str | None] = []
        for target in plan:
            field_id = target.custom.id if target.custom else catalog.reserved_ids.get(target.field)
            if not field_id:
                raise SendGridInputError(
                    "column",
                    target.column,
                    f"SendGrid lists no id for reserved field {target.field!r}, which a CSV import needs; "
                    "raise import_threshold to send batches instead",
                )
            mappings.append(field_id)
        return mappings

    def _finish(self, summary: dict[str, Any], results: Mapping[str, Any]) -> dict[str, Any]:
        jobs = {job_id: dict(results.get(job_id) or {}) for job_id in summary["job_ids"]}
        result = dict(summary)
        result["jobs"] = jobs
        for name in ("created_count", "updated_count", "errored_count"):
            result[name] = sum(int(job.get(name) or 0) for job in jobs.values())
        result["errors_urls"] = [job["errors_url"] for job in jobs.values() if job.get("errors_url")]
        failed = {job_id: job for job_id, job in jobs.items() if job.get("status") == "failed"}
        if failed:
            raise AirflowFailException(
                f"SendGrid reports {len(failed)} upsert job(s) failed (all their rows rejected): "
                + "; ".join(f"{job_id}: errors at {job.get('errors_url')}" for job_id, job in failed.items())
            )
        bad = result["errored_count"] + result["refused_rows"]
        if result["rows_read"] and bad:
            ratio = bad / result["rows_read"]
            message = (
                f"{result['errored_count']} rows errored at SendGrid, {result['refused_rows']} refused "
                f"locally, of {result['rows_read']} ({ratio:.2%}); errors: {result['errors_urls']}"
            )
            if ratio > self.max_error_ratio:
                raise AirflowFailException(f"{message}: above max_error_ratio={self.max_error_ratio}")
            self.log.warning("%s: within max_error_ratio=%s", message, self.max_error_ratio)
        return result


def _write_csv_chunk(
    spool: BinaryIO, contacts: Iterator[tuple[int, dict[str, Any]]], plan: list[ColumnTarget]
) -> int:
    """Write up to one import file's worth of contacts (CSV) to ``spool``; rows written."""
    rows = 0
    text = io.TextIOWrapper(spool, "utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow([target.field for target in plan])
    for _, contact in contacts:
        custom = contact.get("custom_fields", {})
        writer.writerow(
            [_csv_value(custom.get(t.custom.id) if t.custom else contact.get(t.field)) for t in plan]
        )
        rows += 1
        if rows >= MAX_IMPORT_ROWS or spool.tell() >= MAX_IMPORT_BYTES - 1_000_000:
            break
    text.detach()  # leave the spool open for the upload
    return rows


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    file.seek(0)
    while chunk := file.read(1024 * 1024):
        yield chunk


def _digest(chunks: Iterable[bytes]) -> str:
    """A short fingerprint of what was sent, to tell an unchanged batch/file on a retry."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()[:32]


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


# ------------------------------------------------------------------------------------- export


class SendGridExportContactsOperator(_ContactsTask):
    """Export the exact members of segments and/or lists and download the file(s), streaming.

    ``POST /v3/marketing/contacts/exports``, then ``GET /v3/marketing/contacts/exports/{id}`` until
    ``ready`` (poke or deferrable; ``failure`` fails the task with SendGrid's message), then every
    URL is downloaded in chunks into ``destination`` (a directory ``ObjectStoragePath`` or URL:
    local, S3, GCS...) as ``contacts-<n>.<file_type>`` (``.gz`` added when SendGrid serves gzip).

    A retry re-reads the earlier export (recorded in the task state store) for fresh URLs while
    it has not failed or expired; only then a new export starts. Before Airflow 3.3 (no task
    state store) a retry adopts the newest such export of the same segments and lists that
    SendGrid created since the DAG run started (skipping one whose URLs name the other file
    type; the first downloaded file's content is checked against ``file_type``).

    :param segment_ids: segments whose members to export.
    :param list_ids: lists whose members to export (UUIDs).
    :param file_type: ``csv`` (default) or ``json`` (one JSON object per line).
    :param max_file_size: MB per file (SendGrid's default 5000); bigger exports come as several files.
    :param destination: directory to write into (created if missing).
    :param outlets: e.g. an ``Asset`` for the exported files; each asset event's ``extra`` gets
        the result below (without ``paths`` beyond the first 100).

    :raises SendGridInputError: no segment or list given, bad ids, file type or size.
    :raises AirflowFailException: the export failed at SendGrid, the wait ended otherwise, or
        the downloaded file holds the other file type (an adopted export of another task).

    Returns (XCom) ``{"export_id", "paths": [str], "row_count", "contact_count", "expires_at",
    "file_type"}``: ``row_count`` is counted in the downloaded files (CSV records without the
    header, or JSON lines), ``contact_count`` is SendGrid's.
    """

    template_fields: Sequence[str] = ("segment_ids", "list_ids", "destination", "sendgrid_conn_id")
    FIRST_LINE_BYTES = 1 << 20  # read to judge a file's type: enough for a JSON line of any contact

    def __init__(
        self,
        *,
        destination: Any,
        segment_ids: list[str] | None = None,
        list_ids: list[str] | None = None,
        file_type: str = "csv",
        max_file_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.destination = destination
        self.segment_ids = segment_ids
        self.list_ids = list_ids
        self.file_type = validation.export_file_type(file_type)
        self.max_file_size = validation.max_file_size(max_file_size)

    def execute(self, context: Context) -> dict[str, Any]:
        """``POST /v3/marketing/contacts/exports`` (once per task instance), wait on ``GET
        .../exports/{id}``, download its files. Returns the summary in the class docstring.

        :raises SendGridInputError: bad arguments, before any request.
        :raises AirflowFailException: the export failed or SendGrid refused it.
        :raises TaskDeferred: deferrable mode, while the export runs.
        :raises SendGridError: any other failure (see the hook's "Errors").
        """
        from airflow_provider_sgseg.rules.requests import ExportContacts

        export = ExportContacts(self.segment_ids, self.list_ids, self.file_type, self.max_file_size)
        segment_ids, list_ids = list(export.segment_ids or ()), list(export.list_ids or ())
        if not segment_ids and not list_ids:  # SendGrid would export every contact
            raise SendGridInputError("segment_ids", self.segment_ids, "give segment_ids, list_ids or both")
        store = TaskStateStore(context)
        request = [segment_ids, list_ids, self.file_type]
        export_id = self._earlier_export(context, store, request)
        if export_id is None:
            # Recorded before the POST: if its answer is lost, a retry finds the export by listing.
            store.set(EXPORT_STATE_KEY, {"request": request, "attempted_at": self.now().isoformat()})
            export_id = self.hook.run(export)
            store.set(EXPORT_STATE_KEY, {"request": request, "export_id": export_id})
            self.log.info("Started export %s of segments %s and lists %s", export_id, segment_ids, list_ids)
        event = self._wait_for_jobs("export", [export_id], "execute_complete", {"export_id": export_id})
        return self.execute_complete(context, event, {"export_id": export_id})

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, resume: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Download the ready export (after the deferred or poke-mode wait)."""
        resume = resume if resume is not None else (event or {}).get("resume")
        if not event or not resume:
            raise AirflowFailException(f"The export wait ended without a usable event: {event!r}")
        if event.get("status") != "success":
            raise AirflowFailException(f"SendGrid contacts export: {event.get('message')}")
        export_id = str(resume["export_id"])
        ready = self.hook.get_export_status(export_id)  # fresh URLs: the ones seen while waiting may expire
        outcome = job_outcome("export", export_id, ready)
        if not isinstance(outcome, waiting.Finished):
            raise AirflowFailException(f"Export {export_id} is no longer ready: {ready.get('status')}")
        result = {**job_payload(outcome.value), "file_type": self.file_type}
        result.update(self._download(export_id, outcome.value.urls))
        if result["contact_count"] is not None and result["row_count"] != result["contact_count"]:
            # A cut or garbled download: fail this try; the retry reuses the export, downloads again.
            raise SendGridResponseError(
                f"Export {export_id}: the downloaded files hold {result['row_count']} rows but SendGrid "
                f"counts {result['contact_count']} contacts: {result['paths']}"
            )
        self._annotate_outlets(context, result)
        return result

    def _earlier_export(self, context: Context, store: TaskStateStore, request: list[Any]) -> str | None:
        """The export an earlier try of this task started, if it can still serve."""
        if not store.available:
            since = earlier_tries_since(context)
            if since is None:
                return None
            # No skew allowance: an export from before this DAG run (the previous run's) holds
            # older members. SendGrid's created_at has whole seconds.
            return self._listed_export(
                request,
                since.replace(microsecond=0),
                0.0,
                f"SendGrid created it after this DAG run started ({since.isoformat()}); "
                "no task state store on this Airflow",
            )
        record = store.get(EXPORT_STATE_KEY)
        if not record or record.get("request") != request:
            return None
        if not record.get("export_id"):
            attempted_at = parse_instant(record.get("attempted_at"))
            if attempted_at is None:
                return None
            found = self._listed_export(
                request,
                attempted_at,
                ADOPTION_SKEW,
                "the task state store recorded its attempt, whose answer was lost",
            )
            if found is not None:
                store.set(EXPORT_STATE_KEY, {"request": request, "export_id": found})
            return found
        export_id = str(record["export_id"])
        try:
            export = self.hook.get_export_status(export_id)
        except SendGridNotFoundError:
            export = {"status": "failure"}
        if export_reusable(export, self.now()):
            self.log.info("Reusing export %s started by an earlier try (%s)", export_id, export.get("status"))
            return export_id
        self.log.info("The earlier export %s failed or expired; starting a new one", export_id)
        return None

    def _listed_export(
        self, request: list[Any], since: datetime.datetime, skew: float, evidence: str
    ) -> str | None:
        """An export of ``request``'s segments and lists, created since ``since`` (less ``skew``
        seconds) and still reusable, in ``GET /v3/marketing/contacts/exports``; logged with the
        ``evidence`` that an earlier try started it."""
        found = adoptable_export(
            self.hook.list_contact_exports(),
            request[0],
            request[1],
            since,
            self.now(),
            skew,
            file_type=request[2],
        )
        if found is not None:
            self.log.info("Adopting export %s, started by an earlier try: %s", found, evidence)
        else:
            self.log.info("No export of these segments and lists still valid since %s", since.isoformat())
        return found

    def _download(self, export_id: str, urls: list[str]) -> dict[str, Any]:
        from airflow.sdk import ObjectStoragePath

        directory = (
            self.destination
            if isinstance(self.destination, ObjectStoragePath)
            else ObjectStoragePath(str(self.destination))
        )
        directory.mkdir(parents=True, exist_ok=True)
        paths, rows = [], 0
        for number, url in enumerate(urls, start=1):
            target = directory / f"contacts-{number}.{self.file_type}"
            with target.open("wb") as sink:  # type: ignore[no-untyped-call]
                size = self.hook.download_export_file(url, sink)
            if _is_gzip(target):
                zipped = target.with_name(target.name + ".gz")
                target.rename(zipped)
                target = zipped
            if number == 1:
                self._check_file_type(export_id, target)
            rows += _count_rows(target, self.file_type)
            self.log.info("Downloaded export file %d of %d: %s (%d bytes)", number, len(urls), target, size)
            paths.append(str(target))
        return {"paths": paths, "row_count": rows}

    def _check_file_type(self, export_id: str, path: Any) -> None:
        """Fail (no retries: every retry would adopt the same export) when the downloaded file
        holds another type than ``file_type``; the file is removed. A garbled file is left to
        the row count (a retryable failure)."""
        with path.open("rb") as raw:
            held = content_file_type(_gunzipped(raw, path).read(self.FIRST_LINE_BYTES))
        if held is None or held == self.file_type:
            return
        path.unlink()
        raise AirflowFailException(
            f"Export {export_id} holds {held.upper()} but this task asked for {self.file_type.upper()}: "
            "it is likely another task's export of the same segments and lists, adopted by a retry "
            "(before Airflow 3.3 a retry adopts an export from SendGrid's exports list, which does not "
            'give the file type; see docs/operators.md, "Airflow before 3.3"). Export the same '
            "segments and lists at most once per DAG run there."
        )

    def _annotate_outlets(self, context: Context, result: dict[str, Any]) -> None:
        from airflow.sdk import Asset

        extra = {**result, "paths": result["paths"][:100]}
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = extra


def _is_gzip(path: Any) -> bool:
    with path.open("rb") as stream:
        return bool(stream.read(2) == b"\x1f\x8b")


def _count_rows(path: Any, file_type: str) -> int:
    """Records in a downloaded export: CSV rows after the header, or non-empty JSON lines."""
    with path.open("rb") as raw, io.TextIOWrapper(_gunzipped(raw, path), "utf-8", newline="") as text:
        if file_type == "csv":
            return max(sum(1 for _ in csv.reader(text)) - 1, 0)
        return sum(1 for line in text if line.strip())


def _gunzipped(raw: BinaryIO, path: Any) -> gzip.GzipFile | BinaryIO:
    """A downloaded file's content: ``raw`` itself, or gunzipped when its name ends in ``.gz``."""
    return gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw
