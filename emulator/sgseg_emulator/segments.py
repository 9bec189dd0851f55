"""Segments V2: create, read (with due samples applied), update, delete and manual refresh."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import refresh_limits, views
from .clock import parse_iso, to_iso
from .errors import ApiError, FieldErrors, bad_request, not_found
from .membership import Membership, reported_next_update
from .store import new_id

if TYPE_CHECKING:
    from .clock import Clock
    from .config import ConfigSource
    from .request_bodies import SegmentCreate, SegmentUpdate
    from .single_sends import SingleSends
    from .store import Store

# Own copy of the refresh endpoint's 36-character UUID rule (the oracle never imports the provider's).
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_uuid(value: str) -> bool:
    return _UUID.match(value) is not None


@dataclass
class Segments:
    """Segments V2 resources (``/v3/marketing/segments/2.0``); raises ``ApiError`` in SendGrid's shapes."""

    store: Store
    clock: Clock
    config: ConfigSource
    membership: Membership
    single_sends: SingleSends

    def _catch_up(self, row: sqlite3.Row) -> sqlite3.Row:
        """The row with every sample that fell due up to now applied."""
        updates = self.membership.due_updates(row)
        return row if updates is None else self._update(row["segment_id"], updates)

    # -- reading --------------------------------------------------------------------------
    def _row(self, segment_id: str) -> sqlite3.Row | None:
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT * FROM segments WHERE segment_id = ?", (segment_id,)
            ).fetchone()
        return row if row is None else self._catch_up(row)

    def get(self, segment_id: str, include_sample: bool = True) -> dict[str, Any]:
        """``Segment2xx`` for ``GET /v3/marketing/segments/2.0/{segment_id}``, with every sample due by now
        applied; ``contacts_sample`` is [] unless ``include_sample``. ``ApiError`` 404 if unknown."""
        with self.store.lock:
            row = self._row(segment_id)
            if row is None:
                raise not_found(f"segment {segment_id!r} not found", "segment_id")
            return self._full_view(row, include_sample)

    def summaries(
        self, ids: list[str], parent_list_ids: list[str], no_parent_list_id: bool
    ) -> list[dict[str, Any]]:
        """Filter per the spec's truth table: ``ids`` wins; else parent lists and/or no parent."""
        with self.store.lock:
            rows = self.store.conn.execute("SELECT * FROM segments ORDER BY created_at, rowid").fetchall()
            now_iso = to_iso(self.clock.now())
            selected = []
            for row in rows:
                parents = json.loads(row["parent_list_ids"])
                if ids:
                    keep = row["segment_id"] in ids
                elif parent_list_ids or no_parent_list_id:
                    keep = bool(set(parents) & set(parent_list_ids)) or (no_parent_list_id and not parents)
                else:
                    keep = True
                if keep:
                    row = self._catch_up(row)
                    selected.append(views.segment_summary(row, now_iso, reported_next_update(row)))
            return selected

    def _full_view(self, row: sqlite3.Row, include_sample: bool) -> dict[str, Any]:
        now = self.clock.now()
        refreshed = self._refresh_times(row["segment_id"])
        zone = row["user_time_zone"] or "UTC"
        return views.segment_full(
            row,
            to_iso(now),
            reported_next_update(row),
            include_sample=include_sample,
            refreshes_used=refresh_limits.refreshes_used(now, zone, refreshed),
            max_refreshes=self.config().refreshes_per_segment_per_day,
            last_refreshed_at=to_iso(max(refreshed)) if refreshed else None,
        )

    def _update(self, segment_id: str, updates: dict[str, Any]) -> sqlite3.Row:
        assignments = ", ".join(f"{column} = :{column}" for column in updates)
        with self.store.lock:
            self.store.conn.execute(
                f"UPDATE segments SET {assignments} WHERE segment_id = :segment_id",
                {**updates, "segment_id": segment_id},
            )
            row = self.store.conn.execute(
                "SELECT * FROM segments WHERE segment_id = ?", (segment_id,)
            ).fetchone()
        assert row is not None
        fresh: sqlite3.Row = row
        return fresh

    def _query_state(self, query_dsl: str, now: datetime) -> dict[str, Any]:
        """Columns that follow from a (new) query: validation verdict and first sample time."""
        from .query import QueryRuleError

        config = self.config()
        validation: str = "VALID"
        error_message: str | None = None
        uses_events = False
        try:
            uses_events = self.membership.compile(query_dsl).uses_events
        except QueryRuleError as error:
            validation, error_message = "INVALID", str(error)
        validated_at = now + timedelta(seconds=config.validation_delay)
        delay = config.engagement_populate_delay if uses_events else config.contacts_populate_delay
        first_sample_at = max(now + timedelta(seconds=delay), validated_at)
        return {
            "query_dsl": query_dsl,
            "uses_events": int(uses_events),
            "validation": validation,
            "error_message": error_message,
            "validated_at": to_iso(validated_at),
            "contacts_count": 0,
            "contacts_sample": "[]",
            "sample_hash": None,
            "sample_updated_at": to_iso(now),
            "next_sample_update": to_iso(first_sample_at),
            "next_check_at": to_iso(first_sample_at),
            "sample_interval": 0,
            "pending_refresh_at": None,
        }

    # -- writing --------------------------------------------------------------------------
    def _check_query(self, query_dsl: str, errors: FieldErrors) -> None:
        from .query import QueryRuleError, QuerySyntaxError

        if not query_dsl.strip():
            errors.add("query_dsl", "query_dsl must be a non-empty string")
            return
        try:
            self.membership.compile(query_dsl)
        except QuerySyntaxError as error:
            errors.add("query_dsl", str(error))
        except QueryRuleError:
            pass  # saved, then reported as INVALID

    def _check_unique_name(self, name: str, errors: FieldErrors, *, own_id: str | None = None) -> None:
        with self.store.lock:
            clash = self.store.conn.execute(
                "SELECT segment_id FROM segments WHERE name = ? AND segment_id != ?", (name, own_id or "")
            ).fetchone()
        if clash is not None:
            errors.add("name", f"segment name {name!r} is already in use; segment names must be unique")

    def create(self, body: SegmentCreate) -> dict[str, Any]:
        """201 body ``Segment2xx`` for ``POST /v3/marketing/segments/2.0`` (body already checked
        against the spec); ``ApiError`` 400 for a taken name, a blank or unparseable query or a
        bad parent list."""
        with self.store.lock:  # the unique-name check and the insert are one step
            return self._create(body)

    def _create(self, body: SegmentCreate) -> dict[str, Any]:
        errors = FieldErrors()
        self._check_unique_name(body["name"], errors)
        query_dsl = body["query_dsl"]
        self._check_query(query_dsl, errors)
        parent_list_ids = body.get("parent_list_ids") or []
        if len(parent_list_ids) > 1:
            errors.add("parent_list_ids", "only one parent list id is allowed")
        elif missing := self.store.missing_lists(parent_list_ids):
            errors.add("parent_list_ids", f"list {missing[0]!r} does not exist")
        errors.raise_if_any()
        now = self.clock.now()
        segment_id = new_id()
        columns = {
            "segment_id": segment_id,
            "name": body["name"],
            "parent_list_ids": json.dumps(parent_list_ids),
            "created_at": to_iso(now),
            "updated_at": to_iso(now),
            **self._query_state(query_dsl, now),
        }
        with self.store.lock:
            self.store.conn.execute(
                f"INSERT INTO segments ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})",
                columns,
            )
            return self.get(segment_id)

    def update(self, segment_id: str, body: SegmentUpdate) -> dict[str, Any]:
        """200 ``Segment2xx`` for ``PATCH .../{segment_id}``; 404, or 400 as :meth:`create`."""
        with self.store.lock:
            row = self._row(segment_id)
            if row is None:
                raise not_found(f"segment {segment_id!r} not found", "segment_id")
            errors = FieldErrors()
            if "name" in body:
                self._check_unique_name(body["name"], errors, own_id=segment_id)
            query_dsl = body.get("query_dsl")
            if query_dsl is not None:
                self._check_query(query_dsl, errors)
            if "parent_list_ids" in body:
                errors.add("parent_list_ids", "parent_list_ids cannot be changed after creation")
            errors.raise_if_any()
            now = self.clock.now()
            updates: dict[str, Any] = {"updated_at": to_iso(now)}
            if "name" in body:
                updates["name"] = body["name"]
            if isinstance(query_dsl, str) and query_dsl != row["query_dsl"]:
                updates.update(self._query_state(query_dsl, now))
            self._update(segment_id, updates)
            return self.get(segment_id)

    def delete(self, segment_id: str) -> None:
        """202, or 404 without a body; see ``segment_delete_in_use`` for a segment a send targets."""
        sends = self.single_sends
        with self.store.lock:
            sends.trigger_due()  # a send due before this delete counts its recipients first
            if self._row(segment_id) is None:
                raise ApiError(404)
            users = sends.scheduled_for_segment(segment_id)
            if users and self.config().segment_delete_in_use == "refuse":
                raise bad_request(
                    f"segment {segment_id!r} is used by scheduled Single Send(s) {', '.join(users)}; "
                    "cancel or change them first",
                    "segment_id",
                )
            self.store.conn.execute("DELETE FROM segments WHERE segment_id = ?", (segment_id,))

    # -- manual refresh -------------------------------------------------------------------
    def _refresh_times(self, segment_id: str) -> list[datetime]:
        with self.store.lock:
            rows = self.store.conn.execute(
                "SELECT refreshed_at FROM refreshes WHERE segment_id = ?", (segment_id,)
            ).fetchall()
        return [parse_iso(found[0]) for found in rows]

    def refresh(self, segment_id: str, body: Any) -> dict[str, Any]:
        """Accept a manual refresh (202 + job_id) or refuse it with SendGrid's refresh errors."""
        config = self.config()
        if not is_uuid(segment_id):
            raise ApiError(400, {"error": "segment_id must be a 36-character UUID"})
        zone = body.get("user_time_zone") if isinstance(body, dict) else None
        if not refresh_limits.is_iana_zone(zone):
            raise ApiError(400, {"error": "user_time_zone is required and must be an IANA time zone name"})
        assert isinstance(zone, str)
        if config.plan == "free":
            raise ApiError(403)
        with self.store.lock:
            row = self._row(segment_id)
            if row is None:
                raise ApiError(404, {"error": "Segment does not exist."})
            now = self.clock.now()
            limits = refresh_limits.Limits(
                per_segment_per_day=config.refreshes_per_segment_per_day,
                min_spacing=config.refresh_min_spacing,
                per_account_per_day=config.refreshes_per_account_per_day,
            )
            since = to_iso(now - timedelta(days=2))
            account = [
                parse_iso(found[0])
                for found in self.store.conn.execute(
                    "SELECT refreshed_at FROM refreshes WHERE refreshed_at >= ?", (since,)
                )
            ]
            denial = refresh_limits.check_refresh(now, zone, self._refresh_times(segment_id), account, limits)
            if denial is not None:
                wait = max(1, int((denial.retry_at - now).total_seconds() + 0.999))
                raise ApiError(
                    429,
                    {"error": f"Too many refreshes: {denial.message}."},
                    {"Retry-After": str(wait), "X-RateLimit-Reset": str(int(denial.retry_at.timestamp()))},
                )
            job_id = new_id()
            self.store.conn.execute(
                "INSERT INTO refreshes (job_id, segment_id, refreshed_at, user_time_zone) "
                "VALUES (?, ?, ?, ?)",
                (job_id, segment_id, to_iso(now), zone),
            )
            due = to_iso(now + timedelta(seconds=config.refresh_delay))
            pending = row["pending_refresh_at"]
            updates = {"user_time_zone": zone, "pending_refresh_at": min(pending, due) if pending else due}
            if row["validation"] == "INVALID":
                updates["pending_refresh_at"] = None  # an invalid query never populates, refreshed or not
            self._update(segment_id, updates)
            return {"job_id": job_id}
