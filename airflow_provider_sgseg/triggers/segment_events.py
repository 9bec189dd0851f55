"""Segments that start DAGs: an event trigger for ``AssetWatcher``, one poll per account on 3.3+.

``SendGridSegmentEventTrigger`` fires one event per new sample of a segment that meets its
conditions (rules: :mod:`airflow_provider_sgseg.rules.segment_events`). Two ways to poll:

* Airflow 3.3+ (``shared_stream_key``): every watcher of one connection in a triggerer process
  subscribes to one shared poll (:meth:`~SendGridSegmentEventTrigger.open_shared_stream`): one
  ``GET /v3/marketing/segments/2.0`` answers ``contacts_count``, ``sample_updated_at`` and
  ``next_sample_update`` for every segment, and the poll runs when the soonest watched segment
  is due. The process-wide :class:`_AccountWatchers` tells the poll which segments are watched.
* Airflow 3.0-3.2 (or a trigger run on its own): :meth:`~SendGridSegmentEventTrigger.run`
  reads its own segment (``GET /v3/marketing/segments/2.0/{id}``), paced the same way.

Both feed the same :meth:`~SendGridSegmentEventTrigger._events`, which keeps the watermark (on
3.3+ in the watcher's asset state store, written before the event is yielded) and never raises
for a failed poll: a watcher that raises is restarted by the triggerer about once a second.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pendulum

from airflow_provider_sgseg.exceptions import (
    SendGridAuthError,
    SendGridError,
    SendGridNotFoundError,
    SendGridRateLimitError,
)
from airflow_provider_sgseg.rules import pacing, validation
from airflow_provider_sgseg.rules.population import (
    DEFAULT_POLL_CEILING,
    DEFAULT_POLL_FLOOR,
    DEFAULT_POLL_INTERVAL,
)
from airflow_provider_sgseg.rules.segment_events import (
    EventConditions,
    Sample,
    Watermark,
    observe,
    shared_poll_delay,
    watcher_delay,
)
from airflow_provider_sgseg.version_compat import BaseEventTrigger, TriggerEvent

if TYPE_CHECKING:
    import logging

    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

# SendGrid's next_sample_update is an estimate: a few seconds after it the new sample is there.
DEFAULT_EVENT_POLL_SLACK = 5.0
SHARED_STREAM = "sendgrid-segments"
STATE_KEY_PREFIX = "sendgrid_segment_event"


@dataclass(frozen=True)
class Snapshot:
    """One poll's answer: the segments it holds by id, as SendGrid returned them, and when."""

    polled_at: datetime.datetime
    segments: Mapping[str, Mapping[str, Any]]


