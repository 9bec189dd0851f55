"""Single Send stats rules: the date parameter, when results count as settled, which Single
Sends a task reads, and the rows it lands. Pure: no I/O, no Airflow context.

The settle rule
---------------
SendGrid's Single Sends have no "sent" status (``draft``, ``scheduled``, ``triggered``) and its
stats keep growing for days as recipients open and click. So "final" is inferred:

1. A Single Send is **sent** once its status is ``triggered`` (SendGrid has started sending).
2. Its results are **settled** once its total counts (the 12 metrics of
   ``GET /v3/marketing/stats/singlesends/{id}``) have not changed for ``settle_for`` seconds,
   measured from the first poll that saw the current counts.
3. If they are still changing ``max_wait`` seconds after ``send_at``, the wait ends anyway and
   the results are **provisional** (``provisional: True`` in the XCom and the landed rows' meaning
   for downstream: later counts may still grow). "Still changing" needs counts compared over
   ``settle_for``: a Single Send first seen later than ``send_at + max_wait - settle_for`` is
   watched until ``settle_for`` after its first poll (settled if unchanged, else provisional).

Between polls the wait looks again when the current counts would have settled (``changed_at +
settle_for``), or at ``send_at + max_wait`` if that is sooner, within the poll bounds: one read
per poll once sent, so a wait costs at most about ``max_wait / min(settle_for, poll_ceiling)``
reads plus those before the send.
"""

from __future__ import annotations

import datetime
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pendulum

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules import validation
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.limits import MAX_IDS_PER_LIST as MAX_IDS_PER_LIST
from airflow_provider_sgseg.rules.limits import STATS_PAGE_SIZE as STATS_PAGE_SIZE

# The spec's Metrics (tsg_mc_stats_v3.json), in its order: the metric columns of the stats table.
METRICS = (
    "requests",
    "delivered",
    "bounces",
    "bounce_drops",
    "invalid_emails",
    "opens",
    "unique_opens",
    "clicks",
    "unique_clicks",
    "unsubscribes",
    "spam_reports",
    "spam_report_drops",
)

# --------------------------------------------------------------------------- parameters


def stats_date(value: object, name: str) -> str:
    """A date as SendGrid's ``YYYY-MM-DD`` from a ``date``, a ``datetime`` (its own date) or text
    (a rendered ``{{ ds }}``). :raises SendGridInputError: anything else."""
    if isinstance(value, datetime.datetime):
        return value.date().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise SendGridInputError(name, value, "must be a date, YYYY-MM-DD")


# ------------------------------------------------------------------------ the settle rule


@dataclass(frozen=True)
class Observation:
    """What a stats wait remembers between polls: the counts last seen, since when, and when
    counts were first seen (absent in a state 0.3.0 kept: ``changed_at`` stands in)."""

    counts: tuple[tuple[str, int], ...] | None = None
    changed_at: str | None = None
    first_seen: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (task state, trigger kwargs); :meth:`from_dict` reads it back."""
        return {
            "counts": dict(self.counts) if self.counts is not None else None,
            "changed_at": self.changed_at,
            "first_seen": self.first_seen,
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> Observation:
        counts = (value or {}).get("counts")
        if not isinstance(counts, Mapping):
            return cls()
        changed_at = (value or {}).get("changed_at")
        return cls(
            tuple(sorted((str(k), int(v)) for k, v in counts.items())),
            changed_at,
            (value or {}).get("first_seen") or changed_at,
        )


@dataclass(frozen=True)
class Settlement:
    """One poll's verdict: ``done`` (settled or past ``max_wait``), ``provisional`` (done because
    of ``max_wait``), ``next_at`` (when to look again), ``reason`` (for the log)."""

    done: bool
    provisional: bool
    observation: Observation
    next_at: datetime.datetime | None
    reason: str


def total_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The 12 metrics summed over ``total`` rows (non-integers count as 0)."""
    counts = dict.fromkeys(METRICS, 0)
    for row in rows:
        stats = _stats_of(row)
        for name in METRICS:
            value = stats.get(name)
            counts[name] += value if isinstance(value, int) and not isinstance(value, bool) else 0
    return counts


