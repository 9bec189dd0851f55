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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridRowError, did_you_mean
from airflow_provider_sgseg.operators._contact_files import (
    content_digest,
    file_chunks,
    text_lines,
    write_csv_chunk,
)
from airflow_provider_sgseg.operators._contact_jobs import ContactsTask
from airflow_provider_sgseg.operators._contact_sources import ContactSource, FileSource, ListSource, SqlSource
from airflow_provider_sgseg.operators._dry_run import (
    described,
    dry_run_argument,
    dry_run_result,
    is_dry_run,
    read_only,
)
from airflow_provider_sgseg.operators._rejected_rows import (
    RejectedRows,
    local_record,
    replace_table_rows,
    sendgrid_records,
)
from airflow_provider_sgseg.rules import summaries, validation
from airflow_provider_sgseg.rules.batching import (
    DEFAULT_MAX_LINE_BYTES,
    MAX_CONTACTS_PER_UPSERT,
    MAX_IMPORT_BYTES,
    MAX_UPSERT_BYTES,
    Batch,
    batches,
    row_runs,
)
from airflow_provider_sgseg.rules.contacts import (
    ColumnPlan,
    ColumnTarget,
    CustomField,
    FieldCatalog,
    column_plan,
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
MAX_REPORTED_PARTS = 100  # batches/import files detailed in a dry run's XCom; all are counted


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
        self.parts: dict[str, list[Any]] = (
            dict(record.get("parts") or {}) if record.get("method") == method else {}
        )
        self.reused = 0  # parts an earlier try had accepted, not sent again by this one

    def accepted(self, index: int, digest: str) -> str | None:
        """The job id an earlier try got for this very part, if any."""
        part = self.parts.get(str(index))
        return part[0] if part and part[1] == digest else None

    def add(self, index: int, job_id: str, digest: str, rows: Iterable[int]) -> None:
        """Record part ``index``: its job, digest and source ``rows`` (as runs, see ``row_runs``)."""
        self.parts[str(index)] = [job_id, digest, row_runs(rows)]
        self._store.set(UPSERT_STATE_KEY, {"method": self.method, "parts": self.parts})

    def job_ids(self) -> list[str]:
        return [self.parts[key][0] for key in sorted(self.parts, key=int)]

    def row_runs(self) -> dict[str, list[list[int]]]:
        """Each job's source rows as runs (parts recorded before this version have none)."""
        return {part[0]: part[2] for part in self.parts.values() if len(part) > 2}


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
    :param ignore_columns: source columns not to send. Any other column that no writable field
        takes fails the task before any write (columns of read-only fields SendGrid sets, such as an
        export's ``CONTACT_ID``, are left out with a warning).
    :param list_ids: lists (UUIDs) to add every contact to; each must exist.
    :param create_missing_fields: create custom fields the columns name but the account lacks,
        with their type from ``custom_field_types`` (``{name: "Text" | "Number" | "Date"}``).
    :param import_threshold: above this many valid rows, use CSV imports instead of batches.
    :param max_error_ratio: share of rows (refused locally + errored at SendGrid) tolerated:
        ``0`` (default) fails on the first bad row before any write; above 0, bad rows are
        refused, counted and reported, and the task succeeds with a warning while the ratio holds.
    :param max_line_bytes: longest line of a ``source_path`` file (bytes, ending included;
        default 8 MiB): a longer one fails, naming the file and line, before it fills memory.
    :param rejected_rows_path: an ``ObjectStoragePath`` (or its URL) to write the rejected rows
        to, as CSV: ``origin`` (``local`` or ``sendgrid``), ``row_number`` (source row),
        ``source_line`` (the row as JSON, or SendGrid's errors file line), ``column_name``,
        ``value``, ``rule`` (or SendGrid's message) and ``job_id``. Rewritten whole by each try.
    :param rejected_rows_table: with a ``sql`` source, also a table (reached through the source's
        connection) with ``dag_id``, ``task_id``, ``run_id``, ``map_index`` and the columns above;
        each try replaces its task instance's rows.
    :param deferrable: wait for the jobs in the triggerer (one trigger for all of them).
    :param poll_interval: seconds between job status reads.
    :param wait_timeout: seconds to wait for the jobs before failing (retriable); a deferred wait
        also ends when ``execution_timeout`` does.
    :param dry_run: read, map and validate every row and read the field definitions and lists,
        then report what would be sent instead of sending it (templated: ``"True"``/``"False"``
        are read as bools). Only ``GET`` requests reach SendGrid: no upsert, import, upload or
        custom field creation; no rejected rows file or table is written and the task state
        store is left alone. Every row is validated (strict mode too); the task fails where the
        real run would fail before its first write (bad arguments, unknown fields or lists,
        refused rows above ``max_error_ratio``).

    :raises SendGridInputError: bad arguments, unknown fields or lists, an unreadable source.
    :raises SendGridRowError: a bad row (row number, column, value, rule), when not tolerated.
    :raises AirflowFailException: a ``failed`` job, or too many errored/refused rows.
    :raises AirflowException: the job wait timed out or met transient failures in a row; retries
        apply (a retry waits again for the jobs already accepted, sending nothing twice).

    Returns (XCom) ``{"rows_read", "rows_sent" (rows read minus refused), "refused_rows", "refused"
    (first 100: {row, column, value, rule}), "merged_rows" (rows merged into an earlier row of the
    same contact), "contacts_sent" (rows_sent - merged_rows), "method": "batches"|"import"|"none",
    "batches", "reused_batches" (of those, the ones an earlier try had accepted: not sent again),
    "job_ids", "jobs" ({job_id: {status, requested_count, created_count, updated_count,
    errored_count, errors_url}}), "created_count", "updated_count", "errored_count",
    "errors_urls", "unsent_columns" ({column: why it was not sent}), "rejected_rows_path" (when
    given)}``.

    A dry run returns ``{"dry_run": True, "rows_read", "rows_sent", "refused_rows", "refused",
    "merged_rows", "contacts_sent", "method", "batches", "unsent_columns"`` (as above, for what it
    would send), ``"columns"`` (one ``{column, field, kind: "reserved"|"custom"|"custom (to
    create)", field_id, field_type}`` per column sent), ``"fields_to_create"`` ({name: type}),
    ``"list_ids"``, ``"parts"`` (first 100 batches or import files: ``{index, contacts, first_row,
    last_row, bytes, merged_rows}``) and ``"would_send"`` (each write as ``"METHOD path (what)"``)``}``.
    """

    template_fields: Sequence[str] = (
        "contacts",
        "sql",
        "parameters",
        "sql_conn_id",
        "source_path",
        "rejected_rows_path",
        "rejected_rows_table",
        "list_ids",
        "sendgrid_conn_id",
        "dry_run",
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
        ignore_columns: Sequence[str] | None = None,
        list_ids: list[str] | None = None,
        create_missing_fields: bool = False,
        custom_field_types: Mapping[str, str] | None = None,
        import_threshold: int = DEFAULT_IMPORT_THRESHOLD,
        max_error_ratio: float = 0.0,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        rejected_rows_path: Any = None,
        rejected_rows_table: str | None = None,
        dry_run: bool | str = False,
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
        if isinstance(ignore_columns, str | bytes) or not all(
            isinstance(column, str) for column in ignore_columns or ()
        ):
            raise SendGridInputError("ignore_columns", ignore_columns, "must be a list of column names")
        self.ignore_columns = list(ignore_columns or ())
        self.list_ids = list_ids
        self.create_missing_fields = validation.flag("create_missing_fields", create_missing_fields)
        self.custom_field_types = {
            name: validation.field_type(kind) for name, kind in (custom_field_types or {}).items()
        }
        self.import_threshold = validation.positive_int("import_threshold", import_threshold)
        self.max_line_bytes = validation.positive_int("max_line_bytes", max_line_bytes)
        self.max_error_ratio = float(max_error_ratio)
        if rejected_rows_table is not None and (sql is None or rejected_rows_path is None):
            raise SendGridInputError(
                "rejected_rows_table",
                rejected_rows_table,
                "needs a sql source (the table is written through its connection) and rejected_rows_path",
            )
        self.rejected_rows_path = rejected_rows_path
        self.rejected_rows_table = rejected_rows_table
        self.dry_run = dry_run_argument(dry_run)  # type: ignore[assignment,method-assign]

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
        dry_run = is_dry_run(self.dry_run)
        if dry_run:
            read_only(self.hook)
        columns = source.columns()
        catalog = FieldCatalog.from_answer(self.hook.get_field_definitions())  # the one read per try
        planned, missing = self._plan(columns, catalog)
        if dry_run:
            return self._dry_run(source, planned, missing, catalog, list_ids)
        store = TaskStateStore(context)
        plan = planned.targets
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
            "reused_batches": 0,
            "job_ids": [],
            "unsent_columns": self._unsent_columns(planned.unsent),
        }
        if scan.rows_read == 0:
            self.log.info("The source is empty: 0 rows read, nothing sent to SendGrid.")
            return self._finish(context, summary, {})
        if scan.refused == scan.rows_read:
            raise AirflowFailException(f"All {scan.rows_read} rows were refused: {scan.refused_report[:3]}")
        self._check_lists(list_ids)  # GETs only: nothing written yet
        if missing:
            catalog = self._create_fields(catalog, missing)
            plan = plan_columns(columns, self.column_mapping, catalog, self.ignore_columns)

        if summary["rows_sent"] > self.import_threshold:
            mappings = _field_mappings(plan, catalog)
            summary.update(self._send_imports(source, plan, mappings, list_ids, _SentParts(store, "import")))
        else:
            summary.update(self._send_batches(source, plan, list_ids, _SentParts(store, "batches")))
        summary["contacts_sent"] = summary["rows_sent"] - summary["merged_rows"]
        event = self._wait_for_jobs(context, "import", summary["job_ids"], "execute_complete", summary)
        return self.execute_complete(context, event, summary)

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, resume: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after the jobs ended (deferrable mode), or finish after the poke-mode wait.

        :raises: as :meth:`ContactsTask._jobs_ended`, and as ``execute`` for the rows.
        """
        event, resume = self._jobs_ended(context, event, resume)
        return self._finish(context, resume, event.get("results") or {})

    # -------------------------------------------------------------------------------- steps

    def _source(self) -> ContactSource:
        if self.contacts is not None:
            return ListSource(self.contacts)
        if self.sql is not None:
            return SqlSource(str(self.sql_conn_id), self.sql, self.parameters)
        return FileSource(self.source_path, self.source_format, self.max_line_bytes)

    def _plan(self, columns: list[str], catalog: FieldCatalog) -> tuple[ColumnPlan, list[str]]:
        """The column plan, and the custom fields to create first. Fields still to create are
        planned with their declared type and a placeholder id, so rows validate before any write."""
        missing = list(
            dict.fromkeys(missing_custom_fields(columns, self.column_mapping, catalog, self.ignore_columns))
        )
        if missing and not self.create_missing_fields:
            # raises, naming every column no field takes
            plan_columns(columns, self.column_mapping, catalog, self.ignore_columns)
        untyped = [name for name in missing if name not in self.custom_field_types]
        if untyped:
            unused = [key for key in self.custom_field_types if key not in missing]
            hints = [
                f"; unknown key {key!r}: {hint}" for key in unused if (hint := did_you_mean(key, untyped))
            ]
            raise SendGridInputError(
                "custom_field_types",
                self.custom_field_types,
                f"declare a type for the fields to create: {untyped}{''.join(hints)}",
            )
        planned = catalog.with_custom(
            CustomField(f"(new) {validation.custom_field_name(name)}", name, self.custom_field_types[name])
            for name in missing
        )
        return column_plan(columns, self.column_mapping, planned, self.ignore_columns), missing

    def _dry_run(
        self,
        source: ContactSource,
        planned: ColumnPlan,
        missing: list[str],
        catalog: FieldCatalog,
        list_ids: list[str],
    ) -> dict[str, Any]:
        """The real run's reads and checks in its order, each write reported instead of sent."""
        from airflow_provider_sgseg.rules.requests import (
            CreateFieldDefinition,
            ImportContacts,
            UpsertContacts,
        )

        plan = planned.targets
        scan = self._validate(source, plan, dry_run=True)
        rows_sent = scan.rows_read - scan.refused
        if scan.rows_read and not rows_sent:
            raise AirflowFailException(f"All {scan.rows_read} rows were refused: {scan.refused_report[:3]}")
        if rows_sent:
            self._check_lists(list_ids)
        would_send = [
            described(CreateFieldDefinition(name, self.custom_field_types[name]), "create the custom field")
            for name in missing
        ]
        parts: list[dict[str, Any]] = []
        merged, method = 0, "none"
        if rows_sent > self.import_threshold:
            method = "import"
            start = ImportContacts(_field_mappings(plan, catalog), list_ids)  # raises as the real run
            for index, spool, rows in self._import_files(source, plan):
                parts.append(_part(index, len(rows), rows, spool.tell()))
                what = f"import file {index}: {len(rows)} rows, {spool.tell()} bytes, then its upload"
                would_send.append(described(start, what))
        elif rows_sent:
            method = "batches"
            for batch in self._batches(source, plan, list_ids):
                merged += len(batch.merged_rows)
                parts.append(
                    _part(batch.index, batch.contacts, batch.rows, len(batch.body), batch.merged_rows)
                )
                what = (
                    f"batch {batch.index}: {batch.contacts} contacts, rows {batch.first_row}-{batch.last_row}"
                )
                would_send.append(described(UpsertContacts(batch.body), what))
        columns = [_column_report(target, missing) for target in plan]
        report = {
            "rows_read": scan.rows_read,
            "rows_sent": rows_sent,
            "refused_rows": scan.refused,
            "refused": scan.refused_report,
            "merged_rows": merged,
            "contacts_sent": rows_sent - merged,
            "method": method,
            "batches": len(parts),
            "parts": parts[:MAX_REPORTED_PARTS],
            "columns": columns,
            "fields_to_create": {name: self.custom_field_types[name] for name in missing},
            "list_ids": list_ids,
            "unsent_columns": self._unsent_columns(planned.unsent),
        }
        if len(would_send) > MAX_REPORTED_PARTS:
            would_send[MAX_REPORTED_PARTS:] = [f"... and {len(would_send) - MAX_REPORTED_PARTS} more"]
        sent_columns = ", ".join(f"{c['column']} -> {c['field']}" for c in columns)
        unit = "import file(s)" if method == "import" else "batch(es)"
        summary = (
            f"{scan.rows_read} rows read, {scan.refused} refused; would send {rows_sent - merged} "
            f"contacts as {len(parts)} {unit}; columns: {sent_columns}"
        )
        return dry_run_result(self.log, summary, would_send, report)

    def _unsent_columns(self, unsent: dict[str, str]) -> dict[str, str]:
        """The source columns not sent and why: logged, and kept for the XCom."""
        for column, why in unsent.items():
            self.log.warning("Column %r is not sent to SendGrid: %s", column, why)
        return unsent

    def _create_fields(self, catalog: FieldCatalog, missing: list[str]) -> FieldCatalog:
        """Create the missing custom fields (after every check passed); the catalog with them."""
        created = []
        for name in missing:
            self.log.info("Creating custom field %r (%s)", name, self.custom_field_types[name])
            answer = self.hook.create_field_definition(name, self.custom_field_types[name])
            kind = self.custom_field_types[name]
            created.append(CustomField(str(answer["id"]), str(answer.get("name") or name), kind))
        return catalog.with_custom(created)

    def _validate(self, source: ContactSource, plan: list[ColumnTarget], *, dry_run: bool = False) -> _Scan:
        """First pass: every row converted, none sent. Strict mode raises on the first bad row.
        Refused rows go to ``rejected_rows_path`` (published here, also when the pass fails).
        A dry run writes no file and validates every row before judging the refusals."""
        scan = _Scan()
        keep = self.rejected_rows_path is not None and not dry_run
        rejected = RejectedRows(self.rejected_rows_path) if keep else None
        try:
            for row_number, row in source.rows():
                scan.rows_read += 1
                try:
                    contact_from_row(row_number, row, plan)
                except SendGridRowError as error:
                    error.at(source.where(row_number))
                    if rejected is not None:
                        rejected.add(local_record(error, row))
                    if self.max_error_ratio == 0 and not dry_run:
                        raise
                    scan.refuse(error, self.log)
        finally:
            if rejected is not None:
                rejected.publish()
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

    def _batches(
        self, source: ContactSource, plan: list[ColumnTarget], list_ids: list[str]
    ) -> Iterator[Batch]:
        limits = {"max_contacts": MAX_CONTACTS_PER_UPSERT, "max_bytes": MAX_UPSERT_BYTES}
        return batches(self._contacts(source, plan), list_ids, **limits)

    def _import_files(
        self, source: ContactSource, plan: list[ColumnTarget]
    ) -> Iterator[tuple[int, BinaryIO, list[int]]]:
        """Each import file ``(index, spool, source rows)``, spooled on local disk while in use."""
        contacts = self._contacts(source, plan)
        index = 0
        while True:
            with tempfile.TemporaryFile() as spool:
                rows = write_csv_chunk(spool, contacts, plan)
                if not rows:
                    return
                yield index, spool, rows
                index += 1

    def _send_batches(
        self, source: ContactSource, plan: list[ColumnTarget], list_ids: list[str], sent: _SentParts
    ) -> dict[str, Any]:
        merged = 0
        for batch in self._batches(source, plan, list_ids):
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
                batch.rows,
                where,
                functools.partial(self.hook.upsert_contacts, batch.body),
            )
        return {
            "method": "batches",
            "batches": len(sent.parts),
            "reused_batches": sent.reused,
            "merged_rows": merged,
            "job_ids": sent.job_ids(),
        }

    def _send_imports(
        self,
        source: ContactSource,
        plan: list[ColumnTarget],
        mappings: list[str | None],
        list_ids: list[str],
        sent: _SentParts,
    ) -> dict[str, Any]:
        for index, spool, rows in self._import_files(source, plan):

            def start_and_upload(spool: BinaryIO = spool) -> str:
                started = self.hook.start_contacts_import(mappings, list_ids)
                spool.seek(0)
                self.hook.upload_contacts_file(
                    started["upload_uri"], started.get("upload_headers") or [], spool
                )
                return str(started["job_id"])

            self._send_once(
                sent,
                index,
                file_chunks(spool),
                rows,
                f"import file {index} ({len(rows)} rows)",
                start_and_upload,
            )
        return {
            "method": "import",
            "batches": len(sent.parts),
            "reused_batches": sent.reused,
            "job_ids": sent.job_ids(),
        }

    def _send_once(
        self,
        sent: _SentParts,
        index: int,
        content: Iterable[bytes],
        rows: Sequence[int],
        where: str,
        send: Callable[[], str],
    ) -> None:
        """Send one part unless an earlier try had this very part accepted; record its job."""
        digest = content_digest(content)
        earlier = sent.accepted(index, digest)
        if earlier is not None:
            self.log.info("%s was accepted by an earlier try as job %s; not sent again", where, earlier)
            sent.reused += 1
            return
        job_id = send()
        sent.add(index, job_id, digest, rows)
        self.log.info("%s -> job %s", where, job_id)

    def _record_rejected(
        self, context: Context, summary: Mapping[str, Any], jobs: Mapping[str, Mapping[str, Any]]
    ) -> str:
        """Add the rows SendGrid rejected (each job's ``errors_url`` file) to the rejected rows file
        the validation pass published, and replace this task instance's rows of
        ``rejected_rows_table``. Returns the file's path."""
        rejected = RejectedRows(self.rejected_rows_path)
        errored = {job_id: job["errors_url"] for job_id, job in jobs.items() if job.get("errors_url")}
        if errored:
            rejected.load()
            runs = _SentParts(TaskStateStore(context), str(summary.get("method"))).row_runs()
            for job_id, url in errored.items():
                with tempfile.TemporaryFile() as errors_file:
                    self.hook.download_export_file(url, errors_file, max_bytes=MAX_IMPORT_BYTES)
                    errors_file.seek(0)
                    lines = text_lines(errors_file, f"errors file of job {job_id}", self.max_line_bytes)
                    for record in sendgrid_records(
                        lines, f"errors file of job {job_id}", job_id, runs.get(job_id)
                    ):
                        rejected.add(record)
            rejected.publish()
            self.log.info("Rows SendGrid rejected added to %s", rejected.path)
        if self.rejected_rows_table:
            from airflow_provider_sgseg.version_compat import BaseHook

            hook = BaseHook.get_connection(str(self.sql_conn_id)).get_hook()  # type: ignore[no-untyped-call]
            inserted = replace_table_rows(hook, self.rejected_rows_table, _task_key(context), rejected.path)
            self.log.info("%d rejected rows written to table %s", inserted, self.rejected_rows_table)
        return str(rejected.path)

    def _finish(
        self, context: Context, summary: dict[str, Any], results: Mapping[str, Any]
    ) -> dict[str, Any]:
        jobs = {job_id: dict(results.get(job_id) or {}) for job_id in summary["job_ids"]}
        result = dict(summary)
        result["jobs"] = jobs
        for name in ("created_count", "updated_count", "errored_count"):
            result[name] = sum(int(job.get(name) or 0) for job in jobs.values())
        result["errors_urls"] = [job["errors_url"] for job in jobs.values() if job.get("errors_url")]
        if self.rejected_rows_path is not None:
            result["rejected_rows_path"] = self._record_rejected(context, summary, jobs)
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
        self.log.info("%s", summaries.upsert(result))
        return result


def _part(
    index: int, contacts: int, rows: Sequence[int], size: int, merged: Sequence[int] = ()
) -> dict[str, Any]:
    """A batch or import file in a dry run's report."""
    return {
        "index": index,
        "contacts": contacts,
        "first_row": rows[0],
        "last_row": rows[-1],
        "bytes": size,
        "merged_rows": list(merged),
    }


def _column_report(target: ColumnTarget, to_create: Sequence[str]) -> dict[str, Any]:
    """Where a column goes, in a dry run's report."""
    if target.custom is None:
        return {"column": target.column, "field": target.field, "kind": "reserved"}
    new = target.custom.name in to_create
    return {
        "column": target.column,
        "field": target.custom.name,
        "kind": "custom (to create)" if new else "custom",
        "field_id": None if new else target.custom.id,
        "field_type": target.custom.field_type,
    }


def _task_key(context: Context) -> dict[str, Any]:
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "map_index": map_index}


def _field_mappings(plan: list[ColumnTarget], catalog: FieldCatalog) -> list[str | None]:
    """The CSV import's ``field_mappings``: each planned column's field id."""
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
