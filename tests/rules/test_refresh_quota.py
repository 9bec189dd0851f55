"""The pure refresh-quota rules: per-segment daily limit, hourly spacing, account limit, 429s."""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
import pytest

from airflow_provider_sgseg.rules.refresh_quota import (
    ACCOUNT_DAILY_LIMIT,
    HOURLY_SPACING,
    SEGMENT_DAILY_LIMIT,
    SERVER_RATE_LIMIT,
    decide,
    decide_after_rate_limit,
    next_utc_midnight,
    start_of_local_day,
)

UTC = datetime.timezone.utc


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(zone: str, *args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz=zone)


def segment(used: Any = 2, max_refreshes: Any = 2, last: Any = None) -> dict[str, Any]:
    seg: dict[str, Any] = {"id": "0" * 36, "name": "s"}
    if used is not None:
        seg["refreshes_used"] = used
    if max_refreshes is not None:
        seg["max_refreshes"] = max_refreshes
    if last is not None:
        seg["last_refreshed_at"] = last.isoformat() if isinstance(last, datetime.datetime) else last
    return seg


# --- allowed ---------------------------------------------------------------------------------


def test_segment_without_refresh_fields_is_allowed() -> None:
    decision = decide({"id": "x", "name": "old"}, "America/Chicago", utc("2026-01-15T18:00:00"))
    assert decision.allowed
    assert decision.next_allowed_at is None
    assert decision.blocked_by is None


def test_refreshes_left_and_last_refresh_over_an_hour_ago_is_allowed() -> None:
    now = utc("2026-01-15T18:00:00")
    decision = decide(segment(used=1, last=now - datetime.timedelta(hours=2)), "America/Chicago", now)
    assert decision.allowed


def test_never_refreshed_segment_with_zero_used_is_allowed() -> None:
    assert decide(segment(used=0), "UTC", utc("2026-01-15T18:00:00")).allowed


# --- per-segment daily limit -----------------------------------------------------------------


def test_daily_limit_blocks_until_next_local_midnight() -> None:
    now = utc("2026-01-15T18:00:00")  # 12:00 CST
    decision = decide(segment(last=utc("2026-01-15T15:00:00")), "America/Chicago", now)
    assert not decision.allowed
    assert decision.blocked_by == SEGMENT_DAILY_LIMIT
    assert decision.next_allowed_at == utc("2026-01-16T06:00:00")  # 00:00 CST
    assert "2 of 2" in decision.reason
    assert "2026-01-16T00:00:00-06:00" in decision.reason


def test_used_above_max_still_blocks() -> None:
    now = utc("2026-01-15T18:00:00")
    decision = decide(segment(used=5, last=utc("2026-01-15T15:00:00")), "UTC", now)
    assert decision.blocked_by == SEGMENT_DAILY_LIMIT
    assert decision.next_allowed_at == utc("2026-01-16T00:00:00")


def test_stale_counter_from_before_local_midnight_is_ignored() -> None:
    # Used up yesterday (local); SendGrid reset the count at midnight, the read is stale.
    now = utc("2026-01-15T08:00:00")  # 02:00 CST on the 15th
    last = utc("2026-01-15T05:00:00")  # 23:00 CST on the 14th
    assert decide(segment(last=last), "America/Chicago", now).allowed


def test_same_utc_day_but_previous_local_day_is_stale() -> None:
    # 01:00 UTC on the 15th is still the 14th in Chicago; now is the 15th there.
    now = utc("2026-01-15T20:00:00")
    assert decide(segment(last=utc("2026-01-15T01:00:00")), "America/Chicago", now).allowed
    # ...but in UTC both are the 15th.
    assert decide(segment(last=utc("2026-01-15T01:00:00")), "UTC", now).blocked_by == SEGMENT_DAILY_LIMIT


def test_last_refresh_exactly_at_local_midnight_counts_for_today() -> None:
    zone = "Europe/Berlin"
    last = local(zone, 2026, 1, 15)  # 00:00:00 CET
    now = last.add(hours=3)
    decision = decide(segment(last=last), zone, now)
    assert decision.blocked_by == SEGMENT_DAILY_LIMIT
    assert decision.next_allowed_at == local(zone, 2026, 1, 16)


