"""File transfers to and from the URLs SendGrid hands out (import upload URI, export files).

Those URLs are pre-signed and foreign to the API host: the API key is never sent to them, and
bodies are streamed in chunks, so a 5 GB import or a 1,000,000-contact export never sits in memory.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import httpx
import tenacity

from airflow_provider_sgseg.exceptions import (
    ErrorDetail,
    SendGridError,
    SendGridFileError,
    SendGridFileURLError,
    SendGridTransportError,
)
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
            f"No answer to the import upload: {type(exc).__name__}", method="PUT", path=_where(url)
        ) from None
    if not response.is_success:
        raise _file_host_error("PUT", _where(url), response.status_code, response.content)


def download_file(
    url: str,
    sink: BinaryIO,
    *,
    timeout: float,
    policy: RetryPolicy,
    max_bytes: int | None = None,
) -> int:
    """GET ``url`` into ``sink`` in chunks; bytes written. Retried on 429/5xx/transport errors
    (a GET), each retry rewinding and truncating ``sink`` to where it started. A body sent with
    ``Content-Encoding: gzip`` is gunzipped here, at most ``CHUNK_BYTES`` at a time, so that
    neither memory nor ``sink`` grows past ``max_bytes`` (None: no bound).

    :raises SendGridFileURLError: the file host refused the URL (401/403: expired or invalid).
    :raises SendGridFileError: the (decompressed) file exceeds ``max_bytes``.
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
                httpx.Client(timeout=timeout) as client,
                client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response,
            ):
                if not response.is_success:
                    raise _file_host_error("GET", where, response.status_code, response.read())
                for chunk in _decoded(response):
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise SendGridFileError(
                            where,
                            f"holds more than {max_bytes} bytes decompressed (the bound for one file)",
                        )
                    sink.write(chunk)
        except (*_TRANSIENT, zlib.error) as exc:  # a cut gzip body too: the next try reads it whole
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


def _decoded(response: httpx.Response) -> Iterator[bytes]:
    """The body in chunks of at most ``CHUNK_BYTES``, gunzipped when sent gzip-encoded (httpx would
    inflate a whole network chunk at once: a small body can hold gigabytes)."""
    if response.headers.get("content-encoding", "").strip().lower() != "gzip":
        yield from response.iter_bytes(CHUNK_BYTES)
        return
    inflater = zlib.decompressobj(wbits=31)
    for raw in response.iter_raw(CHUNK_BYTES):
        data = raw
        while data:
            if inflater.eof:  # a gzip stream of several members
                inflater = zlib.decompressobj(wbits=31)
            chunk = inflater.decompress(data, CHUNK_BYTES)
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            if chunk:
                yield chunk
        while not inflater.eof and (chunk := inflater.decompress(b"", CHUNK_BYTES)):
            yield chunk
    if not inflater.eof:
        raise zlib.error("the gzip body ends before its end marker")


def _file_host_error(method: str, where: str, status: int, body: bytes) -> SendGridError:
    """The typed error for a file host's non-2xx answer: 401/403 mean the pre-signed URL expired
    or is invalid (the API key is never sent there), quoted with the host's own message."""
    if status not in (401, 403):
        return error_for_status(method, where, status, body)
    found = re.search(rb"<Message>(.*?)</Message>", body[:4096], re.DOTALL)
    message = found.group(1).decode("utf-8", "replace") if found else body[:300].decode("utf-8", "replace")
    return SendGridFileURLError(
        "The file host refused the pre-signed URL SendGrid handed out (expired or no longer valid; "
        "the API key is never sent there)",
        method=method,
        path=where,
        status_code=status,
        details=[ErrorDetail(message)] if message.strip() else [],
    )


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, SendGridTransportError):
        return True
    status = getattr(exc, "status_code", None)
    return status in RETRYABLE_STATUSES


__all__ = ["download_file", "upload_file"]
