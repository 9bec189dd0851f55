"""Reading SendGrid's contacts job answers: import/upsert jobs and export jobs. Pure.

``GET /v3/marketing/contacts/imports/{id}``: ``status`` ``pending | completed | errored | failed``
("errored means finished with some errors, failed means finished with all errors") and
``results`` counts. ``GET /v3/marketing/contacts/exports/{id}``: ``pending | ready | failure``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_sgseg.exceptions import SendGridError, SendGridInputError, SendGridNotFoundError
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.validation import EXPORT_FILE_TYPES

if TYPE_CHECKING:
    from airflow_provider_sgseg.rules.requests import ObjectRequest
from airflow_provider_sgseg.rules.waiting import (
    TRANSIENT_ERRORS,
    Finished,
    Outcome,
    Pending,
    Rejected,
    Transient,
    transient,
)

IMPORT_FINAL_STATUSES = frozenset({"completed", "errored", "failed"})
COUNT_NAMES = ("requested_count", "created_count", "updated_count", "errored_count")


@dataclass(frozen=True)
class ImportResult:
    """A finished import/upsert job: its status, counts and ``errors_url`` (or None)."""

    job_id: str
    status: str
    counts: dict[str, int]
    errors_url: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values for an event or XCom."""
        return {"job_id": self.job_id, "status": self.status, **self.counts, "errors_url": self.errors_url}


def import_outcome(job_id: str, job: Mapping[str, Any]) -> Outcome:
    """``Finished(ImportResult)`` once the job ended (``failed`` included: the caller decides what a
    failure means for the task), else ``Pending``. An unknown status is pending, with its name."""
    status = str(job.get("status") or "").lower()
    if status not in IMPORT_FINAL_STATUSES:
        return Pending(f"import job {job_id} is {status or 'without status'}")
    results = job.get("results")
    results = results if isinstance(results, Mapping) else {}
    counts = {name: _count(results.get(name)) for name in COUNT_NAMES}
    errors_url = results.get("errors_url")
    result = ImportResult(job_id, status, counts, str(errors_url) if errors_url else None)
    return Finished(result, f"import job {job_id} {status}")


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class ExportResult:
    """A ready export: its download ``urls``, ``contact_count`` and ``expires_at``."""

    export_id: str
    urls: list[str]
    contact_count: int | None
    expires_at: datetime.datetime | None


def export_outcome(export_id: str, export: Mapping[str, Any]) -> Outcome:
    """``Finished(ExportResult)`` when ready, ``Rejected`` on ``failure`` (with SendGrid's
    ``message``), else ``Pending``."""
    status = str(export.get("status") or "").lower()
    if status == "failure":
        message = export.get("message") or "no message given"
        return Rejected(f"SendGrid export {export_id} failed: {message}")
    if status != "ready":
        return Pending(f"export {export_id} is {status or 'without status'}")
    urls = export.get("urls")
    count = export.get("contact_count")
    result = ExportResult(
        export_id,
        [str(url) for url in urls] if isinstance(urls, list) else [],
        count if isinstance(count, int) and not isinstance(count, bool) else None,
        parse_instant(export.get("expires_at")),
    )
    return Finished(result, f"export {export_id} ready with {len(result.urls)} file(s)")


def all_jobs(outcomes: Mapping[str, Outcome]) -> Outcome:
    """One outcome for a set of jobs polled together: rejected if any is, transient if any poll
    failed, pending while any runs, else ``Finished`` with ``{job_id: value}`` of all of them."""
    for outcome in outcomes.values():
        if isinstance(outcome, Rejected):
            return outcome
    for outcome in outcomes.values():
        if isinstance(outcome, Transient):
            return outcome
    pending = [job for job, outcome in outcomes.items() if isinstance(outcome, Pending)]
    if pending:
        return Pending(f"{len(pending)} of {len(outcomes)} job(s) still running ({', '.join(pending[:5])})")
    values = {job: outcome.value for job, outcome in outcomes.items() if isinstance(outcome, Finished)}
    return Finished(values, f"all {len(values)} job(s) ended")


def job_outcome(kind: str, job_id: str, answer: Mapping[str, Any]) -> Outcome:
    """The outcome of one status answer for a job of ``kind`` (``import`` or ``export``)."""
    return import_outcome(job_id, answer) if kind == "import" else export_outcome(job_id, answer)


def job_payload(value: Any) -> dict[str, Any]:
    """A finished job's value as plain JSON (for trigger events and XCom). Export URLs stay out:
    they are re-read fresh after the wait."""
    if isinstance(value, ImportResult):
        return value.to_dict()
    if isinstance(value, ExportResult):
        expires = value.expires_at.isoformat() if value.expires_at else None
        return {"export_id": value.export_id, "contact_count": value.contact_count, "expires_at": expires}
    raise TypeError(f"not a job result: {value!r}")


def url_file_type(url: str) -> str | None:
    """``csv`` or ``json`` when a download URL's path ends so (query ignored, ``.gz`` stripped),
    else None: SendGrid does not document its URLs' shape."""
    path = urlsplit(url).path.lower().removesuffix(".gz")
    return next((kind for kind in EXPORT_FILE_TYPES if path.endswith(f".{kind}")), None)


