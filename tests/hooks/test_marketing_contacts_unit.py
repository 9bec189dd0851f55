"""Narrow unit tests of the hook's contacts methods with httpx.MockTransport.

Emulator-backed behaviour lives in tests/operators/test_contacts_emulator.py.
"""

from __future__ import annotations

import gzip
import io
import json

import httpx
import pytest

from airflow_provider_sgseg.exceptions import (
    SendGridForbiddenError,
    SendGridInputError,
    SendGridResponseError,
    SendGridServerError,
    SendGridTransportError,
)
from tests.hooks.test_marketing_unit import KEY, SEG, MakeHook, Sleeps

UPLOAD = "https://uploads.example.test/import/abc?signature=s3cr3t"
EXPORT_URL = "https://files.example.test/export/1.csv?sig=s3cr3t"


def test_upsert_sends_the_encoded_body_as_is_once(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(500, json={"errors": [{"message": "boom"}]}))
    body = b'{"contacts":[{"email":"a@x.io"}]}'
    with pytest.raises(SendGridServerError):
        hook.upsert_contacts(body)
    assert len(fake.requests) == 1  # a write is never retried blindly
    assert fake.requests[0].method == "PUT" and fake.requests[0].url.path == "/v3/marketing/contacts"
    assert fake.requests[0].content == body


def test_upsert_returns_the_job_id(make_hook: MakeHook) -> None:
    hook, _ = make_hook(httpx.Response(202, json={"job_id": "job-1"}))
    assert hook.upsert_contacts(b'{"contacts":[{"email":"a@x.io"}]}') == "job-1"


def test_export_start_body_and_no_retry(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.ConnectError("refused"))
    with pytest.raises(SendGridTransportError):
        hook.start_contacts_export(segment_ids=[SEG], file_type="json", max_file_size=10)
    assert len(fake.requests) == 1
    assert fake.body(0) == {"file_type": "json", "segment_ids": [SEG], "max_file_size": 10}


def test_status_reads_are_retried(make_hook: MakeHook, sleeps: Sleeps) -> None:
    hook, fake = make_hook(httpx.Response(503), httpx.Response(200, json={"id": "j", "status": "pending"}))
    assert hook.get_import_status("j")["status"] == "pending"
    assert len(fake.requests) == 2 and fake.requests[0].url.path == "/v3/marketing/contacts/imports/j"


def test_field_definition_rules_before_any_request(make_hook: MakeHook) -> None:
    hook, fake = make_hook()
    with pytest.raises(SendGridInputError, match="letters, digits and _"):
        hook.create_field_definition("1st-choice", "Text")
    with pytest.raises(SendGridInputError, match="Text, Number, Date"):
        hook.create_field_definition("plan", "Boolean")
    with pytest.raises(SendGridInputError, match="export_id"):
        hook.get_export_status("../../segments")
    assert fake.requests == []


def test_import_upload_goes_to_the_upload_uri_without_the_key_gzipped_when_asked(make_hook: MakeHook) -> None:
    hook, fake = make_hook(
        httpx.Response(200, json={"job_id": "imp-1", "upload_uri": UPLOAD,
                                  "upload_headers": [{"header": "Content-Encoding", "value": "gzip"}]}),
        httpx.Response(200),
    )  # fmt: skip
    started = hook.start_contacts_import(["_rf1_T", "w1"], [])
    assert fake.body(0) == {"file_type": "csv", "field_mappings": ["_rf1_T", "w1"]}
    csv_bytes = b"email,plan\na@x.io,pro\n"
    hook.upload_contacts_file(started["upload_uri"], started["upload_headers"], io.BytesIO(csv_bytes))
    upload = fake.requests[1]
    assert str(upload.url) == UPLOAD and upload.method == "PUT"
    assert "authorization" not in upload.headers and KEY not in str(upload.headers)
    assert upload.headers["content-encoding"] == "gzip"
    assert int(upload.headers["content-length"]) == len(upload.content)
    assert gzip.decompress(upload.content) == csv_bytes


def test_upload_failure_is_typed_and_keeps_the_signature_out(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(403, text="expired"))
    with pytest.raises(SendGridForbiddenError) as caught:
        hook.upload_contacts_file(UPLOAD, [], io.BytesIO(b"email\na@x.io\n"))
    assert "s3cr3t" not in str(caught.value) and "uploads.example.test/import/abc" in str(caught.value)
    assert len(fake.requests) == 1


