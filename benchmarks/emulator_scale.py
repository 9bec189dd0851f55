"""Benchmark 5: the emulator with 100,000 contacts: seeding them, then evaluating a segment over them.

The emulator runs in its own process on its manual clock. Seeding goes through the admin bulk
API (``POST /__emulator__/contacts/bulk``) in batches, timed from the first request to the last
answer. The segment matches every contact (``email LIKE '%@example.com'``), the worst case:
its filter reads all 100k rows and its sample hashes all 100k members. After the clock passes
SendGrid's creation delay, one ``GET`` computes the sample (count, membership hash and the
50-contact sample); that request is timed.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from benchmarks.emulator_process import EmulatorProcess
from benchmarks.report import Row, Section, ms

CONTACTS = 100_000
BATCH = 10_000
TARGET_SEED_SECONDS = 5.0
TARGET_EVALUATE_SECONDS = 1.0
QUERY = "SELECT contact_id, updated_at FROM contact_data WHERE email LIKE '%@example.com'"
SEGMENTS_PATH = "/v3/marketing/segments/2.0"
CITIES = ("Paris", "Lyon", "Berlin", "Madrid", "Austin", "Oslo", "Porto", "Kyoto")


def contact(index: int) -> dict[str, Any]:
    return {
        "email": f"person{index}@example.com",
        "first_name": f"First{index}",
        "last_name": f"Last{index}",
        "city": CITIES[index % len(CITIES)],
        "country": "FR" if index % 2 else "US",
    }


def run(contacts: int = CONTACTS) -> Section:
    batches = [
        [contact(i) for i in range(start, min(start + BATCH, contacts))]
        for start in range(0, contacts, BATCH)
    ]
    with EmulatorProcess(clock="manual") as emulator:
        started = time.perf_counter()
        seeded = sum(emulator.admin.seed_contacts(batch) for batch in batches)
        seed_seconds = time.perf_counter() - started
        assert seeded == contacts, seeded

        with httpx.Client(base_url=emulator.base_url, headers=emulator.headers(), timeout=120) as client:
            created = client.post(SEGMENTS_PATH, json={"name": "everyone", "query_dsl": QUERY})
            created.raise_for_status()
            segment_id = created.json()["id"]
            emulator.admin.advance_clock(900 + 1)  # past the creation delay: the next read samples
            started = time.perf_counter()
            sampled = client.get(f"{SEGMENTS_PATH}/{segment_id}")
            evaluate_seconds = time.perf_counter() - started
            sampled.raise_for_status()
            started = time.perf_counter()
            client.get(f"{SEGMENTS_PATH}/{segment_id}").raise_for_status()
            cached_seconds = time.perf_counter() - started
        body = sampled.json()

    count_ok = body["contacts_count"] == contacts and len(body["contacts_sample"]) > 0
    rows = [
        Row(
            "5a",
            f"Emulator scale: seed {contacts:,} contacts via the admin bulk API",
            f"{seed_seconds:.2f} s",
            f"≤ {TARGET_SEED_SECONDS:.0f} s",
            "—",
            seed_seconds <= TARGET_SEED_SECONDS,
        ),
        Row(
            "5b",
            f"Emulator scale: evaluate a segment over {contacts:,} contacts (sampling GET)",
            ms(evaluate_seconds),
            f"≤ {TARGET_EVALUATE_SECONDS:.0f} s",
            "—",
            evaluate_seconds <= TARGET_EVALUATE_SECONDS and count_ok,
        ),
    ]
    notes = [
        f"Seeding: {len(batches)} requests of up to {BATCH:,} contacts; "
        f"{contacts / seed_seconds:,.0f} contacts/s including JSON encoding on the client.",
        f"Query: {QUERY}; contacts_count {body['contacts_count']:,}, "
        f"sample of {len(body['contacts_sample'])} contacts.",
        f"The next GET (sample already computed, nothing due): {ms(cached_seconds)}.",
    ]
    return Section("5. Emulator scale", rows, notes)
