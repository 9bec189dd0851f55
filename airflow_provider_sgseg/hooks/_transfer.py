"""File transfers to and from the URLs SendGrid hands out (import upload URI, export files).

Those URLs are pre-signed and foreign to the API host: the API key is never sent to them, and
bodies are streamed in chunks, so a 5 GB import or a 1,000,000-contact export never sits in memory.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

import httpx
import tenacity

from airflow_provider_sgseg.exceptions import SendGridResponseError, SendGridTransportError
from airflow_provider_sgseg.hooks._errors import error_for_status
from airflow_provider_sgseg.hooks._retry import Attempts, RetryPolicy
from airflow_provider_sgseg.rules.requests import Retry

CHUNK_BYTES = 1024 * 1024
log = logging.getLogger(__name__)


def _where(url: str) -> str:
    """Scheme, host and path of a pre-signed URL: its query (the signature) stays out of errors.

    :raises SendGridResponseError: ``url`` (from SendGrid's answer) is not an http(s) URL: no
        other scheme is ever followed.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        shown = url.split("?", 1)[0][:200] if isinstance(url, str) else type(url).__name__
        raise SendGridResponseError(f"SendGrid handed out a file URL that is not http(s): {shown!r}")
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}{parsed.path}"


def upload_file(
    url: str,
    headers: list[dict[str, str]],
    file: BinaryIO,
    *,
    timeout: float,
) -> None:
    """PUT ``file`` (a plain CSV, from its current position) to ``url`` with ``headers``; once.

    When the headers say ``Content-Encoding: gzip`` the file is gzipped on the way (through a
    temporary file). A Content-Length is sent (pre-signed object-store URLs refuse chunked uploads).
    :raises SendGridError: a non-2xx answer (typed like API errors) or no answer.
    """
    sent = {str(item["header"]): str(item["value"]) for item in headers}
    encoding = next((value for name, value in sent.items() if name.lower() == "content-encoding"), "")
    if encoding.lower() == "gzip":
        with tempfile.TemporaryFile() as zipped:
            with gzip.GzipFile(fileobj=zipped, mode="wb") as writer:
                shutil.copyfileobj(file, writer, CHUNK_BYTES)
            zipped.seek(0)
            _put(url, sent, zipped, timeout)
    else:
        _put(url, sent, file, timeout)


def _put(url: str, sent: dict[str, str], file: BinaryIO, timeout: float) -> None:
    where = _where(url)
    start = file.tell()
    size = file.seek(0, os.SEEK_END) - start
    file.seek(start)
    sent = {**sent, "Content-Length": str(size)}

    def chunks() -> Iterator[bytes]:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk

    try:
        with httpx.Client(timeout=timeout) as client:
            response = client.put(url, content=chunks(), headers=sent)
    except httpx.RequestError as exc:
        raise SendGridTransportError(
            f"No answer to the import upload: {type(exc).__name__}", method="PUT", path=where
        ) from None
    if not response.is_success:
        raise error_for_status("PUT", where, response.status_code, response.content)


def download_file(
    url: str,
    sink: BinaryIO,
    *,
    timeout: float,
    policy: RetryPolicy,
) -> int:
    """GET ``url`` into ``sink`` in chunks; bytes written. Retried as any idempotent request
    (``hooks/_retry.py``), each retry rewinding and truncating ``sink`` to where it started.

    :raises SendGridResponseError: ``url`` is not an http(s) URL.
    :raises SendGridError: a non-retryable answer, or the last failure once retries run out.
    """
    where = _where(url)
    start = sink.tell()
    attempts = Attempts(Retry.IDEMPOTENT, policy)

    def once() -> int:
        sink.seek(start)
        sink.truncate()
        written = 0
        try:
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream("GET", url) as response,
            ):
                if not response.is_success:
                    status = response.status_code
                    reset_at = attempts.refused(response.headers, status, policy.clock(), log, f"GET {where}")
                    raise error_for_status("GET", where, status, response.read(), reset_at=reset_at)
                attempts.named = None
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    sink.write(chunk)
                    written += len(chunk)
        except httpx.RequestError as exc:
            attempts.named = None
            raise SendGridTransportError(
                f"Export download interrupted: {type(exc).__name__}", method="GET", path=where
            ) from exc
        return written

    retrying = tenacity.Retrying(**attempts.options(policy.sleep, lambda state: None))
    return int(retrying(once))


__all__ = ["download_file", "upload_file"]
