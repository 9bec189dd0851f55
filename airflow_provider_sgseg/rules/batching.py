"""Cut a stream of contacts into ``PUT /v3/marketing/contacts`` bodies within SendGrid's limits. Pure.

SendGrid takes "up to 30,000 contacts, or 6MB of data, whichever is lower" per request. The size
is measured on the exact bytes sent (compact JSON, UTF-8). Whether "6MB" means 6,000,000 or
6 MiB is not documented, so the lower reading is the default.

Rows for the same contact (an equal identifier) inside one batch are **merged**, later values
winning, as two upserts in a row would leave the contact; the merged row numbers are reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_sgseg.exceptions import SendGridRowError
from airflow_provider_sgseg.rules.contacts import identifier_keys, merge_contacts

# SendGrid's upsert and import limits and the file bounds (their home: rules/limits.py).
from airflow_provider_sgseg.rules.limits import (
    DECOMPRESSED_BYTES_PER_FILE_MB as DECOMPRESSED_BYTES_PER_FILE_MB,
)
from airflow_provider_sgseg.rules.limits import DEFAULT_EXPORT_FILE_MB as DEFAULT_EXPORT_FILE_MB
from airflow_provider_sgseg.rules.limits import DEFAULT_MAX_LINE_BYTES as DEFAULT_MAX_LINE_BYTES
from airflow_provider_sgseg.rules.limits import MAX_CONTACTS_PER_UPSERT as MAX_CONTACTS_PER_UPSERT
from airflow_provider_sgseg.rules.limits import MAX_IMPORT_BYTES as MAX_IMPORT_BYTES
from airflow_provider_sgseg.rules.limits import MAX_IMPORT_ROWS as MAX_IMPORT_ROWS
from airflow_provider_sgseg.rules.limits import MAX_UPSERT_BYTES as MAX_UPSERT_BYTES


def encode(value: Any) -> bytes:
    """Compact JSON, UTF-8: the bytes the hook sends and the limits are measured on."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Batch:
    """One upsert body: ``index`` (0-based, in source order), the encoded ``body``, how many
    contacts it holds, the first and last source row it covers, and rows merged into others."""

    index: int
    body: bytes
    contacts: int
    first_row: int
    last_row: int
    merged_rows: tuple[int, ...] = ()
    rows: tuple[int, ...] = ()  # the source row of each contact, in body order


@dataclass
class _Open:
    contacts: list[bytes] = field(default_factory=list)
    by_identifier: dict[tuple[str, str], int] = field(default_factory=dict)
    size: int = 0
    count: int = 0
    first_row: int = 0
    last_row: int = 0
    merged_rows: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)


def batches(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    list_ids: Sequence[str] = (),
    *,
    max_contacts: int = MAX_CONTACTS_PER_UPSERT,
    max_bytes: int = MAX_UPSERT_BYTES,
) -> Iterator[Batch]:
    """Batches from ``(row_number, contact)`` pairs, streaming: one open batch in memory.

    :raises SendGridRowError: a single contact that alone exceeds ``max_bytes``.
    """
    prefix = b'{"list_ids":' + encode(list(list_ids)) + b',"contacts":[' if list_ids else b'{"contacts":['
    suffix = b"]}"
    empty_size = len(prefix) + len(suffix)
    index = 0
    current = _Open(size=empty_size)
    for row_number, contact in rows:
        encoded = encode(contact)
        if empty_size + len(encoded) > max_bytes:
            raise SendGridRowError(
                row_number,
                "*",
                f"{len(encoded)} bytes",
                f"one contact alone exceeds the {max_bytes}-byte limit",
            )
        keys = identifier_keys(contact)
        same = next((current.by_identifier[key] for key in keys if key in current.by_identifier), None)
        if same is not None:
            old = current.contacts[same]
            merged = merge_contacts(json.loads(old), contact)  # merges are rare: decode on demand
            merged_encoded = encode(merged)
            if current.size - len(old) + len(merged_encoded) <= max_bytes:
                current.contacts[same] = merged_encoded
                current.size += len(merged_encoded) - len(old)
                current.merged_rows.append(row_number)
                current.last_row = row_number
                for key in identifier_keys(merged):
                    current.by_identifier[key] = same
                continue
        separator = 1 if current.count else 0
        if current.count >= max_contacts or current.size + separator + len(encoded) > max_bytes:
            yield _close(index, current, prefix, suffix)
            index += 1
            current = _Open(size=empty_size)
            separator = 0
        if not current.count:
            current.first_row = row_number
        position = len(current.contacts)
        current.contacts.append(encoded)
        current.rows.append(row_number)
        for key in keys:
            current.by_identifier[key] = position
        current.size += separator + len(encoded)
        current.count += 1
        current.last_row = row_number
    if current.count:
        yield _close(index, current, prefix, suffix)


def _close(index: int, batch: _Open, prefix: bytes, suffix: bytes) -> Batch:
    body = prefix + b",".join(batch.contacts) + suffix
    return Batch(
        index, body, batch.count, batch.first_row, batch.last_row, tuple(batch.merged_rows), tuple(batch.rows)
    )


def row_runs(rows: Iterable[int]) -> list[list[int]]:
    """Source row numbers as ``[first, count]`` runs of consecutive rows: a part's rows, kept in
    the task state store to name the source row of each row SendGrid rejects."""
    runs: list[list[int]] = []
    for row in rows:
        if runs and runs[-1][0] + runs[-1][1] == row:
            runs[-1][1] += 1
        else:
            runs.append([row, 1])
    return runs


def row_at(runs: Sequence[Sequence[int]], position: int) -> int | None:
    """The source row of a part's ``position``-th contact (1-based), or None when out of range."""
    for first, count in runs:
        if position <= count:
            return first + position - 1 if position >= 1 else None
        position -= count
    return None
