"""Single Sends: drafts, scheduling, and the record of what was actually sent to how many."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import views
from .clock import parse_iso, to_iso
from .errors import FieldErrors, bad_request, not_found
from .segments import is_uuid
from .store import new_id

if TYPE_CHECKING:
    from .clock import Clock
    from .request_bodies import SingleSendCreate
    from .store import Store


def _check_uuids(errors: FieldErrors, field: str, value: list[str] | None) -> list[str]:
    """The spec's ``format: uuid`` (its maxItems are checked with the body's shape)."""
    if value and not all(is_uuid(item) for item in value):
        errors.add(field, f"{field} must be an array of UUIDs")
        return []
    return list(value or [])


def _readiness_errors(send: dict[str, Any]) -> FieldErrors:
    """What a draft still lacks before it can be scheduled."""
    errors = FieldErrors()
    send_to = send["send_to"]
    if not (send_to.get("all") or send_to.get("segment_ids") or send_to.get("list_ids")):
        errors.add("send_to", "a Single Send needs recipients: segment_ids, list_ids or all")
    config = send["email_config"]
    if config.get("sender_id") is None:
        errors.add("email_config.sender_id", "a sender_id is required to schedule a Single Send")
    if config.get("suppression_group_id") is None and not config.get("custom_unsubscribe_url"):
        errors.add(
            "email_config.suppression_group_id",
            "a suppression_group_id or a custom_unsubscribe_url is required to schedule a Single Send",
        )
    has_content = config.get("subject") and (config.get("html_content") or config.get("plain_content"))
    if not (has_content or config.get("design_id")):
        errors.add(
            "email_config", "content is required: subject plus html_content/plain_content, or design_id"
        )
    return errors


# The spec's ``format: date-time`` (RFC 3339): a date, ``T``, a time with seconds, ``Z`` or an offset.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _requested_send_time(body: Any, now: datetime) -> datetime:
    """The schedule's ``send_at``: ``"now"`` or a date-time "in future", as the spec says."""
    raw = body.get("send_at") if isinstance(body, dict) else None
    if raw == "now":
        return now
    problem = bad_request(
        "send_at is required: 'now' or an RFC 3339 date-time with an offset (the spec's format: "
        "date-time, e.g. 2030-01-01T09:00:00Z)",
        "send_at",
    )
    if not isinstance(raw, str) or _RFC3339.fullmatch(raw) is None:
        raise problem
    try:
        moment = parse_iso(raw)
    except ValueError:
        raise problem from None
    if moment < now.replace(microsecond=0):
        raise bad_request(
            f"send_at {raw!r} is in the past (now is {to_iso(now)}): it must be in the future or 'now'",
            "send_at",
        )
    return moment


# RFC 3986's absolute URI, as the spec's ``format: uri``: a scheme, ':', then no spaces.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s\x00-\x1f\x7f]+")


def _check_uri(errors: FieldErrors, field: str, value: str | None) -> None:
    if value is not None and _URI.fullmatch(value) is None:
        errors.add(field, f"{field} must be an absolute URI (such as https://...), got {value!r}")


MembersOf = Callable[[str, datetime], "list[str]"]


