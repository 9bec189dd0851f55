"""File transfers to and from the URLs SendGrid hands out (import upload URI, export files).

Those URLs are pre-signed and foreign to the API host: the API key is never sent to them, and
bodies are streamed in chunks, so a 5 GB import or a 1,000,000-contact export never sits in memory.
A transfer of any size passes as long as it moves: the headers, each chunk of ``CHUNK_BYTES``
and the answer after an upload each get the connection's ``timeout`` in all (a host that
drips its bytes is cut off, ``hooks/_deadline.py``).
"""

from __future__ import annotations

import datetime
import gzip
import logging
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
    SendGridResponseError,
    SendGridTransportError,
)
from airflow_provider_sgseg.hooks._deadline import bounded_client, deadline, renew
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
            renew(timeout)
            yield chunk
        renew(timeout)  # the answer, after the last chunk

    try:
        with bounded_client(timeout=timeout) as client, deadline(timeout):
            response = client.put(url, content=chunks(), headers=sent)
    except httpx.RequestError as exc:
        raise SendGridTransportError(
            f"No answer to the import upload: {type(exc).__name__}", method="PUT", path=where
        ) from None
    if not response.is_success:
        raise _file_host_error("PUT", where, response.status_code, response.content)


def download_file(
    url: str,
    sink: BinaryIO,
    *,
    timeout: float,
    policy: RetryPolicy,
    max_bytes: int | None = None,
) -> int:
    """GET ``url`` into ``sink`` in chunks; bytes written. Retried as any idempotent request
    (``hooks/_retry.py``), each retry rewinding and truncating ``sink`` to where it started. A body
    sent with ``Content-Encoding: gzip`` is gunzipped here, at most ``CHUNK_BYTES`` at a time, so
    that neither memory nor ``sink`` grows past ``max_bytes`` (None: no bound).

    :raises SendGridResponseError: ``url`` is not an http(s) URL.
    :raises SendGridFileURLError: the file host refused the URL (401/403: expired or invalid).
    :raises SendGridFileError: the (decompressed) file exceeds ``max_bytes``.
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
                bounded_client(timeout=timeout) as client,
                deadline(timeout),
                client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response,
            ):
                if not response.is_success:
                    status = response.status_code
                    reset_at = attempts.refused(response.headers, status, policy.clock(), log, f"GET {where}")
                    raise _file_host_error("GET", where, status, response.read(), reset_at=reset_at)
                attempts.named = None
                for chunk in _decoded(response):
                    renew(timeout)
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise SendGridFileError(
                            where,
                            f"holds more than {max_bytes} bytes decompressed (the bound for one file)",
                        )
                    sink.write(chunk)
        except httpx.RequestError as exc:
            attempts.named = None
            raise SendGridTransportError(
                f"Export download interrupted: {type(exc).__name__}", method="GET", path=where
            ) from exc
        except zlib.error as exc:  # a cut gzip body: the next try reads it whole
            attempts.named = None
            cut = httpx.RemoteProtocolError(f"the gzip body is cut or corrupt: {exc}")
            raise SendGridTransportError(
                "Export download interrupted: a cut or corrupt gzip body", method="GET", path=where
            ) from cut
        return written

    retrying = tenacity.Retrying(**attempts.options(policy.sleep, lambda state: None))
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


def _file_host_error(
    method: str, where: str, status: int, body: bytes, *, reset_at: datetime.datetime | None = None
) -> SendGridError:
    """The typed error for a file host's non-2xx answer: 401/403 mean the pre-signed URL expired
    or is invalid (the API key is never sent there), quoted with the host's own message."""
    if status not in (401, 403):
        return error_for_status(method, where, status, body, reset_at=reset_at)
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


__all__ = ["download_file", "upload_file"]