def test_last_refresh_one_second_before_local_midnight_is_yesterday() -> None:
    zone = "Europe/Berlin"
    last = local(zone, 2026, 1, 14, 23, 59, 59)
    now = local(zone, 2026, 1, 15, 2)
    assert decide(segment(last=last), zone, now).allowed


def test_second_before_midnight_is_blocked_for_one_second() -> None:
    zone = "America/Chicago"
    last = local(zone, 2026, 1, 15, 10)
    now = local(zone, 2026, 1, 15, 23, 59, 59)
    decision = decide(segment(last=last), zone, now)
    assert decision.blocked_by == SEGMENT_DAILY_LIMIT
    assert decision.next_allowed_at is not None
    assert decision.next_allowed_at - now == datetime.timedelta(seconds=1)


def test_exactly_at_midnight_the_counter_has_reset() -> None:
    zone = "America/Chicago"
    last = local(zone, 2026, 1, 15, 10)
    assert decide(segment(last=last), zone, local(zone, 2026, 1, 16)).allowed


def test_counter_reset_but_spacing_still_applies_across_midnight() -> None:
    zone = "Asia/Kolkata"
    last = local(zone, 2026, 6, 1, 23, 59, 59)
    now = local(zone, 2026, 6, 2, 0, 0, 1)
    decision = decide(segment(last=last), zone, now)
    assert decision.blocked_by == HOURLY_SPACING
    assert decision.next_allowed_at == last.add(hours=1)


def test_last_refresh_in_the_future_blocks_until_after_its_day() -> None:
    # Clock skew: SendGrid's clock is ahead of ours and its day already turned over.
    zone = "UTC"
    now = utc("2026-01-15T23:59:00")
    last = utc("2026-01-16T00:00:30")
    decision = decide(segment(last=last), zone, now)
    assert decision.blocked_by == SEGMENT_DAILY_LIMIT
    assert decision.next_allowed_at == utc("2026-01-17T00:00:00")


# --- DST -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "next_midnight_utc", "day_hours"),
    [
        # spring forward: 23-hour days
        ("America/Chicago", datetime.date(2026, 3, 8), "2026-03-09T05:00:00", 23),
        ("Europe/Berlin", datetime.date(2026, 3, 29), "2026-03-29T22:00:00", 23),
        # fall back: 25-hour days
        ("America/Chicago", datetime.date(2026, 11, 1), "2026-11-02T06:00:00", 25),
        ("Europe/Berlin", datetime.date(2026, 10, 25), "2026-10-25T23:00:00", 25),
        # southern hemisphere: Chatham leaves DST in April (+13:45 -> +12:45)
        ("Pacific/Chatham", datetime.date(2026, 4, 5), "2026-04-05T11:15:00", 25),
    ],
)
def test_dst_day_blocks_until_the_real_next_midnight(
    zone: str, day: datetime.date, next_midnight_utc: str, day_hours: int
) -> None:
    day_start = start_of_local_day(day, zone=pendulum.timezone(zone))
    last = day_start.add(minutes=30)
    for now in (day_start.add(hours=2), day_start.add(hours=day_hours) - datetime.timedelta(seconds=1)):
        decision = decide(segment(last=last), zone, now)
        assert decision.blocked_by == SEGMENT_DAILY_LIMIT
        assert decision.next_allowed_at == utc(next_midnight_utc)
        assert decision.next_allowed_at - day_start == datetime.timedelta(hours=day_hours)
    next_day_start = day_start + datetime.timedelta(hours=day_hours)
    assert decide(segment(last=last), zone, next_day_start).allowed


def test_both_occurrences_of_the_repeated_hour_count_for_the_same_day() -> None:
    zone = "America/Chicago"
    first = utc("2026-11-01T06:30:00")  # 01:30 CDT
    second = utc("2026-11-01T07:30:00")  # 01:30 CST
    assert pendulum.instance(first).in_tz(zone).hour == pendulum.instance(second).in_tz(zone).hour == 1
    now = utc("2026-11-01T18:00:00")
    for last in (first, second):
        decision = decide(segment(last=last), zone, now)
        assert decision.next_allowed_at == utc("2026-11-02T06:00:00")


