"""``SendGridUpsertContactsOperator``: contacts into SendGrid from a list, a SQL query or a file.

The source (list of dicts, SQL via any common-sql ``DbApiHook``, CSV/NDJSON at an
``ObjectStoragePath``) is streamed into ``PUT /v3/marketing/contacts`` batches (or CSV imports for
large sources), then every job is waited for.

Retry safety: the jobs a try submitted are recorded in Airflow's task state store, so a retried
task waits for them again and sends only what was never accepted.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridRowError
from airflow_provider_sgseg.operators._contact_files import content_digest, file_chunks, write_csv_chunk
from airflow_provider_sgseg.operators._contact_jobs import ContactsTask
from airflow_provider_sgseg.operators._contact_sources import ContactSource, FileSource, ListSource, SqlSource
from airflow_provider_sgseg.rules import validation
from airflow_provider_sgseg.rules.batching import MAX_CONTACTS_PER_UPSERT, MAX_UPSERT_BYTES, batches
from airflow_provider_sgseg.rules.contacts import (
    ColumnTarget,
    CustomField,
    FieldCatalog,
    contact_from_row,
    missing_custom_fields,
    plan_columns,
)
from airflow_provider_sgseg.state_store import TaskStateStore
from airflow_provider_sgseg.version_compat import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context


UPSERT_STATE_KEY = "sendgrid_contacts_upsert"
DEFAULT_IMPORT_THRESHOLD = 200_000
MAX_REPORTED_ROWS = 100  # refused/merged rows detailed in XCom; all are counted and logged


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


class SendGridUpsertContactsOperator(ContactsTask):
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
                rows = write_csv_chunk(spool, contacts, plan)
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
                    sent, index, file_chunks(spool), f"import file {index} ({rows} rows)", start_and_upload
                )
                index += 1
        return {"method": "import", "batches": len(sent.parts), "job_ids": sent.job_ids()}

    def _send_once(
        self, sent: _SentParts, index: int, content: Iterable[bytes], where: str, send: Callable[[], str]
    ) -> None:
        """Send one part unless an earlier try had this very part accepted; record its job."""
        digest = content_digest(content)
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