def settle(
    before: Observation,
    *,
    status: str | None,
    send_at: object,
    counts: Mapping[str, int] | None,
    now: datetime.datetime,
    settle_for: float,
    max_wait: float,
) -> Settlement:
    """Apply the settle rule (module docstring) to one poll.

    :param status: the Single Send's ``status`` (``draft``, ``scheduled``, ``triggered``).
    :param send_at: its ``send_at`` (ISO text or datetime; None for a draft without one).
    :param counts: its total counts now (None when not read: not sent yet).
    """
    sent_at = parse_instant(send_at)
    if status != "triggered" or counts is None:
        if status == "scheduled" and sent_at is not None:
            # Overdue (SendGrid triggers shortly after send_at): look again after as long again
            # as it is overdue (the poll floor at first), so a stuck send costs few reads.
            overdue = max(now - sent_at, datetime.timedelta(0))
            return Settlement(
                False, False, before, max(sent_at, now + overdue), f"scheduled for {sent_at.isoformat()}"
            )
        return Settlement(False, False, before, None, f"not sent yet (status {status!r})")
    seen = tuple(sorted(counts.items()))
    observation = before
    if before.counts != seen or before.changed_at is None:
        since = before.first_seen or before.changed_at or now.isoformat()
        observation = Observation(seen, now.isoformat(), since)
    changed_at = parse_instant(observation.changed_at) or now
    first_seen = parse_instant(observation.first_seen) or changed_at
    settles_at = changed_at + datetime.timedelta(seconds=settle_for)
    # Provisional needs counts seen changing: a send first seen after max_wait is watched for
    # settle_for too (settled if its counts hold, provisional if they move).
    gives_up_at = max(
        (sent_at or changed_at) + datetime.timedelta(seconds=max_wait),
        first_seen + datetime.timedelta(seconds=settle_for),
    )
    summary = ", ".join(f"{name} {counts.get(name, 0)}" for name in ("delivered", "unique_opens", "clicks"))
    if now >= settles_at:
        unchanged = (now - changed_at).total_seconds()
        return Settlement(
            True, False, observation, None, f"settled: unchanged for {unchanged:.0f} s ({summary})"
        )
    if now >= gives_up_at:
        return Settlement(
            True,
            True,
            observation,
            None,
            f"provisional: still changing {(now - (sent_at or first_seen)).total_seconds():.0f} s after "
            f"send_at, last change {(now - changed_at).total_seconds():.0f} s ago (max_wait "
            f"{max_wait:.0f} s, settle_for {settle_for:.0f} s; {summary})",
        )
    next_at = min(settles_at, gives_up_at)
    return Settlement(
        False, False, observation, next_at, f"changing; settles at {next_at.isoformat()} ({summary})"
    )


# ------------------------------------------------------------------- which Single Sends