def test_skipped_midnight_starts_the_day_at_one() -> None:
    # America/Santiago springs forward at 00:00 on 2026-09-06: that day starts at 01:00 -03.
    zone = "America/Santiago"
    last = local(zone, 2026, 9, 5, 10)
    decision = decide(segment(last=last), zone, local(zone, 2026, 9, 5, 20))
    assert decision.next_allowed_at == utc("2026-09-06T04:00:00")
    # and the day after that one starts at a normal midnight, 24 h later in UTC minus nothing
    last = local(zone, 2026, 9, 6, 10)
    decision = decide(segment(last=last), zone, local(zone, 2026, 9, 6, 20))
    assert decision.next_allowed_at == utc("2026-09-07T03:00:00")


# --- zones east and west of UTC --------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "last_utc", "now_utc", "next_utc"),
    [
        # +05:30: 00:30 IST on Jun 2 is still Jun 1 in UTC
        ("Asia/Kolkata", "2026-06-01T19:00:00", "2026-06-01T21:00:00", "2026-06-02T18:30:00"),
        # +14:00: the first zone into a new day
        ("Pacific/Kiritimati", "2026-06-01T11:00:00", "2026-06-01T13:00:00", "2026-06-02T10:00:00"),
        # +12:45 (winter)
        ("Pacific/Chatham", "2026-06-01T12:00:00", "2026-06-01T14:00:00", "2026-06-02T11:15:00"),
        # -03:30
        ("America/St_Johns", "2026-01-15T04:00:00", "2026-01-15T06:00:00", "2026-01-16T03:30:00"),
        # -10:00: the local day ends well into the next UTC day
        ("Pacific/Honolulu", "2026-01-15T20:00:00", "2026-01-16T09:00:00", "2026-01-16T10:00:00"),
        ("UTC", "2026-01-15T00:00:00", "2026-01-15T23:00:00", "2026-01-16T00:00:00"),
    ],
)
def test_daily_limit_in_zones_east_and_west(zone: str, last_utc: str, now_utc: str, next_utc: str) -> None:
    decision = decide(segment(last=utc(last_utc)), zone, utc(now_utc))
    assert decision.blocked_by == SEGMENT_DAILY_LIMIT
    assert decision.next_allowed_at == utc(next_utc)
    assert pendulum.instance(utc(next_utc)).in_tz(zone).time() == datetime.time(0, 0)


def test_kolkata_stale_counter_from_previous_ist_day() -> None:
    # 23:30 IST Jun 1, now 01:30 IST Jun 2 (both Jun 1 in UTC): the counter has reset.
    decision = decide(segment(last=utc("2026-06-01T18:00:00")), "Asia/Kolkata", utc("2026-06-01T20:00:00"))
    assert decision.allowed


@pytest.mark.parametrize(
    "zone",
    ["America/Chicago", "Europe/Berlin", "Asia/Kolkata", "Pacific/Chatham", "Pacific/Kiritimati", "UTC"],
)
def test_next_allowed_is_always_a_local_midnight_within_25_hours(zone: str) -> None:
    tz = pendulum.timezone(zone)
    now = pendulum.datetime(2026, 1, 1, tz="UTC")
    end = pendulum.datetime(2027, 1, 1, tz="UTC")
    while now < end:
        last = now - datetime.timedelta(minutes=90)
        decision = decide(segment(last=last), zone, now)
        if last.in_tz(tz).date() == now.in_tz(tz).date():
            assert decision.blocked_by == SEGMENT_DAILY_LIMIT
            assert decision.next_allowed_at is not None
            moment = pendulum.instance(decision.next_allowed_at).in_tz(tz)
            assert moment.time() == datetime.time(0, 0)
            assert moment.date() == now.in_tz(tz).date() + datetime.timedelta(days=1)
            assert datetime.timedelta(0) < moment - now <= datetime.timedelta(hours=25)
        else:
            assert decision.allowed
        now = now.add(hours=7, minutes=13)


# --- hourly spacing --------------------------------------------------------------------------


