"""rules/segment_events: edge-not-level events, thresholds, the watermark, pacing, dedupe."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules.pacing import WaitBounds
from airflow_provider_sgseg.rules.segment_events import (
    EventConditions,
    Sample,
    Watermark,
    observe,
    shared_poll_delay,
    unhandled,
    watcher_delay,
)

SEGMENT = "0b9d7b8e-2f6a-4a4e-9c1e-0d9a3f2b1c00"
OTHER = "0b9d7b8e-2f6a-4a4e-9c1e-0d9a3f2b1c01"
T0 = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.timezone.utc)
NONE = EventConditions()


def sample(hours: float | None, count: int | None = 10, next_hours: float | None = None) -> Sample:
    body: dict[str, Any] = {"id": SEGMENT, "name": "buyers", "contacts_count": count}
    if hours is not None:
        body["sample_updated_at"] = (T0 + datetime.timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
    if next_hours is not None:
        body["next_sample_update"] = (T0 + datetime.timedelta(hours=next_hours)).isoformat()
    return Sample.of(body)


def run(
    samples: list[Sample], conditions: EventConditions = NONE, start: Watermark | None = None
) -> list[dict[str, Any]]:
    """Feed samples to observe() as a watcher would; return the events fired."""
    last, events = start, []
    for one in samples:
        seen = observe(last, one, conditions)
        last = seen.watermark
        if seen.event is not None:
            events.append(seen.event)
    return events


def test_the_first_sample_is_the_baseline_and_fires_nothing() -> None:
    seen = observe(None, sample(0), NONE)
    assert seen.event is None
    assert seen.changed
    assert seen.watermark == Watermark(sample(0).sample_updated_at, 10, 10)  # type: ignore[arg-type]


def test_each_advance_fires_once_and_the_same_sample_never_again() -> None:
    events = run([sample(0), sample(0), sample(1), sample(1), sample(1), sample(3, 12, next_hours=7)])
    assert [e["sample_updated_at"] for e in events] == [
        "2026-12-07T11:00:00+00:00",
        "2026-12-07T13:00:00+00:00",
    ]
    assert events[1] == {
        "segment_id": SEGMENT,
        "name": "buyers",
        "contacts_count": 12,
        "sample_updated_at": "2026-12-07T13:00:00+00:00",
        "previous_sample_updated_at": "2026-12-07T11:00:00+00:00",
        "next_sample_update": "2026-12-07T17:00:00+00:00",
    }


def test_an_older_or_missing_sample_changes_nothing() -> None:
    last = observe(None, sample(2), NONE).watermark
    for older in (sample(1), sample(None)):
        seen = observe(last, older, NONE)
        assert (seen.watermark, seen.changed, seen.event) == (last, False, None)


def test_min_contacts_fires_on_the_crossing_only() -> None:
    counts = [5, 9, 10, 12, 8, 11]
    events = run([sample(h, c) for h, c in enumerate(counts)], EventConditions(min_contacts=10))
    assert [e["contacts_count"] for e in events] == [10, 11]


def test_max_contacts_fires_when_the_count_falls_into_the_band() -> None:
    counts = [50, 40, 30, 20, 35, 25]
    events = run([sample(h, c) for h, c in enumerate(counts)], EventConditions(max_contacts=30))
    assert [e["contacts_count"] for e in events] == [30, 25]


def test_a_baseline_already_in_the_band_fires_nothing_until_it_leaves_and_comes_back() -> None:
    events = run(
        [sample(0, 20), sample(1, 25), sample(2, 5), sample(3, 15)], EventConditions(min_contacts=10)
    )
    assert [e["contacts_count"] for e in events] == [15]


def test_min_change_counts_from_the_last_event() -> None:
    counts = [100, 103, 105, 106, 111, 95]
    events = run([sample(h, c) for h, c in enumerate(counts)], EventConditions(min_change=5))
    # 105 (moved 5 from the baseline 100), 111 (6 from 105), 95 (16 from 111)
    assert [e["contacts_count"] for e in events] == [105, 111, 95]


def test_band_and_min_change_either_fires() -> None:
    counts = [0, 500, 1000, 1200, 1600]
    events = run(
        [sample(h, c) for h, c in enumerate(counts)], EventConditions(min_contacts=1000, min_change=500)
    )
    assert [e["contacts_count"] for e in events] == [500, 1000, 1600]


def test_an_unknown_count_never_crosses_into_a_band() -> None:
    assert run([sample(0, 1), sample(1, None)], EventConditions(min_contacts=0)) == []


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_contacts": -1}, "min_contacts"),
        ({"max_contacts": True}, "max_contacts"),
        ({"min_change": 0}, "min_change"),
        ({"min_change": 1.5}, "min_change"),
        ({"min_contacts": 10, "max_contacts": 9}, "max_contacts"),
    ],
)
def test_bad_conditions_are_refused_by_name(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(SendGridInputError) as caught:
        EventConditions(**kwargs)
    assert caught.value.name == name


def test_the_watermark_survives_json_and_junk_reads_as_none() -> None:
    mark = Watermark(sample(4).sample_updated_at, 7, None)  # type: ignore[arg-type]
    assert Watermark.from_json(mark.to_json()) == mark
    for junk in (None, "2026-12-07", {}, {"sample_updated_at": "soon"}, [1]):
        assert Watermark.from_json(junk) is None


def test_a_restored_watermark_fires_for_a_sample_taken_while_nobody_watched() -> None:
    saved = Watermark.from_json(observe(None, sample(0, 3), NONE).watermark.to_json())  # type: ignore[union-attr]
    events = run([sample(5, 4)], start=saved)
    assert [(e["previous_sample_updated_at"], e["sample_updated_at"]) for e in events] == [
        ("2026-12-07T10:00:00+00:00", "2026-12-07T15:00:00+00:00")
    ]


def test_the_shared_poll_follows_the_soonest_watched_segment() -> None:
    bounds = WaitBounds(floor=10, ceiling=3600, interval=300, slack=5)
    polled = T0
    segments = {
        SEGMENT: {"next_sample_update": (T0 + datetime.timedelta(minutes=30)).isoformat()},
        OTHER: {"next_sample_update": (T0 + datetime.timedelta(minutes=5)).isoformat()},
    }
    assert shared_poll_delay([(SEGMENT, bounds), (OTHER, bounds)], segments, polled) == 305
    assert shared_poll_delay([(SEGMENT, bounds)], segments, polled) == 1805
    assert shared_poll_delay([], segments, polled) is None


def test_a_missing_segment_is_polled_at_the_ceiling_and_a_late_one_at_the_floor() -> None:
    bounds = WaitBounds(floor=10, ceiling=600, interval=300, slack=5)
    assert watcher_delay(None, T0, bounds) == 600
    late = {"next_sample_update": (T0 - datetime.timedelta(minutes=1)).isoformat()}
    assert watcher_delay(late, T0, bounds) == 10
    assert watcher_delay({}, T0, bounds) == 300


def test_unhandled_drops_what_another_run_handled_and_remembers_the_rest() -> None:
    first = {"segment_id": SEGMENT, "sample_updated_at": "2026-12-07T11:00:00Z"}
    again = dict(first)
    newer = {"segment_id": SEGMENT, "sample_updated_at": "2026-12-07T12:00:00+00:00"}
    other = {"segment_id": OTHER, "sample_updated_at": "2026-12-07T09:00:00Z"}
    fresh, handled = unhandled([first, again, {"not": "ours"}], {}, "run-1")
    assert fresh == [first]  # one run got two deliveries of a sample: it handles it once
    assert unhandled([again], handled, "run-1")[0] == [again]  # a retry of run-1 still handles it
    fresh, handled = unhandled([again, newer, other], handled, "run-2")
    assert fresh == [newer, other]
    # Each record now also lists the samples each run took ("runs"); the rest of its shape is 0.3.0's.
    newest = {segment: (record["sample_updated_at"], record["run_id"]) for segment, record in handled.items()}
    assert newest == {
        SEGMENT: ("2026-12-07T12:00:00+00:00", "run-2"),
        OTHER: ("2026-12-07T09:00:00+00:00", "run-2"),
    }
    assert unhandled([first], handled, "run-3")[0] == []  # older than what run-2 handled


def test_a_retry_gets_every_sample_its_first_try_got() -> None:
    # One run got two samples of a segment; its retry got only the newer one (the record kept
    # just the newest sample) and the older event was lost.
    earlier = {"segment_id": SEGMENT, "sample_updated_at": "2026-12-07T09:00:00Z"}
    older = {"segment_id": SEGMENT, "sample_updated_at": "2026-12-07T11:00:00Z"}
    newer = {"segment_id": SEGMENT, "sample_updated_at": "2026-12-07T12:00:00Z"}
    _, handled = unhandled([earlier], {}, "run-0")
    fresh, handled = unhandled([earlier, older, newer], handled, "run-1")
    assert fresh == [older, newer]
    assert unhandled([earlier, older, newer], handled, "run-1")[0] == [older, newer]
    assert unhandled([newer, older], handled, "run-1")[0] == [newer, older]  # any order
    # A later run's take does not shrink run-1's retry, and run-2 drops what run-1 took.
    later = {"segment_id": SEGMENT, "sample_updated_at": "2026-12-07T13:00:00Z"}
    fresh, handled = unhandled([older, later], handled, "run-2")
    assert fresh == [later]
    assert unhandled([earlier, older, newer], handled, "run-1")[0] == [older, newer]
    assert unhandled([earlier], handled, "run-0")[0] == [earlier]


def test_unhandled_reads_the_record_0_3_0_wrote() -> None:
    legacy = {SEGMENT: {"sample_updated_at": "2026-12-07T12:00:00+00:00", "run_id": "run-1"}}
    again = {"segment_id": SEGMENT, "sample_updated_at": "2026-12-07T12:00:00Z"}
    assert unhandled([again], legacy, "run-1")[0] == [again]
    assert unhandled([again], legacy, "run-2")[0] == []
    later = {**again, "sample_updated_at": "2026-12-07T13:00:00Z"}
    fresh, handled = unhandled([again, later], legacy, "run-2")
    assert [p["sample_updated_at"] for p in fresh] == ["2026-12-07T13:00:00Z"]
    assert handled[SEGMENT]["run_id"] == "run-2"
    assert unhandled([again], handled, "run-1")[0] == [again]  # run-1's take survives the new shape
