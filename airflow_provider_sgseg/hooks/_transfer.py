"""File transfers to and from the URLs SendGrid hands out (import upload URI, export files).

Those URLs are pre-signed and foreign to the API host: the API key is never sent to them, and
bodies are streamed in chunks, so a 5 GB import or a 1,000,000-contact export never sits in memory.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

import httpx
import tenacity

from airflow_provider_sgseg.exceptions import SendGridTransportError
from airflow_provider_sgseg.hooks._errors import error_for_status
from airflow_provider_sgseg.hooks._retry import RETRYABLE_STATUSES, RetryPolicy, backoff

CHUNK_BYTES = 1024 * 1024
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _where(url: str) -> str:
    """Scheme, host and path of a pre-signed URL: its query (the signature) stays out of errors."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}{parsed.path}"


def upload_file(
    url: str,
    headers: list[dict[str, str]],
    file: BinaryIO,
    *,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
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
            _put(url, sent, zipped, timeout, transport)
    else:
        _put(url, sent, file, timeout, transport)


def _put(
    url: str, sent: dict[str, str], file: BinaryIO, timeout: float, transport: httpx.BaseTransport | None
) -> None:
    start = file.tell()
    size = file.seek(0, os.SEEK_END) - start
    file.seek(start)
    sent = {**sent, "Content-Length": str(size)}

    def chunks() -> Iterator[bytes]:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk

    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.put(url, content=chunks(), headers=sent)
    except httpx.RequestError as exc:
        raise SendGridTransportError(
            f"No answer to the import upload: {type(exc).__name__}", method="PUT", path=_where(url)
        ) from None
    if not response.is_success:
        raise error_for_status("PUT", _where(url), response.status_code, response.content)


def download_file(
    url: str,
    sink: BinaryIO,
    *,
    timeout: float,
    policy: RetryPolicy,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """GET ``url`` into ``sink`` in chunks; bytes written. Retried on 429/5xx/transport errors
    (a GET), each retry rewinding and truncating ``sink`` to where it started.

    :raises SendGridError: a non-retryable answer, or the last failure once retries run out.
    """
    start = sink.tell()
    where = _where(url)

    def once() -> int:
        sink.seek(start)
        sink.truncate()
        written = 0
        try:
            with (
                httpx.Client(timeout=timeout, transport=transport) as client,
                client.stream("GET", url) as response,
            ):
                if not response.is_success:
                    raise error_for_status("GET", where, response.status_code, response.read())
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    sink.write(chunk)
                    written += len(chunk)
        except _TRANSIENT as exc:
            raise SendGridTransportError(
                f"Export download interrupted: {type(exc).__name__}", method="GET", path=where
            ) from exc
        return written

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts),
        wait=lambda state: backoff(state.attempt_number, policy),
        retry=tenacity.retry_if_exception(_retryable),
        sleep=policy.sleep,
        reraise=True,
    )
    return int(retrying(once))


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, SendGridTransportError):
        return True
    status = getattr(exc, "status_code", None)
    return status in RETRYABLE_STATUSES


__all__ = ["download_file", "upload_file"]
