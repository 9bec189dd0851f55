"""The one instant parser and its rule for naive values (UTC)."""

from __future__ import annotations

import datetime

import pendulum
import pytest

from airflow_provider_sgseg.rules.instants import parse_instant

UTC = datetime.timezone.utc


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T11:30:00Z", pendulum.datetime(2026, 3, 1, 11, 30)),
        ("2026-03-01T11:30:00.5Z", pendulum.datetime(2026, 3, 1, 11, 30, 0, 500000)),
        ("2026-03-01T11:30:00.123456789Z", pendulum.datetime(2026, 3, 1, 11, 30, 0, 123456)),
        ("2026-03-01T13:30:00+02:00", pendulum.datetime(2026, 3, 1, 11, 30)),
        ("2026-03-01T04:30:00-0700", pendulum.datetime(2026, 3, 1, 11, 30)),
        ("2026-03-01T11:30:00", pendulum.datetime(2026, 3, 1, 11, 30)),
        ("2026-03-01 11:30:00", pendulum.datetime(2026, 3, 1, 11, 30)),
        ("  2026-03-01T11:30:00Z  ", pendulum.datetime(2026, 3, 1, 11, 30)),
        ("2026-03-01", pendulum.datetime(2026, 3, 1)),
    ],
)
def test_parse_instant_reads_sendgrid_iso_variants_as_the_same_instant(
    text: str, expected: pendulum.DateTime
) -> None:
    parsed = parse_instant(text)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() is not None


@pytest.mark.parametrize("value", [None, "", "   ", "garbage", "P1D", "12:00", 1700000000, [], {}])
def test_parse_instant_returns_none_for_missing_or_unreadable(value: object) -> None:
    assert parse_instant(value) is None


def test_parse_instant_takes_naive_datetimes_as_utc_and_keeps_aware_ones() -> None:
    naive = datetime.datetime(2026, 3, 1, 11, 30)
    aware = datetime.datetime(2026, 3, 1, 13, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert parse_instant(naive) == pendulum.datetime(2026, 3, 1, 11, 30)
    assert parse_instant(aware) == pendulum.datetime(2026, 3, 1, 11, 30)


def test_parse_instant_reads_offsets_and_blanks() -> None:
    assert parse_instant("2026-01-15T17:30:00Z") == utc("2026-01-15T17:30:00")
    assert parse_instant("2026-01-15T23:00:00+05:30") == utc("2026-01-15T17:30:00")
    assert parse_instant(utc("2026-01-15T17:30:00")) == utc("2026-01-15T17:30:00")
    # One rule for naive values (the refresh-quota parser used to refuse a naive datetime): UTC.
    assert parse_instant(datetime.datetime(2026, 1, 15)) == utc("2026-01-15T00:00:00")
    assert parse_instant(None) is None
    assert parse_instant("   ") is None
