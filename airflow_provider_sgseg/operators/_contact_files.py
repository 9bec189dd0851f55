"""Files of the contacts operators: CSV import files spooled for upload, downloaded export files
(gzip, row counts) and the digests that tell an unchanged part on a retry."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from airflow_provider_sgseg.rules.batching import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS
from airflow_provider_sgseg.rules.contacts import ColumnTarget


def write_csv_chunk(
    spool: BinaryIO, contacts: Iterator[tuple[int, dict[str, Any]]], plan: list[ColumnTarget]
) -> int:
    """Write up to one import file's worth of contacts (CSV) to ``spool``; rows written."""
    rows = 0
    text = io.TextIOWrapper(spool, "utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow([target.field for target in plan])
    for _, contact in contacts:
        custom = contact.get("custom_fields", {})
        writer.writerow(
            [_csv_value(custom.get(t.custom.id) if t.custom else contact.get(t.field)) for t in plan]
        )
        rows += 1
        if rows >= MAX_IMPORT_ROWS or spool.tell() >= MAX_IMPORT_BYTES - 1_000_000:
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


def count_rows(path: Any, file_type: str) -> int:
    """Records in a downloaded export: CSV rows after the header, or non-empty JSON lines."""
    with path.open("rb") as raw, io.TextIOWrapper(gunzipped(raw, path), "utf-8", newline="") as text:
        if file_type == "csv":
            return max(sum(1 for _ in csv.reader(text)) - 1, 0)
        return sum(1 for line in text if line.strip())


def gunzipped(raw: BinaryIO, path: Any) -> gzip.GzipFile | BinaryIO:
    """A downloaded file's content: ``raw`` itself, or gunzipped when its name ends in ``.gz``."""
    return gzip.GzipFile(fileobj=raw) if path.name.endswith(".gz") else raw