class SendGridSegmentEventTrigger(BaseEventTrigger):
    """Fire one event per new sample of a SendGrid segment that meets the conditions.

    For ``Asset(..., watchers=[AssetWatcher(name, trigger)])``. The event payload (the Asset
    event's ``extra["payload"]``): ``{"segment_id", "name", "contacts_count",
    "sample_updated_at", "previous_sample_updated_at", "next_sample_update"}`` (ISO 8601 text).
    The first sample a watcher sees is its baseline: no event. See docs/events.md.

    :param sendgrid_conn_id: connection id; the key itself is looked up in the triggerer and
        never appears in kwargs, ``repr`` or events.
    :param segment_id: the segment to watch (UUID).
    :param min_contacts: fire when the count rises to at least this (crosses into the band).
    :param max_contacts: fire when the count falls to at most this (crosses into the band).
    :param min_change: fire when the count moved by at least this since the last event.
    :param poll_floor: seconds; never poll sooner (default 60).
    :param poll_ceiling: seconds; never poll later, and the pace after a definitive failure
        (deleted segment, revoked key) (default 3600).
    :param poll_slack: seconds added to SendGrid's ``next_sample_update`` (default 5).
    :raises SendGridInputError: a bad id, count or bound (when the trigger is built).
    """

    def __init__(
        self,
        *,
        segment_id: str,
        sendgrid_conn_id: str = "sendgrid_default",
        min_contacts: int | None = None,
        max_contacts: int | None = None,
        min_change: int | None = None,
        poll_floor: float = DEFAULT_POLL_FLOOR,
        poll_ceiling: float = DEFAULT_POLL_CEILING,
        poll_slack: float = DEFAULT_EVENT_POLL_SLACK,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.sendgrid_conn_id = sendgrid_conn_id
        self.segment_id = validation.segment_id(segment_id)
        self.conditions = EventConditions(min_contacts, max_contacts, min_change)
        self.bounds = pacing.WaitBounds(poll_floor, poll_ceiling, DEFAULT_POLL_INTERVAL, poll_slack)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """``(classpath, kwargs)``: plain JSON values, no secret (the triggerer resolves the
        connection id itself)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sendgrid_conn_id": self.sendgrid_conn_id,
                "segment_id": self.segment_id,
                "min_contacts": self.conditions.min_contacts,
                "max_contacts": self.conditions.max_contacts,
                "min_change": self.conditions.min_change,
                "poll_floor": self.bounds.floor,
                "poll_ceiling": self.bounds.ceiling,
                "poll_slack": self.bounds.slack,
            },
        )

    @property
    def state_key(self) -> str:
        """The watermark's key in the asset state store: segment and conditions (not the pace,
        so a changed ``poll_floor`` keeps the watermark)."""
        return f"{STATE_KEY_PREFIX}/{self.segment_id}/{self.conditions.key()}"

    # Test seams, static so the shared poll (a classmethod) uses them too: patch them on the class.
    @staticmethod
    def now() -> datetime.datetime:
        """The current time (aware, UTC)."""
        return pendulum.now("UTC")

    @staticmethod
    async def sleep(seconds: float) -> None:
        """Wait ``seconds``."""
        await asyncio.sleep(seconds)

    # ------------------------------------------------------------------ Airflow 3.3+: shared poll

    def shared_stream_key(self) -> Hashable | None:
        """Every watcher of one connection shares one poll."""
        return (SHARED_STREAM, self.sendgrid_conn_id)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """The one poll of a connection: list every segment, yield a :class:`Snapshot`, wait
        until the soonest watched segment is due (or a new watcher joins), forever. Failures are
        logged and paced, never raised (a raise would fail every watcher of the account)."""
        conn_id = kwargs["sendgrid_conn_id"]
        watchers = _AccountWatchers.of(conn_id)
        health = _PollHealth(f"Listing the segments of connection {conn_id!r}", _log())
        hook = _hook(conn_id)
        while True:
            polled_at = cls.now()
            watchers.newcomer_floor = None
            try:
                listed = await hook.alist_segments()
            except Exception as error:
                delay = health.failed(error, polled_at, watchers.bounds())
            else:
                health.recovered()
                segments = {s["id"]: s for s in listed if isinstance(s.get("id"), str)}
                yield Snapshot(polled_at, segments)
                soonest = shared_poll_delay(watchers.watched.values(), segments, polled_at)
                delay = watchers.bounds().ceiling if soonest is None else soonest
            await watchers.wait(cls, polled_at, delay)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """This watcher's events from the connection's shared poll."""
        watchers = _AccountWatchers.of(self.sendgrid_conn_id)
        token = watchers.add(self.segment_id, self.bounds)
        try:
            async for event in self._events(shared_stream):
                yield event
        finally:
            watchers.remove(token)

    # ----------------------------------------------------------------- Airflow 3.0-3.2: own poll

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll this segment alone and yield its events, forever."""
        async for event in self._events(self._own_snapshots()):
            yield event

    async def _own_snapshots(self) -> AsyncIterator[Snapshot]:
        health = _PollHealth(f"Reading segment {self.segment_id}", self.log)
        hook = _hook(self.sendgrid_conn_id)
        while True:
            polled_at = self.now()
            try:
                segment = await hook.aget_segment(self.segment_id, contacts_sample=False)
            except SendGridNotFoundError:
                health.recovered()
                yield Snapshot(polled_at, {})  # _events reports the missing segment
                delay = self.bounds.ceiling
            except Exception as error:
                delay = health.failed(error, polled_at, self.bounds)
            else:
                health.recovered()
                yield Snapshot(polled_at, {self.segment_id: segment})
                delay = watcher_delay(segment, polled_at, self.bounds)
            await self.sleep(delay)

    # ------------------------------------------------------------------------------ both paths

    async def _events(self, snapshots: AsyncIterator[Snapshot]) -> AsyncIterator[TriggerEvent]:
        """Turn snapshots into events: observe, save the watermark, then yield.

        Saving before yielding makes a restart (``kill -9``, failover, redeploy) emit no
        duplicate; the price is that an event whose save succeeded but which the triggerer
        had not yet stored when it died is lost (a window of about one state sync).
        """
        watermarks = _Watermarks(self)
        last = await watermarks.load()
        missing = False
        async for snapshot in snapshots:
            segment = snapshot.segments.get(self.segment_id)
            if segment is None:
                if not missing:
                    self.log.error(
                        "Segment %s is not in SendGrid's answer (deleted?); it keeps being polled",
                        self.segment_id,
                    )
                missing = True
                continue
            if missing:
                self.log.info("Segment %s is back in SendGrid's answer", self.segment_id)
                missing = False
            seen = observe(last, Sample.of(segment), self.conditions)
            if seen.changed and seen.watermark is not None:
                if not await watermarks.save(seen.watermark):
                    continue  # not saved: the same sample is observed again at the next poll
                last = seen.watermark
            if seen.event is not None:
                self.log.info(
                    "Segment %s has a new sample at %s (%s contacts): event",
                    self.segment_id,
                    seen.event["sample_updated_at"],
                    seen.event["contacts_count"],
                )
                yield TriggerEvent(seen.event)  # type: ignore[no-untyped-call]