URL_REFRESH_MARGIN = 120.0  # seconds: a download URL expiring sooner is refreshed before its GET


def url_expires_at(url: str) -> datetime.datetime | None:
    """When a pre-signed download URL expires, read from its query, or None when it does not say.
    SendGrid does not document its URLs' shape; understood: S3's SigV4 (``X-Amz-Date`` +
    ``X-Amz-Expires``), Google Cloud Storage's V4 (``X-Goog-Date`` + ``X-Goog-Expires``), an
    epoch ``Expires`` (S3 SigV2, CloudFront) and the emulator's ``X-Expires``."""
    query = {key.lower(): values[-1] for key, values in parse_qs(urlsplit(url).query).items()}
    try:
        for prefix in ("x-amz-", "x-goog-"):
            if f"{prefix}date" in query and f"{prefix}expires" in query:
                signed = datetime.datetime.strptime(query[f"{prefix}date"], "%Y%m%dT%H%M%SZ")
                lifetime = datetime.timedelta(seconds=int(query[f"{prefix}expires"]))
                return signed.replace(tzinfo=datetime.timezone.utc) + lifetime
        for name in ("expires", "x-expires"):
            if name in query:
                return datetime.datetime.fromtimestamp(int(query[name]), datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def url_expiring(url: str, now: datetime.datetime, margin: float = URL_REFRESH_MARGIN) -> bool:
    """Whether ``url`` expires within ``margin`` seconds of ``now`` (False when it does not say)."""
    expires_at = url_expires_at(url)
    return expires_at is not None and expires_at.timestamp() - now.timestamp() <= margin


def content_file_type(head: bytes) -> str | None:
    """What an export file holds, judged by its first line in ``head`` (its first gunzipped
    bytes): ``json`` when that line is a JSON object (JSON lines), ``csv`` when it looks like a
    header row (starts with a letter, ``_`` or ``"``), else None: empty, cut or garbled, which
    the row count judges (a retryable failure)."""
    first = head.removeprefix(b"\xef\xbb\xbf").lstrip().split(b"\n", 1)[0]
    try:
        line = first.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if line.startswith("{"):
        try:
            return "json" if isinstance(json.loads(line), dict) else None
        except ValueError:
            return None
    return "csv" if line[:1].isalpha() or line[:1] in ('"', "_") else None


JOB_KINDS = ("import", "export")


class JobBoard:
    """The jobs of one wait and what the latest round of status reads said of each. Finished jobs
    are not read again. The board names each status request (:meth:`request`); the sync (poke)
    and async (trigger) waits differ only in how they run it.

    :raises SendGridInputError: ``kind`` is neither ``import`` nor ``export``.
    """

    def __init__(self, kind: str, job_ids: Sequence[str]) -> None:
        if kind not in JOB_KINDS:
            raise SendGridInputError("job_kind", kind, f"must be one of {', '.join(JOB_KINDS)}")
        self.kind = kind
        self.job_ids = list(job_ids)
        self._ended: dict[str, Outcome] = {}
        self._round: dict[str, Outcome] = {}

    def to_read(self) -> list[str]:
        """Start a round: the jobs whose status to read now."""
        self._round = dict(self._ended)
        return [job_id for job_id in self.job_ids if job_id not in self._ended]

    def request(self, job_id: str) -> ObjectRequest:
        """The status read of one job: ``GET /v3/marketing/contacts/imports/{id}`` or
        ``GET /v3/marketing/contacts/exports/{id}``."""
        from airflow_provider_sgseg.rules.requests import GetExportStatus, GetImportStatus

        return GetImportStatus(job_id) if self.kind == "import" else GetExportStatus(job_id)

    def answered(self, job_id: str, answer: Mapping[str, Any]) -> None:
        outcome = job_outcome(self.kind, job_id, answer)
        self._round[job_id] = outcome
        if isinstance(outcome, Finished):
            self._ended[job_id] = outcome

    def failed(self, job_id: str, error: SendGridError) -> None:
        """A read that got no usable answer: transient (wait on), a job SendGrid does not know
        (404: a definitive answer, stop waiting), or any other error answer, re-raised: it ends
        the wait as that typed error, which the task's retries apply to (a key revoked mid-wait).

        :raises SendGridError: ``error``, unless transient or a 404.
        """
        if isinstance(error, TRANSIENT_ERRORS):
            self._round[job_id] = transient(error)
        elif isinstance(error, SendGridNotFoundError):
            self._round[job_id] = Rejected(f"reading job {job_id} failed: {error}")
        else:
            raise error

    def outcome(self) -> Outcome:
        """The round's outcome for the waiting engine (see :func:`all_jobs`)."""
        return all_jobs(self._round)


def __getattr__(name: str) -> Any:
    """The export adoption rules' former names here (0.3.0), now in :mod:`.adoption`."""
    if name in ("ADOPTION_SKEW", "adoptable_export", "export_reusable"):
        from airflow_provider_sgseg.rules import adoption

        return getattr(adoption, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