def test_last_refresh_exactly_one_hour_ago_is_allowed() -> None:
    now = utc("2026-01-15T18:00:00")
    assert decide(segment(used=1, last=utc("2026-01-15T17:00:00")), "UTC", now).allowed


def test_last_refresh_one_second_short_of_an_hour_is_blocked() -> None:
    now = utc("2026-01-15T18:00:00")
    decision = decide(segment(used=1, last=utc("2026-01-15T17:00:01")), "UTC", now)
    assert decision.blocked_by == HOURLY_SPACING
    assert decision.next_allowed_at == utc("2026-01-15T18:00:01")


def test_spacing_applies_without_counters() -> None:
    now = utc("2026-01-15T18:00:00")
    decision = decide(segment(used=None, max_refreshes=None, last=utc("2026-01-15T17:30:00")), "UTC", now)
    assert decision.blocked_by == HOURLY_SPACING
    assert decision.next_allowed_at == utc("2026-01-15T18:30:00")


def test_when_both_block_the_later_moment_wins() -> None:
    zone = "America/Chicago"
    # 23:45 local, refreshed 15 min ago: spacing lifts at 00:30, daily at 00:00 -> spacing wins.
    last = local(zone, 2026, 1, 15, 23, 30)
    decision = decide(segment(last=last), zone, local(zone, 2026, 1, 15, 23, 45))
    assert decision.blocked_by == HOURLY_SPACING
    assert decision.next_allowed_at == local(zone, 2026, 1, 16, 0, 30)
    # 12:15 local, refreshed 15 min ago: daily lifts at midnight -> daily wins.
    last = local(zone, 2026, 1, 15, 12)
    decision = decide(segment(last=last), zone, local(zone, 2026, 1, 15, 12, 15))
    assert decision.blocked_by == SEGMENT_DAILY_LIMIT
    assert decision.next_allowed_at == local(zone, 2026, 1, 16)


def test_kiritimati_segment_limit_lifts_at_local_midnight() -> None:
    zone = "Pacific/Kiritimati"  # local midnight at 10:00 UTC
    now = utc("2026-06-01T08:00:00")
    decision = decide(segment(last=utc("2026-06-01T06:00:00")), zone, now)
    assert decision.next_allowed_at == utc("2026-06-01T10:00:00")


# --- 429 from the server ---------------------------------------------------------------------


def test_429_without_reset_and_segment_allowed_means_account_limit_until_utc_midnight() -> None:
    now = utc("2026-01-15T18:00:00")
    decision = decide_after_rate_limit(segment(used=0), "America/Chicago", now, reset_at=None)
    assert not decision.allowed
    assert decision.blocked_by == ACCOUNT_DAILY_LIMIT
    assert decision.next_allowed_at == utc("2026-01-16T00:00:00")
    assert "10 refreshes" in decision.reason


def test_429_with_reset_at_utc_midnight_is_the_account_limit() -> None:
    now = utc("2026-01-15T18:00:00")
    reset = utc("2026-01-16T00:00:00")
    decision = decide_after_rate_limit(segment(used=0), "UTC", now, reset_at=reset)
    assert decision.blocked_by == ACCOUNT_DAILY_LIMIT
    assert decision.next_allowed_at == reset


@pytest.mark.parametrize("off_by", [-1.9, -0.25, 0.6, 2.0])
def test_429_with_reset_seconds_from_utc_midnight_is_the_account_limit(off_by: float) -> None:
    # On a real clock, reset_at = fractional now + whole-second Retry-After: never exactly midnight.
    now = utc("2026-01-15T18:00:00.371000")
    reset = utc("2026-01-16T00:00:00") + datetime.timedelta(seconds=off_by)
    decision = decide_after_rate_limit(segment(used=0), "UTC", now, reset_at=reset)
    assert decision.blocked_by == ACCOUNT_DAILY_LIMIT
    assert decision.next_allowed_at == reset


def test_429_with_reset_a_few_seconds_before_utc_midnight_is_a_server_limit() -> None:
    now = utc("2026-01-15T23:59:00")
    decision = decide_after_rate_limit(segment(used=0), "UTC", now, reset_at=utc("2026-01-15T23:59:55"))
    assert decision.blocked_by == SERVER_RATE_LIMIT


