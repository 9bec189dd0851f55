"""Issue 19 parts 3 and 4 at the hook: file host refusals are not API-key problems, and a
download is bounded once decompressed (httpx.MockTransport through respx)."""

from __future__ import annotations

import gzip
import io

import httpx
import pytest

from airflow_provider_sgseg.exceptions import SendGridFileError, SendGridFileURLError, SendGridTransportError
from tests.hooks.test_marketing_unit import MakeHook

EXPORT_URL = "https://files.example.test/export/1.csv?X-Amz-Signature=s3cr3t"
EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)


def test_a_403_from_the_file_host_names_the_url_not_the_api_key(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(403, content=EXPIRED, headers={"Content-Type": "application/xml"}))
    with pytest.raises(SendGridFileURLError) as caught:
        hook.download_export_file(EXPORT_URL, io.BytesIO())
    text = str(caught.value)
    assert "Request has expired" in text and "never sent there" in text
    assert "API key or plan" not in text and "s3cr3t" not in text
    assert len(fake.requests) == 1  # the same URL would be refused again: not retried


def test_a_gzip_encoded_download_is_gunzipped_within_its_bound(make_hook: MakeHook) -> None:
    bomb = gzip.compress(b"a" * (40 * 1024 * 1024))  # about 40 KB on the wire
    hook, _ = make_hook(httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"}))
    sink = io.BytesIO()
    with pytest.raises(SendGridFileError, match=r"more than 5000000 bytes decompressed") as caught:
        hook.download_export_file(EXPORT_URL, sink, max_bytes=5_000_000)
    assert "files.example.test/export/1.csv" in str(caught.value) and "s3cr3t" not in str(caught.value)
    assert len(sink.getvalue()) <= 5_000_000


def test_a_gzip_encoded_download_of_several_members_arrives_whole(make_hook: MakeHook) -> None:
    payload = b"EMAIL\n" + b"".join(f"u{n}@x.io\n".encode() for n in range(50_000))
    body = gzip.compress(payload[:1000]) + gzip.compress(payload[1000:])
    hook, fake = make_hook(httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"}))
    sink = io.BytesIO()
    assert hook.download_export_file(EXPORT_URL, sink, max_bytes=len(payload)) == len(payload)
    assert sink.getvalue() == payload
    assert fake.requests[0].headers["Accept-Encoding"] == "gzip"


def test_a_garbled_gzip_body_is_retried_as_a_cut_download(make_hook: MakeHook) -> None:
    good = gzip.compress(b"EMAIL\na@x.io\n")
    hook, fake = make_hook(
        httpx.Response(200, content=b"\x1f\x8b\x08\x00garbage", headers={"Content-Encoding": "gzip"}),
        httpx.Response(200, content=good, headers={"Content-Encoding": "gzip"}),
    )
    sink = io.BytesIO()
    assert hook.download_export_file(EXPORT_URL, sink) == len(b"EMAIL\na@x.io\n")
    assert len(fake.requests) == 2
    hook, fake = make_hook(
        *[httpx.Response(200, content=good[:-9], headers={"Content-Encoding": "gzip"})] * 4
    )
    with pytest.raises(SendGridTransportError, match="interrupted"):
        hook.download_export_file(EXPORT_URL, io.BytesIO())
