"""Issue 19 parts 3 and 4 against the emulator over loopback HTTP: exports of many files finish
although their URLs expire between files, and nothing read from a file is unbounded."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.exceptions import SendGridFileError, SendGridFileURLError, SendGridResponseError
from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.operators import contacts_export
from airflow_provider_sgseg.operators._contact_files import count_rows
from airflow_provider_sgseg.operators.contacts import (
    SendGridExportContactsOperator,
    SendGridUpsertContactsOperator,
)
from tests.operators.test_contacts_emulator import EXPORTS, contacts_module_call, run, wire, writes

__all__ = ["wire"]  # the fixture, shared with test_contacts_emulator.py
CONTACTS_IN_EXPORT = 6000  # with 200 characters each: several files of max_file_size=1 (MB)


@pytest.fixture
def big_list(sendgrid_emulator: EmulatorHandle) -> str:
    list_id = str(
        SendGridMarketingHook()._request(
            contacts_module_call("POST", "/v3/marketing/lists", {"name": "big"})
        )["id"]
    )
    people = [
        {"email": f"many{n}@example.com", "address_line_2": "x" * 200} for n in range(CONTACTS_IN_EXPORT)
    ]
    sendgrid_emulator.admin.seed_contacts(people, list_ids=[list_id])
    sendgrid_emulator.admin.configure(download_url_ttl=600)  # each URL lives 10 minutes
    return list_id


def slow_downloads(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle, seconds: float) -> list[str]:
    """Each file takes ``seconds`` to download (on the emulator's clock); the URLs used."""
    used: list[str] = []
    real = SendGridMarketingHook.download_export_file

    def download(self: SendGridMarketingHook, url: str, sink: Any, **kwargs: Any) -> int:
        used.append(url)
        size = real(self, url, sink, **kwargs)
        emulator.admin.advance_clock(seconds)
        return size

    monkeypatch.setattr(SendGridMarketingHook, "download_export_file", download)
    return used


def export_reads(emulator: EmulatorHandle, export_id: str) -> int:
    return len(emulator.admin.requests(method="GET", path_prefix=f"{EXPORTS}/{export_id}"))


@pytest.mark.parametrize("expiry_known", [True, False], ids=["expiry-in-url", "refused-by-host"])
def test_an_export_of_several_files_finishes_although_urls_expire_between_files(
    sendgrid_emulator: EmulatorHandle,
    wire: Any,
    big_list: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    expiry_known: bool,
) -> None:
    used = slow_downloads(monkeypatch, sendgrid_emulator, 700)  # longer than a URL lives
    if not expiry_known:  # a URL shape the provider cannot read: the host's 403 tells
        monkeypatch.setattr(contacts_export, "url_expiring", lambda url, now: False)
    operator = SendGridExportContactsOperator(
        task_id="e", list_ids=[big_list], max_file_size=1, destination=str(tmp_path)
    )
    result = run(wire(operator))
    assert len(result["paths"]) >= 2
    assert result["row_count"] == result["contact_count"] == CONTACTS_IN_EXPORT
    assert len(sendgrid_emulator.admin.requests(method="POST", path_prefix=EXPORTS)) == 1  # no new export
    assert len(set(used)) == len(used)  # each file fetched with its own, fresh URL
    assert export_reads(sendgrid_emulator, result["export_id"]) >= len(result["paths"]) + 1
    emails = set()
    for path in result["paths"]:
        with open(path, newline="") as file:
            emails.update(row["EMAIL"] for row in csv.DictReader(file))
    assert len(emails) == CONTACTS_IN_EXPORT


def test_a_fresh_url_refused_too_fails_without_blaming_the_api_key(
    sendgrid_emulator: EmulatorHandle,
    wire: Any,
    big_list: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(contacts_export, "url_expiring", lambda url, now: False)
    real_get = SendGridExportContactsOperator._get

    def tampered(self: Any, url: str, target: Any) -> int:  # a signature the host never accepts
        return real_get(self, url.replace("X-Signature=", "X-Signature=0"), target)

    monkeypatch.setattr(SendGridExportContactsOperator, "_get", tampered)
    operator = SendGridExportContactsOperator(task_id="e", list_ids=[big_list], destination=str(tmp_path))
    with pytest.raises(SendGridFileURLError, match="never sent there") as caught:
        run(wire(operator))
    assert "API key or plan" not in str(caught.value)
    assert len(sendgrid_emulator.admin.requests(method="POST", path_prefix=EXPORTS)) == 1


def test_an_export_expiring_during_the_download_fails_this_try_retryably(
    sendgrid_emulator: EmulatorHandle,
    wire: Any,
    big_list: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sendgrid_emulator.admin.configure(export_expiry=650)
    slow_downloads(monkeypatch, sendgrid_emulator, 700)
    operator = SendGridExportContactsOperator(
        task_id="e", list_ids=[big_list], max_file_size=1, destination=str(tmp_path)
    )
    with pytest.raises(SendGridResponseError, match="no longer ready"):
        run(wire(operator))


# ------------------------------------------------------------------------------------ bounds


def test_a_downloaded_file_beyond_its_decompressed_bound_names_the_file_and_limit(
    sendgrid_emulator: EmulatorHandle, wire: Any, big_list: str, tmp_path: Path
) -> None:
    operator = SendGridExportContactsOperator(
        task_id="e", list_ids=[big_list], destination=str(tmp_path), max_decompressed_bytes=100_000
    )
    with pytest.raises(SendGridFileError, match=r"more than 100000 bytes decompressed") as caught:
        run(wire(operator))
    assert "/__files__/exports/" in str(caught.value) and "X-Signature" not in str(caught.value)
    for name in ("max_decompressed_bytes", "max_line_bytes"):
        with pytest.raises(SendGridFileError.__mro__[1], match=name):
            SendGridExportContactsOperator(task_id="e", list_ids=[big_list], destination="x", **{name: 0})


def test_the_default_decompressed_bound_follows_max_file_size() -> None:
    default = SendGridExportContactsOperator(task_id="e", list_ids=["x"], destination="x")
    small = SendGridExportContactsOperator(task_id="e", list_ids=["x"], destination="x", max_file_size=10)
    assert default.max_decompressed_bytes > 5000 * 1024 * 1024  # well above SendGrid's largest file
    assert small.max_decompressed_bytes == 10 * 8 * 1024 * 1024


def test_a_gzipped_export_file_is_counted_within_its_bounds(tmp_path: Path) -> None:
    path = tmp_path / "contacts-1.csv.gz"
    path.write_bytes(gzip.compress(b"EMAIL\n" + b"a@example.com\n" * 100_000))
    assert count_rows(path, "csv", 1024, 10_000_000) == 100_000
    with pytest.raises(SendGridFileError, match=r"exceeds 100000 bytes") as caught:
        count_rows(path, "csv", 1024, 100_000)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("file_type", ["csv", "json"])
def test_a_line_beyond_max_line_bytes_in_an_export_file_is_typed(tmp_path: Path, file_type: str) -> None:
    path = tmp_path / f"contacts-1.{file_type}"
    long_line = b'"' + b"x" * 5000 + b'"\n' if file_type == "csv" else b'{"email": "' + b"x" * 5000 + b'"}\n'
    path.write_bytes((b"EMAIL\n" if file_type == "csv" else b"") + long_line)
    with pytest.raises(SendGridFileError, match=r"line \d: longer than max_line_bytes=4096") as caught:
        count_rows(path, file_type, 4096, 10**9)
    assert caught.value.path == str(path)


def test_a_malformed_export_csv_is_typed_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "contacts-1.csv"
    path.write_bytes(b"EMAIL,NOTE\na@example.com,ok\nb@example.com," + b"y" * 200_000 + b"\n")
    with pytest.raises(SendGridFileError, match=r"line 3: not CSV: field larger than field limit"):
        count_rows(path, "csv", 1 << 20, 10**9)


@pytest.mark.parametrize("suffix", ["csv", "ndjson"])
def test_a_source_line_beyond_max_line_bytes_fails_before_any_write_naming_file_and_line(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"long.{suffix}"
    if suffix == "csv":
        path.write_bytes(b"email,first_name\na@example.com,A\nb@example.com," + b"B" * 3_000_000 + b"\n")
    else:
        rows = [{"email": "a@example.com"}, {"email": "b@example.com", "first_name": "B" * 3_000_000}]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    operator = SendGridUpsertContactsOperator(task_id="t", source_path=str(path), max_line_bytes=1_000_000)
    with pytest.raises(
        SendGridFileError, match=r"line 3: longer than max_line_bytes=1000000|line 2: longer"
    ) as caught:
        run(wire(operator))
    assert caught.value.path == str(path)
    assert writes(sendgrid_emulator) == []


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"email,note\n" + b"a@example.com," + b"n" * 200_000 + b"\n", 2),  # csv's field limit
        (b"email," + b"h" * 200_000 + b"\na@example.com,x\n", 1),  # ... in the header
        (b'email,note\na@example.com,"never closed\n', None),  # csv: unexpected end of data (strict)
    ],
    ids=["long-field", "long-header", "unclosed-quote"],
)
def test_a_malformed_source_csv_is_a_typed_error_before_any_write(
    sendgrid_emulator: EmulatorHandle, wire: Any, tmp_path: Path, content: bytes, line: int | None
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    operator = SendGridUpsertContactsOperator(task_id="t", source_path=str(path), ignore_columns=["note"])
    try:
        run(wire(operator))
    except SendGridFileError as error:
        assert error.path == str(path)
        if line is not None:
            assert error.line == line
    except Exception as error:
        pytest.fail(f"untyped {type(error).__name__}: {error}")
    else:
        assert line is None  # an unclosed quote at the end is one (long) value to csv: accepted
    assert line is None or writes(sendgrid_emulator) == []
