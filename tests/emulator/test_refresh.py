"""Manual refresh: accepted refreshes, SendGrid's quotas (incl. local midnight and DST), errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest
from sgseg_emulator import refresh_limits
from sgseg_emulator.client import EmulatorAdmin
from sgseg_emulator.clock import to_iso
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import SEGMENTS, create_segment, get_segment, person
from tests.emulator.spec_schemas import component, validate, validate_response

REFRESH = SEGMENTS + "/refresh/{segment_id}"
CHICAGO = ZoneInfo("America/Chicago")
KOLKATA = ZoneInfo("Asia/Kolkata")


def refresh(api: httpx.Client, segment_id: str, zone: str = "America/Chicago") -> httpx.Response:
    return api.post(f"{SEGMENTS}/refresh/{segment_id}", json={"user_time_zone": zone})


def advance_to(admin: EmulatorAdmin, moment: datetime) -> None:
    seconds = (moment - admin.now()).total_seconds()
    assert seconds >= 0, "the manual clock only moves forward"
    admin.advance_clock(seconds)


def future_local(zone: ZoneInfo, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """The next occurrence (from real now) of that local date-time, a year ahead at least."""
    year = datetime.now(timezone.utc).year + 1
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def test_refresh_is_accepted_and_resamples_after_the_delay(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(1)])
    segment_id = create_segment(api)["id"]
    admin.advance_clock(900)  # first sample: 1 contact, next sample in 1 h
    scheduled_next = get_segment(api, segment_id)["next_sample_update"]
    admin.seed_contacts([person(2)])
    admin.advance_clock(60)
    accepted = refresh(api, segment_id)
    assert accepted.status_code == 202
    validate_response(accepted.json(), "segments", REFRESH, "post", 202)
    refreshed_at = admin.now()

    pending = get_segment(api, segment_id)
    assert pending["refreshes_used"] == 1
    assert pending["last_refreshed_at"] == to_iso(refreshed_at)
    assert pending["next_sample_update"] == to_iso(refreshed_at + timedelta(seconds=60))
    assert pending["contacts_count"] == 1

    admin.advance_clock(60)
    done = get_segment(api, segment_id)
    assert done["contacts_count"] == 2
    assert done["sample_updated_at"] == to_iso(refreshed_at + timedelta(seconds=60))
    assert done["next_sample_update"] == scheduled_next  # the backoff schedule is untouched


def test_one_hour_spacing_then_two_per_day(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    admin = sendgrid_emulator.admin
    advance_to(admin, future_local(CHICAGO, 6, 10, 8))
    segment_id = create_segment(api)["id"]
    assert refresh(api, segment_id).status_code == 202

    admin.advance_clock(3599)
    too_soon = refresh(api, segment_id)
    assert too_soon.status_code == 429
    assert "hour" in too_soon.json()["error"]
    assert too_soon.headers["Retry-After"] == "1"

    admin.advance_clock(1)
    assert refresh(api, segment_id).status_code == 202
    admin.advance_clock(2 * 3600)
    third = refresh(api, segment_id)
    assert third.status_code == 429
    assert "2 refreshes per segment per day" in third.json()["error"]
    validate(third.json(), component("segments", "SegmentError"))  # the spec documents no 429 body
    assert get_segment(api, segment_id)["refreshes_used"] == 2


@pytest.mark.parametrize(
    ("zone_name", "zone"),
    [("America/Chicago", CHICAGO), ("Asia/Kolkata", KOLKATA)],
)
def test_daily_count_resets_at_local_midnight_not_utc(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, zone_name: str, zone: ZoneInfo
) -> None:
    admin = sendgrid_emulator.admin
    evening = future_local(zone, 8, 20, 21)
    advance_to(admin, evening)
    segment_id = create_segment(api)["id"]
    assert refresh(api, segment_id, zone_name).status_code == 202
    admin.advance_clock(5400)
    assert refresh(api, segment_id, zone_name).status_code == 202  # 22:30 local

    last_minute = evening.replace(hour=23, minute=59, second=59)
    advance_to(admin, last_minute)
    refused = refresh(api, segment_id, zone_name)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert get_segment(api, segment_id)["refreshes_used"] == 2

    admin.advance_clock(1)  # local midnight
    assert get_segment(api, segment_id)["refreshes_used"] == 0
    assert refresh(api, segment_id, zone_name).status_code == 202


def test_utc_midnight_does_not_reset_a_chicago_segment(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    afternoon = future_local(CHICAGO, 8, 20, 16, 30)  # 21:30 UTC
    advance_to(admin, afternoon)
    segment_id = create_segment(api)["id"]
    assert refresh(api, segment_id).status_code == 202
    admin.advance_clock(3600)
    assert refresh(api, segment_id).status_code == 202
    advance_to(admin, afternoon.replace(hour=19))  # 00:00 UTC has passed, Chicago is still on 20 Aug
    assert refresh(api, segment_id).status_code == 429


@pytest.mark.parametrize(
    ("month", "first_day", "midnight_utc_hour"),
    [
        (3, 8, 5),  # second Sunday of March: clocks spring forward, a 23-hour day, ends 05:00 UTC (CDT)
        (11, 1, 6),  # first Sunday of November: clocks fall back, a 25-hour day, ends 06:00 UTC (CST)
    ],
)
def test_daily_count_on_dst_transition_days_in_chicago(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, month: int, first_day: int, midnight_utc_hour: int
) -> None:
    admin = sendgrid_emulator.admin
    year = datetime.now(timezone.utc).year + 1
    sundays = [datetime(year, month, d, tzinfo=CHICAGO) for d in range(first_day, first_day + 7)]
    dst_day = next(d for d in sundays if d.weekday() == 6)
    advance_to(admin, dst_day.replace(hour=0, minute=30))
    segment_id = create_segment(api)["id"]
    assert refresh(api, segment_id).status_code == 202
    admin.advance_clock(3600)
    assert refresh(api, segment_id).status_code == 202
    next_midnight = (dst_day + timedelta(days=1)).astimezone(timezone.utc)
    assert next_midnight.hour == midnight_utc_hour  # the offset at the end of the day, not the start
    advance_to(admin, next_midnight - timedelta(seconds=1))
    assert refresh(api, segment_id).status_code == 429
    admin.advance_clock(1)
    assert refresh(api, segment_id).status_code == 202


def test_ten_refreshes_per_account_reset_at_utc_midnight(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    admin = sendgrid_emulator.admin
    year = datetime.now(timezone.utc).year + 1
    advance_to(admin, datetime(year, 9, 1, 12, tzinfo=timezone.utc))
    segment_ids = [create_segment(api, f"s{i}")["id"] for i in range(11)]
    for segment_id in segment_ids[:10]:
        assert refresh(api, segment_id, "Asia/Kolkata").status_code == 202
    refused = refresh(api, segment_ids[10], "Asia/Kolkata")
    assert refused.status_code == 429
    assert "10 refreshes per day" in refused.json()["error"]
    assert int(refused.headers["X-RateLimit-Reset"]) == int(
        datetime(year, 9, 2, tzinfo=timezone.utc).timestamp()
    )
    advance_to(admin, datetime(year, 9, 1, 23, 59, 59, tzinfo=timezone.utc))
    assert refresh(api, segment_ids[10], "Asia/Kolkata").status_code == 429
    admin.advance_clock(1)
    assert refresh(api, segment_ids[10], "Asia/Kolkata").status_code == 202


def test_free_plan_is_forbidden_without_body(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = create_segment(api)["id"]
    sendgrid_emulator.admin.configure(plan="free")
    response = refresh(api, segment_id)
    assert response.status_code == 403
    assert response.content == b""
    assert "last_refreshed_at" not in get_segment(api, segment_id)


@pytest.mark.parametrize(
    ("segment_id", "body", "status"),
    [
        ("not-a-uuid", {"user_time_zone": "UTC"}, 400),
        ("{real}", None, 400),
        ("{real}", {}, 400),
        ("{real}", {"user_time_zone": "+05:30"}, 400),
        ("{real}", {"user_time_zone": "Mars/Olympus"}, 400),
        ("7c1f0e3a-1111-4222-8333-444455556666", {"user_time_zone": "UTC"}, 404),
    ],
)
def test_refresh_errors_use_the_single_error_shape(
    api: httpx.Client, segment_id: str, body: object, status: int
) -> None:
    real = create_segment(api)["id"]
    path = f"{SEGMENTS}/refresh/{segment_id.replace('{real}', real)}"
    response = api.post(path, json=body) if body is not None else api.post(path)
    assert response.status_code == status
    validate(response.json(), component("segments", "SegmentError"))
    if status == 404:
        assert response.json() == {"error": "Segment does not exist."}
    assert get_segment(api, real)["refreshes_used"] == 0


def test_refreshes_used_counts_local_day_only() -> None:
    now = datetime(2027, 1, 10, 5, 0, tzinfo=timezone.utc)  # 23:00 on 9 Jan in Chicago
    earlier = [
        datetime(2027, 1, 9, 20, tzinfo=timezone.utc),
        datetime(2027, 1, 9, 5, 59, tzinfo=timezone.utc),
    ]
    assert refresh_limits.refreshes_used(now, "America/Chicago", earlier) == 1
    assert refresh_limits.refreshes_used(now, "UTC", earlier) == 0


def test_refreshing_an_invalid_segment_schedules_no_sample(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    segment = create_segment(api, "invalid", "SELECT email FROM contact_data")
    assert refresh(api, segment["id"]).status_code == 202
    seen = get_segment(api, segment["id"])
    assert seen["refreshes_used"] == 1
    assert seen["next_sample_update"] == segment["next_sample_update"]
    sendgrid_emulator.admin.advance_clock(120)
    assert get_segment(api, segment["id"])["sample_updated_at"] == segment["sample_updated_at"]