@dataclass
class SingleSends:
    """Single Send drafts and schedules; ``members_of(segment_id, at)`` counts segment recipients."""

    store: Store
    clock: Clock
    members_of: MembersOf

    def _load(self, single_send_id: str) -> dict[str, Any]:
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT body FROM single_sends WHERE single_send_id = ?", (single_send_id,)
            ).fetchone()
        if row is None:
            raise not_found(f"single send {single_send_id!r} not found", "id")
        document: dict[str, Any] = json.loads(row[0])
        return document

    def _save(self, send: dict[str, Any]) -> None:
        with self.store.lock:
            self.store.conn.execute(
                "INSERT INTO single_sends (single_send_id, body, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (single_send_id) DO UPDATE SET body = excluded.body",
                (send["id"], json.dumps(send), send["created_at"]),
            )

    def create(self, body: SingleSendCreate) -> dict[str, Any]:
        """201 ``SinglesendResponse`` draft for ``POST /v3/marketing/singlesends`` (body already
        checked against the spec); ``ApiError`` 400 for repeated categories, ids that are not
        UUIDs, or a ``send_at`` that is ``now`` or not ISO 8601."""
        errors = FieldErrors()
        name = body["name"]
        categories = body.get("categories") or []
        if len(set(categories)) != len(categories):  # the spec's uniqueItems
            errors.add("categories", "categories must be unique strings")
        send_to = body.get("send_to") or {}
        segment_ids = _check_uuids(errors, "send_to.segment_ids", send_to.get("segment_ids"))
        list_ids = _check_uuids(errors, "send_to.list_ids", send_to.get("list_ids"))
        send_at = body.get("send_at")
        if send_at == "now":
            errors.add("send_at", "'now' is only valid when scheduling; drafts take an ISO 8601 time or null")
        elif send_at is not None:
            try:
                send_at = to_iso(parse_iso(str(send_at)))
            except ValueError:
                errors.add("send_at", f"send_at {send_at!r} is not an ISO 8601 date-time")
        email_config = body.get("email_config") or {}
        _check_uri(errors, "email_config.custom_unsubscribe_url", email_config.get("custom_unsubscribe_url"))
        errors.raise_if_any()
        now = to_iso(self.clock.now())
        send = {
            "id": new_id(),
            "name": name,
            "status": "draft",
            "categories": categories,
            "send_at": send_at,
            "send_to": {
                "list_ids": list_ids,
                "segment_ids": segment_ids,
                "all": bool(send_to.get("all", False)),
            },
            "updated_at": now,
            "created_at": now,
            "email_config": {"editor": "code", "generate_plain_content": True, **email_config},
            "warnings": [],
        }
        self._save(send)
        return views.without_nulls(send)  # type: ignore[no-any-return]

    def get(self, single_send_id: str) -> dict[str, Any]:
        """``SinglesendResponse`` for ``GET /v3/marketing/singlesends/{id}`` (due schedules applied first);
        ``ApiError`` 404 if unknown."""
        self.trigger_due()
        return views.without_nulls(self._load(single_send_id))  # type: ignore[no-any-return]

    def page(self, page_size: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """One page of ``SinglesendResponseShort`` items and the total count."""
        self.trigger_due()
        with self.store.lock:
            total = int(self.store.conn.execute("SELECT COUNT(*) FROM single_sends").fetchone()[0])
            rows = self.store.conn.execute(
                "SELECT body FROM single_sends ORDER BY created_at, rowid LIMIT ? OFFSET ?",
                (page_size, offset),
            ).fetchall()
        return [views.single_send_short(json.loads(row[0])) for row in rows], total

    def delete(self, single_send_id: str) -> None:
        """``DELETE /v3/marketing/singlesends/{id}``: the draft goes and its pending schedule is cancelled;
        ``ApiError`` 404 if unknown."""
        with self.store.lock:
            self._load(single_send_id)
            self.store.conn.execute("DELETE FROM single_sends WHERE single_send_id = ?", (single_send_id,))
            self.store.conn.execute(
                "UPDATE sends SET status = 'cancelled' WHERE single_send_id = ? AND status = 'scheduled'",
                (single_send_id,),
            )

    def schedule(self, single_send_id: str, body: Any) -> dict[str, Any]:
        """``PUT /v3/marketing/singlesends/{id}/schedule`` with ``send_at`` (``now`` or ISO 8601):
        ``{"send_at", "status": "scheduled"}``. ``ApiError`` 404 if unknown, 400 for a bad ``send_at``, a
        draft that lacks recipients, sender, unsubscribe or content, or one already sent."""
        self.trigger_due()
        with self.store.lock:
            send = self._load(single_send_id)
            now = self.clock.now()
            send_at = _requested_send_time(body, now)
            if send["status"] == "triggered":
                raise bad_request("this Single Send has already been sent", "status")
            _readiness_errors(send).raise_if_any()
            self.store.conn.execute(
                "UPDATE sends SET status = 'cancelled' WHERE single_send_id = ? AND status = 'scheduled'",
                (single_send_id,),
            )
            self.store.conn.execute(
                "INSERT INTO sends (single_send_id, name, scheduled_at, send_at, status) "
                "VALUES (?, ?, ?, ?, 'scheduled')",
                (single_send_id, send["name"], to_iso(now), to_iso(send_at)),
            )
            send.update(status="scheduled", send_at=to_iso(send_at), updated_at=to_iso(now))
            self._save(send)
            return {"send_at": to_iso(send_at), "status": "scheduled"}

    def scheduled_for_segment(self, segment_id: str) -> list[str]:
        """Ids of the scheduled (not yet triggered) Single Sends whose ``send_to`` has the segment."""
        with self.store.lock:
            rows = self.store.conn.execute("SELECT single_send_id, body FROM single_sends").fetchall()
        return [
            row[0]
            for row in rows
            if (send := json.loads(row[1]))["status"] == "scheduled"
            and segment_id in (send["send_to"].get("segment_ids") or [])
        ]

    # -- delivery -------------------------------------------------------------------------
    def trigger_due(self) -> None:
        """Mark every schedule whose send_at has passed as sent, counting its recipients then."""
        now_iso = to_iso(self.clock.now())
        with self.store.lock:
            due = self.store.conn.execute(
                "SELECT send_id, single_send_id, send_at FROM sends "
                "WHERE status = 'scheduled' AND send_at <= ?",
                (now_iso,),
            ).fetchall()
            for send_id, single_send_id, send_at in due:
                send = self._load(single_send_id)
                recipients = self._recipients(send, parse_iso(send_at))
                self.store.conn.execute(
                    "UPDATE sends SET status = 'triggered', triggered_at = ?, recipient_count = ? "
                    "WHERE send_id = ?",
                    (send_at, len(recipients), send_id),
                )
                send.update(status="triggered", updated_at=send_at)
                self._save(send)

    def _recipients(self, send: dict[str, Any], at: datetime) -> set[str]:
        send_to = send["send_to"]
        if send_to.get("all"):
            return self.store.all_contact_ids()
        recipients = self.store.contact_ids_in_lists(send_to.get("list_ids") or [])
        for segment_id in send_to.get("segment_ids") or []:
            recipients.update(self.members_of(segment_id, at))
        return recipients

    def deliveries(self) -> list[dict[str, Any]]:
        """Every schedule request with its outcome, for the admin API."""
        self.trigger_due()
        with self.store.lock:
            rows = self.store.conn.execute("SELECT * FROM sends ORDER BY send_id").fetchall()
        return [dict(row) for row in rows]
