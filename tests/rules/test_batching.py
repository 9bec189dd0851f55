"""Upsert batches within 30,000 contacts and 6,000,000 encoded bytes, duplicates merged."""

from __future__ import annotations

import json

import pytest

from airflow_provider_sgseg.rules.batching import MAX_CONTACTS_PER_UPSERT, MAX_UPSERT_BYTES, batches, encode
from airflow_provider_sgseg.rules.contacts import SendGridRowError

LIST = "11111111-2222-3333-4444-555555555555"


def rows(count: int, start: int = 1, pad: int = 0) -> list[tuple[int, dict[str, str]]]:
    return [(n, {"email": f"u{n}@x.io", "first_name": "x" * pad}) for n in range(start, start + count)]


def test_count_limit_splits_and_bodies_are_exact_json() -> None:
    out = list(batches(rows(MAX_CONTACTS_PER_UPSERT + 1), [LIST]))
    assert [b.contacts for b in out] == [MAX_CONTACTS_PER_UPSERT, 1]
    assert (out[1].first_row, out[1].last_row, out[1].index) == (30_001, 30_001, 1)
    body = json.loads(out[0].body)
    assert body["list_ids"] == [LIST] and len(body["contacts"]) == MAX_CONTACTS_PER_UPSERT
    assert encode(body) == out[0].body  # the measured bytes are the sent bytes


def test_byte_limit_measured_on_the_encoded_body() -> None:
    out = list(batches(rows(10, pad=40), max_bytes=300))
    assert len(out) > 1
    assert all(len(b.body) <= 300 for b in out)
    assert sum(b.contacts for b in out) == 10
    # the real limit: 20,000 contacts of ~400 bytes exceed 6,000,000 bytes before 30,000 contacts
    big = list(batches(rows(20_000, pad=380)))
    assert len(big) == 2 and all(len(b.body) <= MAX_UPSERT_BYTES for b in big)
    assert len(big[0].body) > MAX_UPSERT_BYTES - 500


def test_non_ascii_counts_as_utf8_bytes() -> None:
    contact = {"email": "a@x.io", "first_name": "é" * 40}
    out = list(
        batches(
            [(1, contact), (2, {**contact, "email": "b@x.io"})],
            max_bytes=len(encode({"contacts": [contact]})) + 2,
        )
    )
    assert [b.contacts for b in out] == [1, 1]


def test_duplicate_identifiers_in_a_batch_are_merged_and_reported() -> None:
    source = [
        (1, {"email": "a@x.io", "first_name": "A"}),
        (2, {"email": "b@x.io"}),
        (3, {"email": "a@x.io", "last_name": "Z", "external_id": "e1"}),
        (4, {"external_id": "e1", "city": "Oslo"}),
    ]
    (batch,) = batches(source)
    assert batch.contacts == 2 and batch.merged_rows == (3, 4)
    contacts = json.loads(batch.body)["contacts"]
    assert contacts[0] == {
        "email": "a@x.io",
        "first_name": "A",
        "last_name": "Z",
        "external_id": "e1",
        "city": "Oslo",
    }


def test_a_contact_larger_than_the_limit_names_its_row() -> None:
    with pytest.raises(SendGridRowError, match="row 1") as caught:
        list(batches(rows(1, pad=500), max_bytes=200))
    assert caught.value.row == 1


def test_streaming_one_batch_at_a_time() -> None:
    seen = []

    def source():
        for n in range(1, 7):
            seen.append(n)
            yield n, {"email": f"u{n}@x.io"}

    stream = batches(source(), max_contacts=2)
    first = next(stream)
    assert first.contacts == 2 and seen == [1, 2, 3]  # only one row past the first batch was read