def test_download_streams_into_the_sink_and_restarts_cleanly_after_a_cut(make_hook: MakeHook) -> None:
    payload = b"email\n" + b"".join(f"u{n}@x.io\n".encode() for n in range(1000))
    hook, fake = make_hook(httpx.Response(502), httpx.Response(200, content=payload))
    sink = io.BytesIO()
    sink.write(b"partial junk")  # as if an interrupted try had written
    sink.seek(0)
    assert hook.download_export_file(EXPORT_URL, sink) == len(payload)
    assert sink.getvalue() == payload
    assert len(fake.requests) == 2 and "authorization" not in fake.requests[1].headers


def test_export_file_type_and_size_rules() -> None:
    from airflow_provider_sgseg.rules import validation

    assert validation.export_file_type("CSV") == "csv"
    with pytest.raises(SendGridInputError, match="csv, json"):
        validation.export_file_type("xml")
    with pytest.raises(SendGridInputError, match="positive integer"):
        validation.max_file_size(0)
    assert json.loads(json.dumps(validation.contact_list_ids(None))) == []


def test_export_list_follows_every_page(make_hook: MakeHook) -> None:
    next_url = "https://api.sendgrid.com/v3/marketing/contacts/exports?page_token=p2"
    hook, fake = make_hook(
        httpx.Response(200, json={"result": [{"id": "e1"}], "_metadata": {"next": next_url}}),
        httpx.Response(200, json={"result": [{"id": "e2"}], "_metadata": {}}),
    )
    assert [item["id"] for item in hook.list_contact_exports()] == ["e1", "e2"]
    assert [str(request.url.params) for request in fake.requests] == ["", "page_token=p2"]


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://files.example.test/export.csv", "/export/1.csv", "https://"]
)
def test_only_http_urls_handed_out_by_sendgrid_are_followed(make_hook: MakeHook, url: str) -> None:
    hook, fake = make_hook(httpx.Response(200, content=b"email\n"))
    with pytest.raises(SendGridResponseError, match=r"not http\(s\)"):
        hook.download_export_file(url, io.BytesIO())
    with pytest.raises(SendGridResponseError, match=r"not http\(s\)"):
        hook.upload_contacts_file(url, [], io.BytesIO(b"email\na@x.io\n"))
    assert fake.requests == []


@pytest.mark.parametrize(
    "upload_headers",
    [
        [{"header": "X-Amz-Meta-\u00e9", "value": "v"}],  # was UnicodeEncodeError
        [{"header": "Content-Type", "value": "text/csv\u00e9"}],
        [{"name": "Content-Type", "value": "text/csv"}],  # was KeyError
        [{"header": "Content-Type", "value": "text/csv\r\nX-Injected: 1"}],
        [{"header": "Content-Type", "value": None}],
        ["Content-Encoding: gzip"],
        {"Content-Encoding": "gzip"},
    ],
)
def test_an_import_answer_with_malformed_upload_headers_is_a_response_error(
    make_hook: MakeHook, upload_headers: object
) -> None:
    hook, fake = make_hook(
        httpx.Response(200, json={"job_id": "imp-1", "upload_uri": UPLOAD, "upload_headers": upload_headers})
    )
    with pytest.raises(SendGridResponseError, match="upload_headers") as caught:
        hook.start_contacts_import(["_rf1_T"])
    assert len(fake.requests) == 1  # sent once; nothing uploaded
    assert "text/csv" not in str(caught.value)  # header values may be credentials: never quoted


def test_download_waits_as_long_as_the_file_host_asks(make_hook: MakeHook, sleeps: Sleeps) -> None:
    hook, fake = make_hook(
        httpx.Response(503, headers={"Retry-After": "7"}), httpx.Response(200, content=b"email\n")
    )
    assert hook.download_export_file(EXPORT_URL, io.BytesIO()) == len(b"email\n")
    assert len(fake.requests) == 2 and sleeps.sync == [7.0]


def test_download_is_not_retried_for_a_transport_error_no_retry_can_help(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.UnsupportedProtocol("no h2 here"), httpx.Response(200, content=b"email\n"))
    with pytest.raises(SendGridTransportError, match="UnsupportedProtocol"):
        hook.download_export_file(EXPORT_URL, io.BytesIO())
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"id": "e1", "status": "ready"},  # was "ready with 0 files": the task succeeded with no file
        {"id": "e1", "status": "ready", "urls": EXPORT_URL},
        {"id": "e1", "status": "ready", "urls": [EXPORT_URL, 7]},
    ],
)
def test_a_ready_export_without_a_list_of_urls_is_a_response_error(make_hook: MakeHook, body: object) -> None:
    hook, _ = make_hook(httpx.Response(200, json=body))
    with pytest.raises(SendGridResponseError, match="urls"):
        hook.get_export_status("e1")


def test_a_pending_export_needs_no_urls(make_hook: MakeHook) -> None:
    hook, _ = make_hook(httpx.Response(200, json={"id": "e1", "status": "pending"}))
    assert hook.get_export_status("e1")["status"] == "pending"
