"""Single Send stats: what a triggered send reports, growing over emulator time toward final values.

SendGrid documents no growth curve, so the emulator's is its own (INFERRED), chosen to be
deterministic and to settle: every count is a function of the send's recipient count, the time
since it was triggered and ``stats_growth_period`` alone. Delivery counts (requests, delivered,
bounces, drops) reach their final values within 1/48 of the period (an hour by default);
engagement counts (opens, clicks, unsubscribes, spam reports) grow quickly at first, more slowly
later, and stop changing once the period has passed. A Single Send made an A/B test (admin
API) splits its recipients: each variation's test share, then the rest to the first variation
in the ``send`` phase.
Links come from the content's ``href`` attributes, top-down (``url_location`` 0 is the topmost),
and share the clicks, the top links more.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .clock import parse_iso
from .errors import ApiError, FieldErrors, bad_request

if TYPE_CHECKING:
    from .clock import Clock
    from .config import ConfigSource
    from .single_sends import SingleSends
    from .store import Store

# The spec's Metrics, in its order.
METRICS = (
    "bounce_drops",
    "bounces",
    "clicks",
    "delivered",
    "invalid_emails",
    "opens",
    "requests",
    "spam_report_drops",
    "spam_reports",
    "unique_clicks",
    "unique_opens",
    "unsubscribes",
)
DELIVERY_METRICS = frozenset(
    {"bounce_drops", "bounces", "delivered", "invalid_emails", "requests", "spam_report_drops"}
)
GROUP_BY = ("ab_variation", "ab_phase")
PHASES = ("test", "send")
# The spec's defaults for the date range (own copies; the emulator is the oracle).
DEFAULT_START_DATE = "2021-01-01"
DEFAULT_END_DATE = "2021-12-31"
_AB_KEY = "ab_test:"
_SPEC_START, _SPEC_END, _UTC = (
    date.fromisoformat(DEFAULT_START_DATE),
    date.fromisoformat(DEFAULT_END_DATE),
    ZoneInfo("UTC"),
)
_HREF = re.compile(r"""href\s*=\s*["'](https?://[^"']+)["']""", re.IGNORECASE)


# ------------------------------------------------------------------------- the model (pure)


def final_counts(recipients: int) -> dict[str, int]:
    """What a send to ``recipients`` contacts reports once settled."""
    bounces = recipients * 3 // 100
    delivered = recipients - bounces
    unique_opens = delivered * 45 // 100
    unique_clicks = unique_opens * 20 // 100
    return {
        "bounce_drops": 0,
        "bounces": bounces,
        "clicks": unique_clicks * 3 // 2,
        "delivered": delivered,
        "invalid_emails": 0,
        "opens": unique_opens * 3 // 2,
        "requests": recipients,
        "spam_report_drops": 0,
        "spam_reports": delivered // 500,
        "unique_clicks": unique_clicks,
        "unique_opens": unique_opens,
        "unsubscribes": delivered // 100,
    }


def counts_at(final: dict[str, int], elapsed: float, period: float) -> dict[str, int]:
    """Cumulative counts ``elapsed`` seconds after the send (non-decreasing; final from ``period``)."""
    if elapsed <= 0:
        return dict.fromkeys(METRICS, 0)
    delivery = min(1.0, elapsed / max(period / 48, 1e-9))
    progress = min(1.0, elapsed / max(period, 1e-9))
    engagement = 1 - (1 - progress) ** 2
    return {
        name: int(final[name] * (delivery if name in DELIVERY_METRICS else engagement)) for name in METRICS
    }


def link_clicks(clicks: int, links: int) -> list[int]:
    """``clicks`` shared by ``links`` links, weighted toward the top; the rest go to link 0."""
    if links <= 0:
        return []
    weights = [links - index for index in range(links)]
    shares = [clicks * weight // sum(weights) for weight in weights]
    shares[0] += clicks - sum(shares)
    return shares


def variation_id(single_send_id: str, index: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sgseg-emulator/{single_send_id}/variation/{index}"))


@dataclass(frozen=True)
class Bucket:
    """One (variation, phase) share of a send's recipients."""

    ab_variation: str
    ab_phase: str
    recipients: int


def buckets(single_send_id: str, recipients: int, ab_test: dict[str, int] | None) -> list[Bucket]:
    """How a send's recipients split across variations and phases."""
    if not ab_test:
        return [Bucket(variation_id(single_send_id, 0), "send", recipients)]
    variations = ab_test["variations"]
    each = recipients * ab_test["test_percentage"] // 100 // variations
    tests = [Bucket(variation_id(single_send_id, index), "test", each) for index in range(variations)]
    return [*tests, Bucket(variation_id(single_send_id, 0), "send", recipients - each * variations)]


# ------------------------------------------------------------------------- request parameters