def _log() -> logging.Logger:
    import logging

    return logging.getLogger(__name__)


def _hook(conn_id: str) -> SendGridMarketingHook:
    from airflow_provider_sgseg.hooks._retry import NO_RETRY
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

    # One attempt per poll: the poll loop is the retry, paced by SendGrid's schedule.
    return SendGridMarketingHook(conn_id, retry=NO_RETRY)


class _PollHealth:
    """Counts failed polls, says how long to back off, and logs each problem once."""

    def __init__(self, what: str, log: Any) -> None:
        self.what = what
        self.log = log
        self.failures = 0
        self.problem: str | None = None

    def failed(self, error: Exception, now: datetime.datetime, bounds: pacing.WaitBounds) -> float:
        """Seconds to wait after ``error``: the ceiling for a definitive refusal (revoked key,
        no such account or path), logged as an error once; else a growing backoff, honouring a
        429's reset time, logged as a warning each time."""
        if isinstance(error, SendGridAuthError | SendGridNotFoundError):
            if self.problem != str(error):
                self.log.error(
                    "%s failed: %s; polling every %.0f s until it recovers", self.what, error, bounds.ceiling
                )
            self.problem = str(error)
            return bounds.ceiling
        self.failures += 1
        reset_at = error.reset_at if isinstance(error, SendGridRateLimitError) else None
        delay = pacing.failure_delay(self.failures, now, bounds, reset_at)
        if isinstance(error, SendGridError):
            self.log.warning(
                "%s failed (%d in a row): %s; next poll in %.0f s", self.what, self.failures, error, delay
            )
        else:
            self.log.exception(
                "%s failed unexpectedly (%d in a row); next poll in %.0f s", self.what, self.failures, delay
            )
        return delay

    def recovered(self) -> None:
        """A healthy answer: forget the failures."""
        if self.failures or self.problem:
            self.log.info("%s works again", self.what)
        self.failures, self.problem = 0, None