@dataclass(frozen=True)
class Selection:
    """Which Single Sends a stats task reads: ``ids`` (explicit), else those matching every given
    filter: ``name`` (shell pattern, ``*`` and ``?``), ``category``, sent in ``[sent_from, sent_to)``.
    Only triggered Single Sends have stats."""

    ids: tuple[str, ...] | None = None
    name: str | None = None
    category: str | None = None
    sent_from: datetime.datetime | None = None
    sent_to: datetime.datetime | None = None

    def choose(self, single_sends: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The listed Single Sends (``GET /v3/marketing/singlesends`` items) this selection takes,
        in the order of ``ids`` or of the list. Explicit ids not found are left to the caller."""
        by_id = {str(item.get("id")): dict(item) for item in single_sends}
        if self.ids is not None:
            return [by_id[item] for item in self.ids if item in by_id]
        chosen = []
        for item in by_id.values():
            sent = parse_instant(item.get("send_at"))
            if item.get("status") != "triggered":
                continue
            if self.name is not None and not fnmatch.fnmatchcase(str(item.get("name", "")), self.name):
                continue
            if self.category is not None and self.category not in (item.get("categories") or []):
                continue
            if self.sent_from is not None and (sent is None or sent < self.sent_from):
                continue
            if self.sent_to is not None and (sent is None or sent >= self.sent_to):
                continue
            chosen.append(item)
        return chosen


def selection(
    single_send_ids: object,
    *,
    name: object = None,
    category: object = None,
    sent_from: object = None,
    sent_to: object = None,
) -> Selection:
    """A checked :class:`Selection`. ``single_send_ids``: a list (or comma-separated text, as a
    template renders it) of UUIDs, or None to select by the filters.

    :raises SendGridInputError: bad ids, or no ids and no filter at all.
    """
    ids = single_send_ids
    if isinstance(ids, str) and "," in ids:
        ids = [part.strip() for part in ids.split(",") if part.strip()]
    chosen = None if ids is None else tuple(validation.single_send_ids(ids))
    if name is not None and not (isinstance(name, str) and name):
        raise SendGridInputError("name", name, "must be a non-empty name pattern")
    if category is not None and not (isinstance(category, str) and category):
        raise SendGridInputError("category", category, "must be a non-empty category")
    assert name is None or isinstance(name, str)
    assert category is None or isinstance(category, str)
    start, end = parse_instant(sent_from), parse_instant(sent_to)
    if chosen is None and name is None and category is None and start is None:
        raise SendGridInputError(
            "single_send_ids", None, "give ids, or a name, category or sent_in_data_interval filter"
        )
    return Selection(chosen, name, category, start, end)


def date_range(send_at: object, now: datetime.datetime, timezone: str) -> tuple[str, str]:
    """The stats date range for one Single Send: its ``send_at`` date to today, both in
    ``timezone`` (SendGrid's own defaults, 2021-01-01..2021-12-31, are never relied on)."""
    today = pendulum.instance(now).in_timezone(timezone).date()
    sent = parse_instant(send_at)
    first = sent.in_timezone(timezone).date() if sent is not None else today
    return min(first, today).isoformat(), today.isoformat()


# --------------------------------------------------------------------------- landed rows

STATS_KEY = ("single_send_id", "aggregation", "ab_variation", "ab_phase")
STATS_COLUMNS = (*STATS_KEY, "timezone", *METRICS, "provisional", "landed_at")
LINKS_KEY = ("single_send_id", "url_location", "ab_variation", "ab_phase")
LINKS_COLUMNS = (
    "single_send_id",
    "url",
    "url_location",
    "ab_variation",
    "ab_phase",
    "clicks",
    "unique_clicks",
    "landed_at",
)


def stats_row(result: Mapping[str, Any], timezone: str, provisional: bool, landed_at: str) -> tuple[Any, ...]:
    """One stats table row (:data:`STATS_COLUMNS`) from one ``results`` item."""
    stats = _stats_of(result)
    metrics = [_count(stats.get(name)) for name in METRICS]
    key = (
        str(result.get("id")),
        str(result.get("aggregation") or "total"),
        str(result.get("ab_variation") or "all"),
        str(result.get("ab_phase") or "all"),
    )
    return (*key, timezone, *metrics, provisional, landed_at)


def link_row(single_send_id: str, result: Mapping[str, Any], landed_at: str) -> tuple[Any, ...]:
    """One links table row (:data:`LINKS_COLUMNS`). ``unique_clicks`` is None unless SendGrid gives
    it (its spec lists only ``clicks`` per link)."""
    unique = result.get("unique_clicks")
    return (
        single_send_id,
        str(result.get("url", "")),
        _count(result.get("url_location")),
        str(result.get("ab_variation") or "all"),
        str(result.get("ab_phase") or "all"),
        _count(result.get("clicks")),
        unique if isinstance(unique, int) and not isinstance(unique, bool) else None,
        landed_at,
    )


def _stats_of(row: Mapping[str, Any]) -> Mapping[str, Any]:
    stats = row.get("stats")
    return stats if isinstance(stats, Mapping) else {}


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def summary(rows: Sequence[tuple[Any, ...]], links: int, single_send_ids: Sequence[str]) -> dict[str, Any]:
    """The compact XCom of a stats task (never the rows): counts and the totals over ``total`` rows
    without grouping (``ab_variation == ab_phase == "all"``)."""
    index = {name: position for position, name in enumerate(STATS_COLUMNS)}
    totals = dict.fromkeys(("requests", "delivered", "unique_opens", "unique_clicks"), 0)
    for row in rows:
        if tuple(row[index[name]] for name in STATS_KEY[1:]) == ("total", "all", "all"):
            for name in totals:
                totals[name] += row[index[name]]
    return {
        "single_send_ids": list(single_send_ids),
        "stats_rows": len(rows),
        "link_rows": links,
        "totals": totals,
    }
