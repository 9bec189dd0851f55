"""``SendGridExportContactsOperator``: the exact members of segments and lists out to files.

Retry safety: an export still valid is re-read for fresh URLs instead of being started again
(before Airflow 3.3, found in SendGrid's exports list: see docs/operators.md, "Airflow before 3.3").
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_sgseg.exceptions import (
    SendGridFileURLError,
    SendGridInputError,
    SendGridNotFoundError,
    SendGridResponseError,
)
from airflow_provider_sgseg.operators import _export_manifest
from airflow_provider_sgseg.operators._contact_files import count_rows, gunzipped, is_gzip
from airflow_provider_sgseg.operators._contact_jobs import ContactsTask
from airflow_provider_sgseg.rules import summaries, validation, waiting
from airflow_provider_sgseg.rules.adoption import ADOPTION_SKEW, adoptable_export, export_reusable
from airflow_provider_sgseg.rules.batching import (
    DECOMPRESSED_BYTES_PER_FILE_MB,
    DEFAULT_EXPORT_FILE_MB,
    DEFAULT_MAX_LINE_BYTES,
)
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.jobs import content_file_type, job_outcome, job_payload, url_expiring
from airflow_provider_sgseg.state_store import TaskStateStore, earlier_tries_since
from airflow_provider_sgseg.version_compat import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context


EXPORT_STATE_KEY = "sendgrid_contacts_export"


class SendGridExportContactsOperator(ContactsTask):
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
    :param max_line_bytes: longest line of a downloaded file (bytes; default 8 MiB).
    :param max_decompressed_bytes: largest downloaded file once decompressed (bytes; default
        8 MiB per MB of ``max_file_size``, i.e. about 41 GB for SendGrid's default 5000 MB).
    :param destination: directory to write into (created if missing).
    :param outlets: e.g. an ``Asset`` for the exported files; each asset event's ``extra`` gets
        the result below (without ``paths`` beyond the first 100).

    :raises SendGridInputError: no segment or list given, bad ids, file type or size.
    :raises SendGridFileError: a downloaded file beyond ``max_decompressed_bytes`` or with a
        line beyond ``max_line_bytes``, or not CSV, naming the file (and line).
    :raises SendGridFileURLError: the file host refused a download URL read fresh from the export.
    :raises AirflowFailException: the export failed at SendGrid, or the downloaded file holds
        the other file type (an adopted export of another task).
    :raises AirflowException: the wait timed out (``wait_timeout``) or met transient failures in
        a row; retries apply (a retry waits again for the same export).

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
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_decompressed_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.destination = destination
        self.segment_ids = segment_ids
        self.list_ids = list_ids
        self.file_type = validation.export_file_type(file_type)
        self.max_file_size = validation.max_file_size(max_file_size)
        self.max_line_bytes = validation.positive_int("max_line_bytes", max_line_bytes)
        self.max_decompressed_bytes = (
            (self.max_file_size or DEFAULT_EXPORT_FILE_MB) * DECOMPRESSED_BYTES_PER_FILE_MB
            if max_decompressed_bytes is None
            else validation.positive_int("max_decompressed_bytes", max_decompressed_bytes)
        )

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
        event = self._wait_for_jobs(
            context, "export", [export_id], "execute_complete", {"export_id": export_id}
        )
        return self.execute_complete(context, event, {"export_id": export_id})

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, resume: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Download the ready export (after the deferred or poke-mode wait).

        :raises: as :meth:`ContactsTask._jobs_ended`, and as ``execute`` for the download.
        """
        _, resume = self._jobs_ended(context, event, resume)
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
        segment_ids = validation.export_segment_ids(self.segment_ids or [])
        list_ids = validation.contact_list_ids(self.list_ids or [])
        self.log.info("%s", summaries.export(result, segment_ids, list_ids, self.destination))
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
        urls = list(urls)
        earlier = _export_manifest.recorded(directory, self.log)
        _export_manifest.record(directory, earlier | _export_manifest.file_names(len(urls), self.file_type))
        paths, written, rows = [], set(), 0
        for index in range(len(urls)):
            number = index + 1
            target = directory / f"contacts-{number}.{self.file_type}"
            size = self._download_file(export_id, urls, index, target)
            if is_gzip(target):
                zipped = target.with_name(target.name + ".gz")
                target.rename(zipped)
                target = zipped
            if number == 1:
                self._check_file_type(export_id, target)
            rows += count_rows(target, self.file_type, self.max_line_bytes, self.max_decompressed_bytes)
            self.log.info("Downloaded export file %d of %d: %s (%d bytes)", number, len(urls), target, size)
            paths.append(str(target))
            written.add(str(target.name))
        _export_manifest.clear_stale(directory, earlier, written, self.log)
        return {"paths": paths, "row_count": rows}

    def _download_file(self, export_id: str, urls: list[str], index: int, target: Any) -> int:
        """GET file ``index`` into ``target``: bytes written. A URL about to expire, or one the file
        host refuses (401/403), is replaced in ``urls`` by fresh ones from the export; a fresh URL
        refused too fails (the export is not started again)."""
        if url_expiring(urls[index], self.now()):
            self.log.info(
                "The URL of export file %d expires soon: reading export %s again", index + 1, export_id
            )
            urls[:] = self._fresh_urls(export_id, len(urls))
        try:
            return self._get(urls[index], target)
        except SendGridFileURLError as error:
            self.log.warning("%s; reading export %s again for fresh URLs", error, export_id)
        urls[:] = self._fresh_urls(export_id, len(urls))
        return self._get(urls[index], target)

    def _get(self, url: str, target: Any) -> int:
        with target.open("wb") as sink:
            return self.hook.download_export_file(url, sink, max_bytes=self.max_decompressed_bytes)

    def _fresh_urls(self, export_id: str, count: int) -> list[str]:
        """The export's download URLs, read again (``GET /v3/marketing/contacts/exports/{id}``).

        :raises SendGridResponseError: the export is no longer ready (a retry starts a new one) or
            lists another number of files.
        """
        answer = self.hook.get_export_status(export_id)
        outcome = job_outcome("export", export_id, answer)
        if not isinstance(outcome, waiting.Finished) or not export_reusable(answer, self.now(), 0.0):
            raise SendGridResponseError(
                f"Export {export_id} is no longer ready ({answer.get('status')}, expires_at "
                f"{answer.get('expires_at')}) while its files were being downloaded"
            )
        urls: list[str] = outcome.value.urls
        if len(urls) != count:
            raise SendGridResponseError(
                f"Export {export_id} now lists {len(urls)} files, not {count}: cannot match its fresh URLs"
            )
        return urls

    def _check_file_type(self, export_id: str, path: Any) -> None:
        """Fail (no retries: every retry would adopt the same export) when the downloaded file
        holds another type than ``file_type``; the file is removed. A garbled file is left to
        the row count (a retryable failure)."""
        with path.open("rb") as raw:
            held = content_file_type(gunzipped(raw, path).read(self.FIRST_LINE_BYTES))
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