def test_429_with_other_reset_uses_the_server_moment() -> None:
    now = utc("2026-01-15T18:00:00")
    reset = utc("2026-01-15T18:00:42")
    decision = decide_after_rate_limit(segment(used=0), "UTC", now, reset_at=reset)
    assert decision.blocked_by == SERVER_RATE_LIMIT
    assert decision.next_allowed_at == reset


def test_429_with_reset_in_the_past_falls_back_to_the_inferred_rule() -> None:
    now = utc("2026-01-15T18:00:00")
    decision = decide_after_rate_limit(segment(used=0), "UTC", now, reset_at=utc("2026-01-15T17:00:00"))
    assert decision.blocked_by == ACCOUNT_DAILY_LIMIT
    assert decision.next_allowed_at == utc("2026-01-16T00:00:00")


def test_429_explained_by_segment_rules_keeps_the_segment_rule() -> None:
    # Our read was stale: the segment had in fact been refreshed 10 minutes ago.
    now = utc("2026-01-15T18:00:00")
    seg = segment(used=1, last=utc("2026-01-15T17:50:00"))
    decision = decide_after_rate_limit(seg, "UTC", now, reset_at=None)
    assert decision.blocked_by == HOURLY_SPACING
    assert decision.next_allowed_at == utc("2026-01-15T18:50:00")
    # a server reset earlier than the segment rule does not shorten it
    decision = decide_after_rate_limit(seg, "UTC", now, reset_at=utc("2026-01-15T18:10:00"))
    assert decision.blocked_by == HOURLY_SPACING
    # a later one extends it
    decision = decide_after_rate_limit(seg, "UTC", now, reset_at=utc("2026-01-15T19:10:00"))
    assert decision.next_allowed_at == utc("2026-01-15T19:10:00")
    assert decision.blocked_by == SERVER_RATE_LIMIT


def test_next_utc_midnight_is_strictly_after() -> None:
    assert next_utc_midnight(utc("2026-01-15T00:00:00")) == utc("2026-01-16T00:00:00")
    assert next_utc_midnight(utc("2026-01-15T23:59:59")) == utc("2026-01-16T00:00:00")
    kolkata_now = pendulum.datetime(2026, 1, 16, 2, tz="Asia/Kolkata")  # 20:30 UTC on the 15th
    assert next_utc_midnight(kolkata_now) == utc("2026-01-16T00:00:00")


# --- missing fields and bad types ------------------------------------------------------------


@pytest.mark.parametrize(
    "seg",
    [
        segment(used=None),
        segment(max_refreshes=None),
        segment(used="2"),
        segment(used=True),
        segment(used=2.0),
        segment(used=-1),
        segment(max_refreshes="2"),
        segment(max_refreshes=[2]),
        segment(last=12345),
        segment(last="not a date"),
        segment(last=""),
        segment(last="P1D"),
        segment(last={"at": "2026-01-15T17:00:00Z"}),
    ],
)
def test_unusable_fields_skip_the_daily_rule(seg: dict[str, Any]) -> None:
    now = utc("2026-01-15T18:00:00")
    if "last_refreshed_at" not in seg:
        seg["last_refreshed_at"] = "2026-01-15T16:00:00Z"
    assert decide(seg, "UTC", now).allowed


def test_last_refreshed_at_without_offset_is_read_as_utc() -> None:
    now = utc("2026-01-15T18:00:00")
    decision = decide(segment(used=1, last="2026-01-15T17:30:00"), "Asia/Kolkata", now)
    assert decision.next_allowed_at == utc("2026-01-15T18:30:00")


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(segment(), "UTC", datetime.datetime(2026, 1, 15, 18))


def test_non_datetime_now_is_rejected() -> None:
    with pytest.raises(TypeError, match="must be a datetime"):
        decide(segment(), "UTC", "2026-01-15T18:00:00Z")  # type: ignore[arg-type]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "+05:30", ""])
def test_unknown_time_zone_is_rejected(zone: str) -> None:
    with pytest.raises(ValueError):
        decide(segment(), zone, utc("2026-01-15T18:00:00"))