class _Watermarks:
    """The watcher's watermark in its asset state store (Airflow 3.3+); nothing kept before 3.3,
    or when the trigger serves several assets (then the store needs an asset to be named)."""

    def __init__(self, trigger: SendGridSegmentEventTrigger) -> None:
        self.trigger = trigger
        self.store: Any = getattr(trigger, "asset_state_store", None)
        self.key = trigger.state_key

    async def load(self) -> Watermark | None:
        """The saved watermark, asking again (backing off) until the store answers."""
        failures = 0
        while self.store is not None:
            try:
                return Watermark.from_json(await self.store.aget(self.key))
            except ValueError as error:  # several assets share this trigger
                self.trigger.log.warning(
                    "No asset state store for this watcher (%s); events may repeat", error
                )
                self.store = None
            except Exception:
                failures += 1
                delay = pacing.failure_delay(failures, self.trigger.now(), self.trigger.bounds)
                self.trigger.log.exception("Reading the asset state store failed; again in %.0f s", delay)
                await self.trigger.sleep(delay)
        return None

    async def save(self, watermark: Watermark) -> bool:
        """Keep ``watermark``; ``False`` when the store failed (logged)."""
        if self.store is None:
            return True
        try:
            await self.store.aset(self.key, watermark.to_json())
        except Exception:
            self.trigger.log.exception("Saving the watermark of segment %s failed", self.trigger.segment_id)
            return False
        return True


class _AccountWatchers:
    """The segments watched through one connection in this process, for its shared poll's pace.

    Process-wide (the triggerer runs every trigger in one event loop): one small entry per
    connection id, kept for the life of the process, so a poll and its watchers always share it.
    """

    _by_conn: dict[str, _AccountWatchers] = {}

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self.watched: dict[int, tuple[str, pacing.WaitBounds]] = {}
        self.newcomer_floor: float | None = None  # the smallest floor among watchers since the last poll
        self.joined = asyncio.Event()
        self._next_token = 0

    @classmethod
    def of(cls, conn_id: str) -> _AccountWatchers:
        """The entry of ``conn_id`` (created on first use)."""
        entry = cls._by_conn.get(conn_id)
        if entry is None:
            entry = cls._by_conn[conn_id] = cls(conn_id)
        return entry

    def add(self, segment_id: str, bounds: pacing.WaitBounds) -> int:
        """Register a watcher; returns its token for :meth:`remove`. Wakes the poll, so a new
        watcher is served within its ``poll_floor``."""
        self._next_token += 1
        self.watched[self._next_token] = (segment_id, bounds)
        floors = [bounds.floor] if self.newcomer_floor is None else [bounds.floor, self.newcomer_floor]
        self.newcomer_floor = min(floors)
        self.joined.set()
        return self._next_token

    def remove(self, token: int) -> None:
        """Unregister a watcher."""
        self.watched.pop(token, None)

    def bounds(self) -> pacing.WaitBounds:
        """The loosest-needed pace for the poll itself (failures): the smallest floor and ceiling."""
        if not self.watched:
            return pacing.WaitBounds(DEFAULT_POLL_FLOOR, DEFAULT_POLL_CEILING, DEFAULT_POLL_INTERVAL)
        floor = min(bounds.floor for _, bounds in self.watched.values())
        ceiling = min(bounds.ceiling for _, bounds in self.watched.values())
        return pacing.WaitBounds(floor, max(ceiling, floor), DEFAULT_POLL_INTERVAL)

    async def wait(
        self, trigger_class: type[SendGridSegmentEventTrigger], polled_at: datetime.datetime, delay: float
    ) -> None:
        """Sleep until ``delay`` seconds after ``polled_at``, or sooner when a watcher joins (it
        is then due ``poll_floor`` seconds after ``polled_at``)."""
        due = polled_at.timestamp() + delay
        while True:
            if self.newcomer_floor is not None:
                due = min(due, polled_at.timestamp() + self.newcomer_floor)
            remaining = due - trigger_class.now().timestamp()
            if remaining <= 0:
                return
            self.joined.clear()
            sleeping = asyncio.ensure_future(trigger_class.sleep(remaining))
            joining = asyncio.ensure_future(self.joined.wait())
            try:
                await asyncio.wait({sleeping, joining}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeping, joining):
                    task.cancel()
            if sleeping.done() and not sleeping.cancelled():
                sleeping.result()  # what the sleep raised, if anything
                return
