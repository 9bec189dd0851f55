"""Files of the contacts operators: CSV import files spooled for upload, downloaded export files
(gzip, row counts) and the digests that tell an unchanged part on a retry."""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from airflow_provider_sgseg.exceptions import SendGridFileError
from airflow_provider_sgseg.rules.batching import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS
from airflow_provider_sgseg.rules.contacts import ColumnTarget


def write_csv_chunk(
    spool: BinaryIO, contacts: Iterator[tuple[int, dict[str, Any]]], plan: list[ColumnTarget]
) -> list[int]:
    """Write up to one import file's worth of contacts (CSV) to ``spool``; the source rows written."""
    rows: list[int] = []
    text = io.TextIOWrapper(spool, "utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow([target.field for target in plan])
    for row_number, contact in contacts:
        custom = contact.get("custom_fields", {})
        writer.writerow(
            [_csv_value(custom.get(t.custom.id) if t.custom else contact.get(t.field)) for t in plan]
        )
        rows.append(row_number)
        if len(rows) >= MAX_IMPORT_ROWS or spool.tell() >= MAX_IMPORT_BYTES - 1_000_000:
            break
    text.detach()  # leave the spool open for the upload
    return rows


def file_chunks(file: BinaryIO) -> Iterator[bytes]:
    file.seek(0)
    while chunk := file.read(1024 * 1024):
        yield chunk


def content_digest(chunks: Iterable[bytes]) -> str:
    """A short fingerprint of what was sent, to tell an unchanged batch/file on a retry."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()[:32]


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def is_gzip(path: Any) -> bool:
    with path.open("rb") as stream:
        return bool(stream.read(2) == b"\x1f\x8b")


def text_lines(stream: Any, path: str, max_line_bytes: int, max_bytes: int | None = None) -> Iterator[str]:
    """``stream``'s lines decoded as UTF-8 (line endings kept, for the csv module), a leading
    byte-order mark dropped, read at most ``max_line_bytes`` at a time (endings included).

    :raises SendGridFileError: naming ``path`` and the line: a line longer than
        ``max_line_bytes``, bytes that are not UTF-8 (with their byte offset), or more than
        ``max_bytes`` in all (a gzipped file's content).
    """
    offset = 0
    # readline, not iteration: Airflow 3.0's ObjectStoragePath file wrapper forwards attribute
    # access but not __iter__ (iterating it fails with "not subscriptable").
    for number, raw in enumerate(iter(lambda: stream.readline(max_line_bytes + 1), b""), start=1):
        if len(raw) > max_line_bytes:
            raise SendGridFileError(
                path, f"longer than max_line_bytes={max_line_bytes} bytes (line ending included)", line=number
            )
        if max_bytes is not None and offset + len(raw) > max_bytes:
            raise SendGridFileError(path, f"the content exceeds {max_bytes} bytes", line=number)
        start = len(codecs.BOM_UTF8) if number == 1 and raw.startswith(codecs.BOM_UTF8) else 0
        try:
            yield raw[start:].decode("utf-8")
        except UnicodeDecodeError as error:
            raise SendGridFileError(
                path,
                f"not UTF-8 text: byte {raw[start + error.start : start + error.end]!r} at byte offset "
                f"{offset + start + error.start} (line {number}); save the file as UTF-8",
            ) from None
        offset += len(raw)


def csv_records(lines: Iterable[str], path: str) -> Iterator[dict[Any, Any]]:
    """CSV records by header (``csv.DictReader``); a malformed one is a typed error.

    :raises SendGridFileError: the csv module refused a record (naming the line it stopped on).
    """
    read = 0

    def counted() -> Iterator[str]:
        nonlocal read
        for line in lines:
            read += 1
            yield line

    try:
        yield from csv.DictReader(counted())
    except csv.Error as error:
        raise SendGridFileError(path, f"not CSV: {error}", line=read) from None


def count_rows(path: Any, file_type: str, max_line_bytes: int, max_bytes: int) -> int:
    """Records in a downloaded export: CSV rows after the header, or non-empty JSON lines.

    :raises SendGridFileError: a line or the (gunzipped) content beyond its bound, or not CSV.
    """
    with path.open("rb") as raw, gunzipped(raw, path) as stream:
        lines = text_lines(stream, str(path), max_line_bytes, max_bytes)
        if file_type == "csv":
            return sum(1 for _ in csv_records(lines, str(path)))
        return sum(1 for line in lines if line.strip())


def gunzipped(raw: BinaryIO, path: Any) -> gzip.GzipFile | BinaryIO:
    """A downloaded file's content: ``raw`` itself, or gunzipped when its name ends in ``.gz``."""
    return gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw
