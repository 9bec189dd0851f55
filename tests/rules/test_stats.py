"""The settle rule, the stats parameters, which Single Sends a task reads, and the landed rows."""

from __future__ import annotations

import datetime

import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules import pacing, stats, validation
from airflow_provider_sgseg.rules.requests import (
    GetSingleSendLinkStats,
    GetSingleSendStats,
    ListSingleSendStats,
)

UTC = datetime.timezone.utc
SEND_AT = datetime.datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ID = "a14dcc63-d651-4c57-9826-4a3705f5c78d"
HOUR = 3600.0


def poll(before: stats.Observation, counts: dict[str, int] | None, hours: float, status: str = "triggered"):
    return stats.settle(
        before,
        status=status,
        send_at=SEND_AT.isoformat(),
        counts=counts,
        now=SEND_AT + datetime.timedelta(hours=hours),
        settle_for=4 * HOUR,
        max_wait=24 * HOUR,
    )


def test_settled_only_after_counts_stay_unchanged_for_settle_for() -> None:
    first = poll(stats.Observation(), {"opens": 1}, 1)
    assert not first.done and first.next_at == SEND_AT + datetime.timedelta(hours=5)
    changed = poll(first.observation, {"opens": 2}, 5)
    assert not changed.done and changed.observation.changed_at != first.observation.changed_at
    same = poll(changed.observation, {"opens": 2}, 8)
    assert not same.done  # only 3 h unchanged
    settled = poll(same.observation, {"opens": 2}, 9)
    assert settled.done and not settled.provisional and "settled" in settled.reason


def test_still_changing_at_max_wait_is_provisional() -> None:
    observation = stats.Observation()
    for hour in range(1, 24, 3):
        verdict = poll(observation, {"opens": hour}, hour)
        assert not verdict.done
        assert verdict.next_at is not None and verdict.next_at <= SEND_AT + datetime.timedelta(hours=24)
        observation = verdict.observation
    last = poll(observation, {"opens": 99}, 24)
    assert last.done and last.provisional


def test_a_send_first_seen_after_max_wait_is_compared_over_settle_for() -> None:
    # A Single Send first seen long after send_at + max_wait was provisional on its first poll,
    # the log saying "still changing" of counts never compared.
    first = poll(stats.Observation(), {"opens": 5}, 24 * 14)
    assert not first.done and first.next_at == SEND_AT + datetime.timedelta(hours=24 * 14 + 4)
    settled = poll(first.observation, {"opens": 5}, 24 * 14 + 4)
    assert settled.done and not settled.provisional
    moved = poll(first.observation, {"opens": 6}, 24 * 14 + 2)
    assert not moved.done
    last = poll(moved.observation, {"opens": 7}, 24 * 14 + 4)
    assert last.done and last.provisional
    assert "still changing 1224000 s after send_at, last change 0 s ago" in last.reason


def test_a_wait_state_without_first_seen_still_reads() -> None:
    # The state 0.3.0 kept (task state store, trigger kwargs) has no first_seen: changed_at stands in.
    old = stats.Observation.from_dict({"counts": {"opens": 5}, "changed_at": SEND_AT.isoformat()})
    assert old.first_seen == SEND_AT.isoformat()
    assert poll(old, {"opens": 6}, 25).provisional


def test_not_sent_yet_waits_for_send_at_or_the_interval() -> None:
    scheduled = poll(stats.Observation(), None, -2, status="scheduled")
    assert not scheduled.done and scheduled.next_at == SEND_AT
    draft = poll(stats.Observation(), None, 30, status="draft")
    assert not draft.done and draft.next_at is None  # a draft never settles, whatever max_wait


def test_a_scheduled_send_past_its_send_at_is_looked_at_again_soon() -> None:
    # SendGrid flips a send to "triggered" shortly after send_at: a look that came a moment too
    # early waited poke_interval (an hour in the example DAG) instead of the poll floor.
    bounds = pacing.WaitBounds(floor=60, ceiling=HOUR, interval=HOUR)

    def delay(hours_late: float) -> float:
        late = poll(stats.Observation(), None, hours_late, status="scheduled")
        assert not late.done
        return pacing.poll_delay(late.next_at, SEND_AT + datetime.timedelta(hours=hours_late), bounds)

    assert delay(0.001) == 60  # a moment late: the poll floor
    assert delay(0.1) == 0.1 * HOUR  # then as long again as it is overdue (few reads if stuck)
    assert delay(5) == HOUR


def test_observation_round_trips_through_json() -> None:
    verdict = poll(stats.Observation(), {"opens": 3, "clicks": 1}, 1)
    assert stats.Observation.from_dict(verdict.observation.to_dict()) == verdict.observation
    assert stats.Observation.from_dict(None) == stats.Observation()


def test_total_counts_sum_rows_and_ignore_junk() -> None:
    rows = [{"stats": {"opens": 2, "clicks": True}}, {"stats": {"opens": 3}}, {"stats": None}]
    counts = stats.total_counts(rows)
    assert counts["opens"] == 5 and counts["clicks"] == 0 and set(counts) == set(stats.METRICS)


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: GetSingleSendStats(ID, "2026-01-01", "2026-01-31", aggregated_by="week"), "aggregated_by"),
        (lambda: GetSingleSendStats(ID, "2026/01/01", "2026-01-31"), "start_date"),
        (lambda: GetSingleSendStats(ID, "2026-02-01", "2026-01-31"), "start_date"),
        (lambda: GetSingleSendStats(ID, "2026-01-01", "2026-01-31", timezone="CST"), "timezone"),
        (lambda: GetSingleSendStats(ID, "2026-01-01", "2026-01-31", group_by=["step_id"]), "group_by"),
        (lambda: GetSingleSendStats(ID, "2026-01-01", "2026-01-31", page_size=51), "page_size"),
        (lambda: GetSingleSendStats("nope", "2026-01-01", "2026-01-31"), "single_send_id"),
        (lambda: GetSingleSendLinkStats(ID, ab_phase_id="all"), "ab_phase_id"),
        (lambda: GetSingleSendLinkStats(ID, ab_variation_id="x"), "ab_variation_id"),
        (lambda: ListSingleSendStats([ID.replace("a1", f"{n:02d}") for n in range(26)]), "singlesend_ids"),
        (lambda: stats.selection(None), "single_send_ids"),
        (lambda: stats.selection(["nope"]), "single_send_ids"),
        (lambda: validation.duration("settle_for", 0), "settle_for"),
        (lambda: validation.duration("max_wait", float("inf")), "max_wait"),
        (lambda: validation.stats_group_by("ab_variation,ab_phase"), "group_by"),
    ],
)
def test_bad_parameters_name_the_argument(build, name: str) -> None:
    with pytest.raises(SendGridInputError) as raised:
        build()
    assert raised.value.name == name


def test_stats_request_sends_dates_timezone_and_group_by() -> None:
    day = datetime.date(2026, 3, 1)
    call = GetSingleSendStats(ID, day, "2026-03-31", "day", "America/Chicago", ["ab_phase"]).call()
    assert dict(call.params) == {
        "aggregated_by": "day",
        "start_date": "2026-03-01",
        "end_date": "2026-03-31",
        "timezone": "America/Chicago",
        "group_by": "ab_phase",
        "page_size": "50",
    }


def test_selection_by_ids_or_filters() -> None:
    sends = [
        {
            "id": "1",
            "name": "spring news",
            "status": "triggered",
            "send_at": "2026-03-01T09:00:00Z",
            "categories": ["news"],
        },
        {
            "id": "2",
            "name": "spring sale",
            "status": "triggered",
            "send_at": "2026-03-02T09:00:00Z",
            "categories": [],
        },
        {"id": "3", "name": "spring draft", "status": "draft", "send_at": None},
    ]
    assert [s["id"] for s in stats.Selection(name="spring*").choose(sends)] == ["1", "2"]
    assert [s["id"] for s in stats.Selection(category="news").choose(sends)] == ["1"]
    window = stats.Selection(
        sent_from=SEND_AT + datetime.timedelta(hours=1), sent_to=SEND_AT + datetime.timedelta(days=2)
    )
    assert [s["id"] for s in window.choose(sends)] == ["2"]
    assert [s["id"] for s in stats.Selection(ids=("2", "9")).choose(sends)] == ["2"]
    assert stats.selection(f"{ID}, {ID}").ids == (ID,)


def test_date_range_is_send_day_to_today_in_the_timezone() -> None:
    now = datetime.datetime(2026, 3, 5, 3, 0, tzinfo=UTC)
    assert stats.date_range("2026-03-01T02:00:00Z", now, "America/Chicago") == ("2026-02-28", "2026-03-04")
    assert stats.date_range(None, now, "UTC") == ("2026-03-05", "2026-03-05")


def test_rows_and_summary() -> None:
    result = {
        "id": ID,
        "aggregation": "total",
        "ab_variation": "all",
        "ab_phase": "all",
        "stats": {"delivered": 9, "requests": 10},
    }
    row = stats.stats_row(result, "UTC", False, "2026-03-05T00:00:00Z")
    assert len(row) == len(stats.STATS_COLUMNS)
    link = stats.link_row(ID, {"url": "https://x", "url_location": 0, "clicks": 3}, "t")
    assert link[stats.LINKS_COLUMNS.index("unique_clicks")] is None
    summary = stats.summary([row], 1, [ID])
    assert summary["totals"]["delivered"] == 9 and summary["stats_rows"] == 1 and summary["link_rows"] == 1


def test_summary_totals_count_only_the_ungrouped_total_rows() -> None:
    # aggregated_by="total" with group_by=("ab_phase",) lands ("total", "all", "send") beside the
    # all-time ("total", "all", "all") row: the summary counted both, doubling every total.
    landed_at = "2026-03-05T00:00:00Z"
    all_time = {"id": ID, "aggregation": "total", "ab_variation": "all", "ab_phase": "all"}
    per_phase = {**all_time, "ab_phase": "send"}
    rows = [
        stats.stats_row({**result, "stats": {"requests": 100}}, "UTC", False, landed_at)
        for result in (all_time, per_phase)
    ]
    assert stats.summary(rows, 0, [ID])["totals"]["requests"] == 100
