"""Pure rules for segment events: which new sample fires an event (an edge, never a level), the
watermark a watcher keeps between polls, when a shared poll looks again, and which events a
consuming DAG has already handled. No I/O here.

A watcher remembers the last sample it considered (:class:`Watermark`). Each poll's answer is a
:class:`Sample`; :func:`observe` compares the two. The first sample a watcher ever sees is its
baseline (no event); after that, every advance of ``sample_updated_at`` that meets the
:class:`EventConditions` fires exactly one event, and the same sample never fires again.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pendulum

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules import pacing
from airflow_provider_sgseg.rules.instants import parse_instant


def _count(name: str, value: object, *, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SendGridInputError(name, value, f"must be an integer >= {minimum} (or None)")
    return value


@dataclass(frozen=True)
class EventConditions:
    """When a new sample fires an event. All ``None``: every new sample does.

    ``min_contacts`` / ``max_contacts`` bound a band of contact counts: a sample fires when its
    count is inside the band and the previous sample's was not (the count *crossed into* it, e.g.
    rose to 10,000 or more; fell to ``max_contacts`` or fewer). ``min_change``: a sample fires
    when its count differs by at least this much from the count at the last event (or at the
    watcher's first sample). Given both, either one fires.

    :raises SendGridInputError: a count that is not an integer (``min_contacts``,
        ``max_contacts`` >= 0, ``min_change`` >= 1), or ``max_contacts`` below ``min_contacts``.
    """

    min_contacts: int | None = None
    max_contacts: int | None = None
    min_change: int | None = None

    def __post_init__(self) -> None:
        _count("min_contacts", self.min_contacts, minimum=0)
        _count("max_contacts", self.max_contacts, minimum=0)
        _count("min_change", self.min_change, minimum=1)
        low, high = self.min_contacts, self.max_contacts
        if low is not None and high is not None and high < low:
            raise SendGridInputError("max_contacts", high, f"must be at least min_contacts ({low})")

    @property
    def has_band(self) -> bool:
        """Whether a count bound is set."""
        return self.min_contacts is not None or self.max_contacts is not None

    def in_band(self, count: int | None) -> bool:
        """Whether ``count`` is within ``[min_contacts, max_contacts]`` (an unknown count is not)."""
        if count is None:
            return False
        above = self.min_contacts is None or count >= self.min_contacts
        below = self.max_contacts is None or count <= self.max_contacts
        return above and below

    def met(self, previous: int | None, current: int | None, at_last_event: int | None) -> bool:
        """Whether a new sample counting ``current`` fires, after one counting ``previous``
        and the last event (or the baseline) at ``at_last_event``."""
        if not self.has_band and self.min_change is None:
            return True
        crossed = self.has_band and self.in_band(current) and not self.in_band(previous)
        moved = (
            self.min_change is not None
            and current is not None
            and at_last_event is not None
            and abs(current - at_last_event) >= self.min_change
        )
        return crossed or moved

    def key(self) -> str:
        """A short stable text naming these conditions (part of a watcher's state key)."""
        return f"{self.min_contacts}-{self.max_contacts}-{self.min_change}"


@dataclass(frozen=True)
class Sample:
    """What one answer says about a segment's current sample (a list item or a Get Segment body)."""

    segment_id: str
    name: str | None
    contacts_count: int | None
    sample_updated_at: pendulum.DateTime | None
    next_sample_update: pendulum.DateTime | None

    @classmethod
    def of(cls, segment: Mapping[str, Any]) -> Sample:
        """Read a SendGrid segment object; a missing or unreadable value is ``None``."""
        count = segment.get("contacts_count")
        name = segment.get("name")
        return cls(
            segment_id=str(segment.get("id", "")),
            name=name if isinstance(name, str) else None,
            contacts_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
            sample_updated_at=parse_instant(segment.get("sample_updated_at")),
            next_sample_update=parse_instant(segment.get("next_sample_update")),
        )


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass(frozen=True)
class Watermark:
    """The last sample a watcher considered: its time and count, and the count at the watcher's
    last event (or at its baseline). Kept between polls, and on Airflow 3.3+ in the watcher's
    asset state store (:meth:`to_json` / :meth:`from_json`)."""

    sample_updated_at: pendulum.DateTime
    contacts_count: int | None
    event_contacts_count: int | None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "sample_updated_at": self.sample_updated_at.isoformat(),
            "contacts_count": self.contacts_count,
            "event_contacts_count": self.event_contacts_count,
        }

    @classmethod
    def from_json(cls, value: object) -> Watermark | None:
        """A watermark from :meth:`to_json`'s shape; ``None`` for anything else (no watermark)."""
        if not isinstance(value, Mapping):
            return None
        at = parse_instant(value.get("sample_updated_at"))
        if at is None:
            return None
        counts = [value.get(name) for name in ("contacts_count", "event_contacts_count")]
        count, at_event = (c if isinstance(c, int) and not isinstance(c, bool) else None for c in counts)
        return cls(at, count, at_event)


@dataclass(frozen=True)
class Observation:
    """What a watcher does with one sample: keep ``watermark`` (``changed``: it is new, so save
    it) and fire ``event`` (the payload) when it is not ``None``."""

    watermark: Watermark | None
    changed: bool
    event: dict[str, Any] | None


def observe(last: Watermark | None, sample: Sample, conditions: EventConditions) -> Observation:
    """Compare a poll's ``sample`` with the watcher's ``last`` watermark.

    No sample yet (``sample_updated_at`` missing) or not newer than ``last``: nothing changes.
    No ``last``: the sample becomes the baseline, without an event. A newer sample: the new
    watermark, and the event payload when ``conditions`` are met: ``segment_id``, ``name``,
    ``contacts_count``, ``sample_updated_at``, ``previous_sample_updated_at`` (the sample before,
    as this watcher saw it), ``next_sample_update`` (ISO 8601 text or ``None``).
    """
    at = sample.sample_updated_at
    if at is None or (last is not None and at <= last.sample_updated_at):
        return Observation(last, False, None)
    count = sample.contacts_count
    if last is None:
        return Observation(Watermark(at, count, count), True, None)
    if not conditions.met(last.contacts_count, count, last.event_contacts_count):
        return Observation(Watermark(at, count, last.event_contacts_count), True, None)
    event = {
        "segment_id": sample.segment_id,
        "name": sample.name,
        "contacts_count": count,
        "sample_updated_at": _iso(at),
        "previous_sample_updated_at": _iso(last.sample_updated_at),
        "next_sample_update": _iso(sample.next_sample_update),
    }
    return Observation(Watermark(at, count, count), True, event)


def watcher_delay(
    segment: Mapping[str, Any] | None, polled_at: datetime.datetime, bounds: pacing.WaitBounds
) -> float:
    """Seconds after a poll at ``polled_at`` until a watcher of ``segment`` wants the next one:
    SendGrid's ``next_sample_update`` plus slack, within ``bounds`` (``pacing.poll_delay``);
    ``bounds.ceiling`` when the answer did not hold the segment (deleted: look rarely)."""
    if segment is None:
        return bounds.ceiling
    return pacing.poll_delay(parse_instant(segment.get("next_sample_update")), polled_at, bounds)


def shared_poll_delay(
    watched: Iterable[tuple[str, pacing.WaitBounds]],
    segments: Mapping[str, Mapping[str, Any]],
    polled_at: datetime.datetime,
) -> float | None:
    """Seconds after a poll at ``polled_at`` (that answered ``segments`` by id) until the next
    poll shared by the ``watched`` (segment id, bounds) pairs: the soonest :func:`watcher_delay`
    among them. ``None`` when nothing is watched."""
    delays = [watcher_delay(segments.get(segment_id), polled_at, bounds) for segment_id, bounds in watched]
    return min(delays) if delays else None


# Runs whose takes a segment's record keeps: a retry after this many later runs took the same
# segment finds its own take gone and handles only what is still newer.
RUNS_REMEMBERED = 20


def unhandled(
    payloads: Iterable[Mapping[str, Any]], handled: Mapping[str, Any], run_id: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The event ``payloads`` that DAG run ``run_id`` has to handle, and ``handled`` updated.

    ``handled`` maps a segment id to ``{"sample_updated_at", "run_id", "runs"}``: the newest
    sample a run of the consuming DAG took on, that run, and the samples each of the last
    :data:`RUNS_REMEMBERED` runs took (``[{"run_id", "first", "last"}]``, ISO 8601, oldest run
    first). A payload whose sample is not newer than ``sample_updated_at`` (the same event
    delivered again) is dropped, unless ``run_id`` itself took it on: a retried task gets the
    same events as its first try. The same sample twice in one run counts once; payloads that
    name no segment and sample are dropped. A record without ``runs`` (0.3.0) reads as its run
    having taken only its newest sample.
    """
    fresh: list[dict[str, Any]] = []
    taken: dict[str, list[datetime.datetime]] = {}
    for payload in payloads:
        segment_id, at = payload.get("segment_id"), parse_instant(payload.get("sample_updated_at"))
        if not isinstance(segment_id, str) or at is None or at in taken.get(segment_id, ()):
            continue
        record = handled.get(segment_id)
        seen, runs = _record(record if isinstance(record, Mapping) else {})
        own = [(first, last) for run, first, last in runs if run == run_id]
        if seen is not None and at <= seen and not any(first <= at <= last for first, last in own):
            continue
        taken.setdefault(segment_id, []).append(at)
        fresh.append(dict(payload))
    newest = dict(handled)
    for segment_id, instants in taken.items():
        record = handled.get(segment_id)
        record = record if isinstance(record, Mapping) else {}
        seen, runs = _record(record)
        first, last = min(instants), max(instants)
        for run, run_first, run_last in runs:
            if run == run_id:  # a retry: its take stays as wide as the first try's
                first, last = min(first, run_first), max(last, run_last)
        runs = [item for item in runs if item[0] != run_id] + [(run_id, first, last)]
        newest_run = run_id if seen is None or last > seen else record.get("run_id")
        newest[segment_id] = {
            "sample_updated_at": max(last, seen or last).isoformat(),
            "run_id": newest_run,
            "runs": [
                {"run_id": run, "first": run_first.isoformat(), "last": run_last.isoformat()}
                for run, run_first, run_last in runs[-RUNS_REMEMBERED:]
            ],
        }
    return fresh, newest


def _record(
    record: Mapping[str, Any],
) -> tuple[datetime.datetime | None, list[tuple[str, datetime.datetime, datetime.datetime]]]:
    """A segment's handled record: its newest sample and each remembered run's ``(run_id, first,
    last)``; 0.3.0's record (no ``runs``) took only its newest sample."""
    seen = parse_instant(record.get("sample_updated_at"))
    listed = record.get("runs")
    if not isinstance(listed, list):
        run = record.get("run_id")
        return seen, [(run, seen, seen)] if isinstance(run, str) and seen is not None else []
    runs: list[tuple[str, datetime.datetime, datetime.datetime]] = []
    for item in listed:
        if not isinstance(item, Mapping):
            continue
        first, last = parse_instant(item.get("first")), parse_instant(item.get("last"))
        if isinstance(item.get("run_id"), str) and first is not None and last is not None:
            runs.append((str(item["run_id"]), first, last))
    return seen, runs