@dataclass(frozen=True)
class StatsQuery:
    """The by-id parameters: ``aggregated_by``, the date range, ``timezone``, ``group_by``."""

    aggregated_by: str = "total"
    start_date: date = _SPEC_START
    end_date: date = _SPEC_END
    zone: ZoneInfo = _UTC
    group_by: tuple[str, ...] = ()


def _date(errors: FieldErrors, name: str, raw: str | None, default: str) -> date:
    text = raw or default
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        errors.add(name, f"{name} must be a date in YYYY-MM-DD format")
        return date.fromisoformat(default)


def time_zone(errors: FieldErrors, raw: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(raw or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        errors.add("timezone", "timezone must be an IANA Area/Region name, e.g. America/Chicago")
        return ZoneInfo("UTC")


def group_by(errors: FieldErrors, values: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(values)
    if any(value not in GROUP_BY for value in chosen):
        errors.add("group_by", "group_by items must be ab_variation or ab_phase")
        return ()
    return chosen


def stats_query(
    aggregated_by: str | None,
    start_date: str | None,
    end_date: str | None,
    timezone: str | None,
    group: Iterable[str],
) -> StatsQuery:
    """Checked by-id parameters; ``ApiError`` 400 naming each bad one."""
    errors = FieldErrors()
    aggregation = aggregated_by or "total"
    if aggregation not in ("day", "total"):
        errors.add("aggregated_by", "aggregated_by must be day or total")
    start = _date(errors, "start_date", start_date, DEFAULT_START_DATE)
    end = _date(errors, "end_date", end_date, DEFAULT_END_DATE)
    if not errors and start > end:
        errors.add("start_date", "start_date must not be after end_date")
    query = StatsQuery(aggregation, start, end, time_zone(errors, timezone), group_by(errors, group))
    errors.raise_if_any()
    return query


# ------------------------------------------------------------------------------ the resource


@dataclass
class Stats:
    """Stats of triggered Single Sends (read from their delivery record) and the A/B test setting."""

    store: Store
    clock: Clock
    config: ConfigSource
    single_sends: SingleSends

    def set_ab_test(self, single_send_id: str, variations: int, test_percentage: int) -> dict[str, int]:
        """Make a Single Send an A/B test (admin API; the public API has no such field)."""
        self.single_sends.get(single_send_id)
        if not (isinstance(variations, int) and 2 <= variations <= 6):
            raise bad_request("variations must be an integer from 2 to 6", "variations")
        if not (isinstance(test_percentage, int) and 1 <= test_percentage <= 50):
            raise bad_request("test_percentage must be an integer from 1 to 50", "test_percentage")
        setting = {"variations": variations, "test_percentage": test_percentage}
        self.store.set_meta(_AB_KEY + single_send_id, json.dumps(setting))
        return setting

    def _delivery(self, single_send_id: str) -> tuple[datetime, int] | None:
        """(triggered_at, recipients) of the send that went out, None if none has yet."""
        self.single_sends.trigger_due()
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT triggered_at, recipient_count FROM sends WHERE single_send_id = ? "
                "AND status = 'triggered' ORDER BY send_id DESC LIMIT 1",
                (single_send_id,),
            ).fetchone()
        return None if row is None else (parse_iso(row[0]), int(row[1] or 0))

    def _buckets(self, single_send_id: str, recipients: int) -> list[Bucket]:
        raw = self.store.get_meta(_AB_KEY + single_send_id)
        return buckets(single_send_id, recipients, json.loads(raw) if raw else None)

    def _counter(self, single_send_id: str) -> Callable[[Bucket, datetime], dict[str, int]] | None:
        delivery = self._delivery(single_send_id)
        if delivery is None:
            return None
        triggered_at = delivery[0]
        period = self.config().stats_growth_period

        def at(bucket: Bucket, moment: datetime) -> dict[str, int]:
            elapsed = (min(moment, self.clock.now()) - triggered_at).total_seconds()
            return counts_at(final_counts(bucket.recipients), elapsed, period)

        return at

    def triggered_ids(self, single_send_ids: list[str]) -> list[str]:
        """Ids of the Single Sends that went out (all of them when ``single_send_ids`` is empty)."""
        self.single_sends.trigger_due()
        with self.store.lock:
            rows = self.store.conn.execute(
                "SELECT DISTINCT single_send_id FROM sends WHERE status = 'triggered' ORDER BY single_send_id"
            ).fetchall()
        sent = [row[0] for row in rows]
        return [item for item in sent if not single_send_ids or item in single_send_ids]

    def rows(self, single_send_id: str, query: StatsQuery) -> list[dict[str, Any]]:
        """The ``results`` of ``GET /v3/marketing/stats/singlesends/{id}`` (every page); 404 if unknown."""
        self.single_sends.get(single_send_id)
        at = self._counter(single_send_id)
        delivery = self._delivery(single_send_id)
        if at is None or delivery is None:
            return []
        zone, now = query.zone, self.clock.now()
        first_day = delivery[0].astimezone(zone).date()
        last_day = now.astimezone(zone).date()
        groups = self._buckets(single_send_id, delivery[1])

        def midnight(day: date) -> datetime:
            return datetime.combine(day, time(0), zone)

        if query.aggregated_by == "total":
            slices = [("total", midnight(query.start_date), midnight(query.end_date + timedelta(days=1)))]
        else:
            day, slices = max(first_day, query.start_date), []
            while day <= min(last_day, query.end_date):
                slices.append((day.isoformat(), midnight(day), midnight(day + timedelta(days=1))))
                day += timedelta(days=1)
        results = []
        for aggregation, start, end in slices:
            for key, members in _grouped(groups, query.group_by).items():
                totals = dict.fromkeys(METRICS, 0)
                for bucket in members:
                    high, low = at(bucket, end), at(bucket, start)
                    for name in METRICS:
                        totals[name] += high[name] - low[name]
                results.append(
                    {
                        "id": single_send_id,
                        "ab_variation": key[0],
                        "ab_phase": key[1],
                        "aggregation": aggregation,
                        "stats": totals,
                    }
                )
        return results

    def totals(self, single_send_id: str) -> dict[str, Any]:
        """One ``total`` row over all time (the list endpoint's and the CSV export's)."""
        everything = StatsQuery(start_date=date(1970, 1, 1), end_date=date(9999, 12, 30))
        rows = self.rows(single_send_id, everything)
        return rows[0] if rows else {}

    def links(
        self,
        single_send_id: str,
        group: tuple[str, ...],
        ab_variation_id: str | None,
        ab_phase_id: str | None,
    ) -> list[dict[str, Any]]:
        """The ``results`` of ``GET /v3/marketing/stats/singlesends/{id}/links`` (every page)."""
        send = self.single_sends.get(single_send_id)
        at = self._counter(single_send_id)
        delivery = self._delivery(single_send_id)
        if at is None or delivery is None:
            return []
        content = (send.get("email_config") or {}).get("html_content") or ""
        urls = _HREF.findall(content)
        chosen = [
            bucket
            for bucket in self._buckets(single_send_id, delivery[1])
            if ab_variation_id in (None, bucket.ab_variation) and ab_phase_id in (None, bucket.ab_phase)
        ]
        # A filter on a variation or phase shows it in the answer, as grouping by it does.
        shown = tuple(
            name
            for name, value in (("ab_variation", ab_variation_id), ("ab_phase", ab_phase_id))
            if name in group or value is not None
        )
        results = []
        for key, members in _grouped(chosen, shown).items():
            clicks = [0] * len(urls)
            for bucket in members:
                for index, share in enumerate(link_clicks(at(bucket, self.clock.now())["clicks"], len(urls))):
                    clicks[index] += share
            for location, (url, count) in enumerate(zip(urls, clicks, strict=True)):
                if count > 0:  # the spec's minimum: links nobody clicked are not listed
                    results.append(
                        {
                            "url": url,
                            "url_location": location,
                            "ab_variation": key[0],
                            "ab_phase": key[1],
                            "clicks": count,
                        }
                    )
        return results

    def export_csv(self, single_send_ids: list[str]) -> str:
        """``GET /v3/marketing/stats/singlesends/export``: one CSV line of totals per Single Send."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["Single Send ID", "Single Send Name", *METRICS])
        for single_send_id in single_send_ids:
            try:
                name = self.single_sends.get(single_send_id)["name"]
            except ApiError:  # an unknown id is left out of the file
                continue
            row = self.totals(single_send_id)
            stats = row.get("stats") or dict.fromkeys(METRICS, 0)
            writer.writerow([single_send_id, name, *(stats[metric] for metric in METRICS)])
        return out.getvalue()


def _grouped(groups: list[Bucket], by: tuple[str, ...]) -> dict[tuple[str, str], list[Bucket]]:
    """Buckets under their (ab_variation, ab_phase) key; "all" for a field not grouped by."""
    keyed: dict[tuple[str, str], list[Bucket]] = {}
    for bucket in groups:
        key = (
            bucket.ab_variation if "ab_variation" in by else "all",
            bucket.ab_phase if "ab_phase" in by else "all",
        )
        keyed.setdefault(key, []).append(bucket)
    return keyed


def check_ids(values: list[str], name: str, most: int, *, required: bool = False) -> list[str]:
    """A list of Single Send UUIDs from a query parameter; 400 beyond ``most`` or not UUIDs."""
    from .segments import is_uuid

    if required and not values:
        raise bad_request(f"{name} is required: 1 to {most} Single Send ids", name)
    if len(values) > most:
        raise bad_request(f"{name} takes at most {most} ids", name)
    if not all(is_uuid(value) for value in values):
        raise bad_request(f"{name} must be Single Send ids (UUIDs)", name)
    return values
