"""Population timing on the manual clock: first samples, backoff, changes, refresh, engagement."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sgseg_emulator.clock import parse_iso, to_iso
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import SEGMENTS, create_segment, get_segment, person

HOUR = 3600
CLICKERS = (
    "SELECT c.contact_id, c.updated_at FROM contact_data AS c "
    "JOIN event_data AS e ON c.contact_id = e.contact_id WHERE e.event_type = 'click'"
)


def at(start: datetime, seconds: float) -> str:
    return to_iso(start + timedelta(seconds=seconds))


def test_contacts_segment_populates_15_minutes_after_creation(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(i) for i in range(3)] + [person(9, domain="other.org")])
    start = admin.now()
    segment = create_segment(
        api, "example", "SELECT contact_id, updated_at FROM contact_data WHERE email LIKE '%@example.com'"
    )
    assert segment["next_sample_update"] == at(start, 900)

    admin.advance_clock(899)
    before = get_segment(api, segment["id"])
    assert (before["contacts_count"], before["contacts_sample"]) == (0, [])
    assert before["sample_updated_at"] == segment["created_at"]

    admin.advance_clock(1)
    after = get_segment(api, segment["id"])
    assert after["contacts_count"] == 3
    assert sorted(c["email"] for c in after["contacts_sample"]) == [
        f"person{i}@example.com" for i in range(3)
    ]
    assert after["sample_updated_at"] == at(start, 900)
    assert after["next_sample_update"] == at(start, 900 + HOUR)


def test_engagement_segment_populates_after_30_minutes(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(1), person(2)])
    admin.add_events([{"email": "person2@example.com", "event_type": "click"}])
    start = admin.now()
    segment = create_segment(api, "clickers", CLICKERS)
    assert segment["next_sample_update"] == at(start, 1800)
    admin.advance_clock(900)
    assert get_segment(api, segment["id"])["contacts_count"] == 0
    admin.advance_clock(900)
    populated = get_segment(api, segment["id"])
    assert populated["contacts_count"] == 1
    assert populated["contacts_sample"][0]["email"] == "person2@example.com"


def test_unchanged_membership_backs_off_1_2_4_up_to_24_hours(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(1)])
    start = admin.now()
    segment_id = create_segment(api)["id"]
    first = 900
    expected_gaps = [1, 2, 4, 8, 16, 24, 24]
    moment = first
    admin.advance_clock(first)
    for gap_hours in expected_gaps:
        seen = get_segment(api, segment_id)
        assert seen["sample_updated_at"] == at(start, moment)
        assert seen["next_sample_update"] == at(start, moment + gap_hours * HOUR)
        admin.advance_clock(gap_hours * HOUR)
        moment += gap_hours * HOUR


def test_catching_up_over_days_lands_on_the_same_schedule(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(1)])
    start = admin.now()
    segment_id = create_segment(api)["id"]
    # 900 s, then +1 h, +2 h, +4 h, +8 h, +16 h, +24 h ... read only once, three days later.
    admin.advance_clock(3 * 86400)
    seen = get_segment(api, segment_id)
    samples = [900 + s * HOUR for s in (0, 1, 3, 7, 15, 31, 55)]
    last = max(s for s in samples if s <= 3 * 86400)
    assert seen["sample_updated_at"] == at(start, last)
    assert seen["next_sample_update"] == at(start, last + 24 * HOUR)


def test_a_membership_change_resets_the_interval_to_hourly(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(1)])
    start = admin.now()
    segment_id = create_segment(api)["id"]
    admin.advance_clock(900 + HOUR + 2 * HOUR)  # samples at 0:15, 1:15, 3:15 (next due 7:15)
    assert get_segment(api, segment_id)["next_sample_update"] == at(start, 900 + 7 * HOUR)

    admin.seed_contacts([person(2)])  # joins during the 4 h backoff
    admin.advance_clock(HOUR)  # the hourly membership check at 4:15 sees it
    seen = get_segment(api, segment_id)
    assert seen["contacts_count"] == 2
    assert seen["sample_updated_at"] == at(start, 900 + 4 * HOUR)
    assert seen["next_sample_update"] == at(start, 900 + 5 * HOUR)


def test_contacts_added_after_a_sample_wait_for_the_next_check(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(1)])
    segment_id = create_segment(api)["id"]
    admin.advance_clock(900)
    assert get_segment(api, segment_id)["contacts_count"] == 1
    api.put("/v3/marketing/contacts", json={"contacts": [person(2)]}).raise_for_status()
    admin.advance_clock(HOUR - 1)
    assert get_segment(api, segment_id)["contacts_count"] == 1
    admin.advance_clock(1)
    assert get_segment(api, segment_id)["contacts_count"] == 2


def test_changing_the_query_restarts_population(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(1), person(2, domain="other.org")])
    segment_id = create_segment(api)["id"]
    admin.advance_clock(900)
    assert get_segment(api, segment_id)["contacts_count"] == 2
    admin.advance_clock(600)
    patched_at = admin.now()
    narrowed = "SELECT contact_id, updated_at FROM contact_data WHERE email LIKE '%other.org'"
    patched = api.patch(f"{SEGMENTS}/{segment_id}", json={"query_dsl": narrowed}).json()
    assert patched["contacts_count"] == 0
    assert patched["sample_updated_at"] == patched["updated_at"] == to_iso(patched_at)
    assert patched["next_sample_update"] == at(patched_at, 900)
    admin.advance_clock(900)
    assert get_segment(api, segment_id)["contacts_count"] == 1


def test_parent_list_limits_membership(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    admin = sendgrid_emulator.admin
    list_id = api.post("/v3/marketing/lists", json={"name": "vip"}).json()["id"]
    admin.seed_contacts([person(1)], list_ids=[list_id])
    admin.seed_contacts([person(2)])
    segment_id = create_segment(api, parent_list_ids=[list_id])["id"]
    admin.advance_clock(900)
    seen = get_segment(api, segment_id)
    assert seen["contacts_count"] == 1
    assert seen["contacts_sample"][0]["email"] == "person1@example.com"


def test_sample_holds_at_most_50_contacts_but_counts_all(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(i) for i in range(120)])
    segment_id = create_segment(api)["id"]
    admin.advance_clock(900)
    seen = get_segment(api, segment_id)
    assert seen["contacts_count"] == 120
    assert len(seen["contacts_sample"]) == 50


def test_validation_delay_reports_pending_then_valid(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.configure(validation_delay=30)
    segment = create_segment(api)
    assert segment["status"] == {"query_validation": "PENDING"}
    admin.advance_clock(30)
    assert get_segment(api, segment["id"])["status"] == {"query_validation": "VALID"}


def test_time_relative_queries_use_the_emulator_clock(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    now = admin.now()
    admin.seed_contacts(
        [
            person(1, created_at=to_iso(now - timedelta(days=2)), updated_at=to_iso(now - timedelta(days=2))),
            person(
                2, created_at=to_iso(now - timedelta(days=10)), updated_at=to_iso(now - timedelta(days=10))
            ),
        ]
    )
    recent = (
        "SELECT contact_id, updated_at FROM contact_data "
        "WHERE created_at > CURRENT_TIMESTAMP() - INTERVAL '5 days'"
    )
    segment_id = create_segment(api, "recent", recent)["id"]
    admin.advance_clock(900)
    assert get_segment(api, segment_id)["contacts_count"] == 1
    admin.advance_clock(4 * 86400)  # person 1 is now 6 days old: the next sample drops them
    assert get_segment(api, segment_id)["contacts_count"] == 0
    assert parse_iso(get_segment(api, segment_id)["sample_updated_at"]) > now


def test_a_contact_with_many_events_counts_once(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    admin = sendgrid_emulator.admin
    list_id = api.post("/v3/marketing/lists", json={"name": "vip"}).json()["id"]
    admin.seed_contacts([person(1), person(2)], list_ids=[list_id])
    admin.add_events([{"email": "person1@example.com", "event_type": "click"} for _ in range(3)])
    plain = create_segment(api, "clickers", CLICKERS)["id"]
    in_list = create_segment(api, "clickers in vip", CLICKERS, parent_list_ids=[list_id])["id"]
    admin.advance_clock(1800)
    assert get_segment(api, plain)["contacts_count"] == 1
    assert get_segment(api, in_list)["contacts_count"] == 1
