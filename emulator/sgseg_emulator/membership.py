"""Segment membership and samples: evaluate a segment's query and apply the samples that fell due.

Samples are worked out lazily, when a segment is read: every membership check, scheduled sample
and manual-refresh sample between the last read and now is replayed (rules in ``sampling``).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import sampling, views
from .clock import parse_iso, to_iso
from .field_definitions import FieldDefinitions

if TYPE_CHECKING:
    from .clock import Clock
    from .config import ConfigSource
    from .query import CompiledQuery
    from .store import Store

SAMPLE_SIZE = 50  # own copy of SendGrid's sample size (the emulator is the oracle; not the provider's)
_USES_NOW = re.compile(r"[:@$]now\b")
_PARENT_LIST_FILTER = (
    " WHERE contact_id IN (SELECT pc.contact_id FROM contacts AS pc, json_each(pc.list_ids) AS pl"
    " WHERE pl.value = :emulator_parent_list_id)"
)


def _membership_hash(members: list[str]) -> str:
    return hashlib.sha1("\n".join(sorted(members)).encode()).hexdigest()


def schedule_of(row: sqlite3.Row) -> sampling.Schedule:
    pending = row["pending_refresh_at"]
    return sampling.Schedule(
        next_sample_update=parse_iso(row["next_sample_update"]),
        next_check_at=parse_iso(row["next_check_at"]),
        interval=row["sample_interval"],
        pending_refresh_at=parse_iso(pending) if pending else None,
    )


def reported_next_update(row: sqlite3.Row) -> str:
    return to_iso(sampling.reported_next_update(schedule_of(row)))


class Membership:
    """Who is in a segment at a given time, and the samples a segment row has due."""

    def __init__(self, store: Store, clock: Clock, config: ConfigSource) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self._compiled: dict[tuple[str, str], CompiledQuery] = {}

    def forget_compiled(self) -> None:
        """Drop compiled queries (after a reset, custom field ids may mean other fields)."""
        self._compiled.clear()

    def compile(self, query_dsl: str) -> CompiledQuery:
        """``query_dsl`` compiled against the account's custom fields; raises ``QuerySyntaxError`` or
        ``QueryRuleError``."""
        from .query import compile_query

        return compile_query(query_dsl, FieldDefinitions(self.store).ids_by_name())

    def _compiled_for(self, row: sqlite3.Row) -> CompiledQuery:
        key = (row["segment_id"], row["query_dsl"])
        if key not in self._compiled:
            self._compiled[key] = self.compile(row["query_dsl"])
        return self._compiled[key]

    def members_query(self, row: sqlite3.Row, at: datetime) -> tuple[str, dict[str, object]]:
        """(SQL, parameters) selecting the ``contact_id`` of a segment's members at ``at``."""
        compiled = self._compiled_for(row)
        sql = compiled.sql
        params: dict[str, object] = {**compiled.params, "now": to_iso(at)}
        parent_list_ids = json.loads(row["parent_list_ids"])
        if parent_list_ids:
            sql = f"SELECT contact_id FROM ({sql}){_PARENT_LIST_FILTER}"
            params["emulator_parent_list_id"] = parent_list_ids[0]
        return sql, params

    def members(self, row: sqlite3.Row, at: datetime) -> list[str]:
        """Full membership of a segment at ``at``, evaluated with one SQL query."""
        sql, params = self.members_query(row, at)
        with self.store.lock:
            found = [hit[0] for hit in self.store.conn.execute(sql, params)]
        # De-duplicate here: SQL DISTINCT over 100k UUIDs costs several times the query itself.
        return list(dict.fromkeys(found))

    def members_of(self, segment_id: str, at: datetime) -> list[str]:
        """Members of a segment at ``at``; none when it does not exist or its query is invalid."""
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT * FROM segments WHERE segment_id = ? AND validation = 'VALID'", (segment_id,)
            ).fetchone()
            return [] if row is None else self.members(row, at)

    def due_updates(self, row: sqlite3.Row) -> dict[str, Any] | None:
        """Column updates from every check, sample and refresh due up to now (None: nothing due)."""
        if row["validation"] == "INVALID":
            return None
        now = self.clock.now()
        schedule = schedule_of(row)
        if sampling.next_step(schedule).at > now:
            return None
        config = self.config()
        timings = sampling.Timings(
            membership_check_interval=config.membership_check_interval,
            sample_interval=config.sample_interval,
            sample_max_interval=config.sample_max_interval,
        )
        # Contacts do not change while we catch up, so only a query that reads "now" can
        # give a different answer at each step.
        depends_on_time = _USES_NOW.search(self._compiled_for(row).sql) is not None
        cached: tuple[list[str], str] | None = None
        sample_hash = row["sample_hash"]
        sampled: tuple[datetime, list[str]] | None = None
        while (step := sampling.next_step(schedule)).at <= now:
            if cached is None or depends_on_time:
                members = self.members(row, step.at)
                cached = (members, _membership_hash(members))
            members, members_hash = cached
            refresh_due = schedule.pending_refresh_at is not None and schedule.pending_refresh_at <= now
            if not (depends_on_time or refresh_due) and schedule.interval > 0 and members_hash == sample_hash:
                # Nothing can change until now: jump instead of one step per check interval.
                schedule, last = sampling.skip_quiet(schedule, now, timings)
                if last is not None:
                    sampled = (last, members)
                continue
            if step.is_refresh:
                schedule, take = sampling.after_refresh(schedule), True
            else:
                changed = sample_hash is None or members_hash != sample_hash
                schedule, take = sampling.after_check(schedule, step.at, changed, timings)
            if take:
                sample_hash = members_hash
                sampled = (step.at, members)
        updates: dict[str, Any] = {
            "next_sample_update": to_iso(schedule.next_sample_update),
            "next_check_at": to_iso(schedule.next_check_at),
            "sample_interval": schedule.interval,
            "pending_refresh_at": to_iso(schedule.pending_refresh_at)
            if schedule.pending_refresh_at
            else None,
        }
        if sampled is not None:
            sampled_at, members = sampled
            sample_rows = self.store.contacts_by_id(sorted(members)[:SAMPLE_SIZE])
            field_names = FieldDefinitions(self.store).names_by_id()
            updates.update(
                contacts_count=len(members),
                contacts_sample=json.dumps(
                    [views.sample_contact(c, row["segment_id"], field_names) for c in sample_rows]
                ),
                sample_hash=sample_hash,
                sample_updated_at=to_iso(sampled_at),
            )
        return updates
