"""SQLite storage for the emulator: schema, contacts, lists, events, custom fields and metadata.

One connection guarded by a re-entrant lock; callers hold ``store.lock`` around multi-step work.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

# The contacts/events DDL is the contract with query.py, which compiles query_dsl against it.
SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
  contact_id TEXT PRIMARY KEY, email TEXT UNIQUE, phone_number_id TEXT, external_id TEXT, anonymous_id TEXT,
  first_name TEXT, last_name TEXT, unique_name TEXT,
  alternate_emails TEXT NOT NULL DEFAULT '[]',
  address_line_1 TEXT, address_line_2 TEXT, city TEXT, state_province_region TEXT, postal_code TEXT,
  country TEXT,
  phone_number TEXT, whatsapp TEXT, line TEXT, facebook TEXT,
  list_ids TEXT NOT NULL DEFAULT '[]',
  email_domains TEXT NOT NULL DEFAULT '[]',
  custom_fields TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  event_id INTEGER PRIMARY KEY, contact_id TEXT NOT NULL, event_source TEXT NOT NULL DEFAULT 'mail',
  event_type TEXT NOT NULL, event_timestamp TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_by_contact ON events (contact_id, event_type);
CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type, event_timestamp);
CREATE TABLE IF NOT EXISTS lists (
  list_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS custom_fields (name TEXT PRIMARY KEY, field_type TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
  segment_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, query_dsl TEXT NOT NULL,
  parent_list_ids TEXT NOT NULL DEFAULT '[]',
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  uses_events INTEGER NOT NULL, validation TEXT NOT NULL, error_message TEXT, validated_at TEXT NOT NULL,
  contacts_count INTEGER NOT NULL DEFAULT 0, contacts_sample TEXT NOT NULL DEFAULT '[]', sample_hash TEXT,
  sample_updated_at TEXT NOT NULL, next_sample_update TEXT NOT NULL, next_check_at TEXT NOT NULL,
  sample_interval REAL NOT NULL DEFAULT 0, pending_refresh_at TEXT, user_time_zone TEXT
);
CREATE TABLE IF NOT EXISTS refreshes (
  job_id TEXT PRIMARY KEY, segment_id TEXT NOT NULL, refreshed_at TEXT NOT NULL, user_time_zone TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refreshes_by_time ON refreshes (refreshed_at);
CREATE TABLE IF NOT EXISTS single_sends (
  single_send_id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sends (
  send_id INTEGER PRIMARY KEY, single_send_id TEXT NOT NULL, name TEXT NOT NULL, scheduled_at TEXT NOT NULL,
  send_at TEXT NOT NULL, status TEXT NOT NULL, triggered_at TEXT, recipient_count INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

TABLES = (
    "contacts",
    "events",
    "lists",
    "custom_fields",
    "segments",
    "refreshes",
    "single_sends",
    "sends",
    "meta",
)
# What a reset that keeps contacts keeps: the contacts and everything that describes them.
CONTACT_TABLES = ("contacts", "events", "lists", "custom_fields")

# Contact columns a client may set (besides email and custom_fields), all plain strings.
CONTACT_TEXT_FIELDS = (
    "phone_number_id",
    "external_id",
    "anonymous_id",
    "first_name",
    "last_name",
    "unique_name",
    "address_line_1",
    "address_line_2",
    "city",
    "state_province_region",
    "postal_code",
    "country",
    "phone_number",
    "whatsapp",
    "line",
    "facebook",
)
CONTACT_COLUMNS = (
    "contact_id",
    "email",
    *CONTACT_TEXT_FIELDS,
    "alternate_emails",
    "list_ids",
    "email_domains",
    "custom_fields",
    "created_at",
    "updated_at",
)
_INSERT_CONTACT = (
    f"INSERT INTO contacts ({', '.join(CONTACT_COLUMNS)}) VALUES ({', '.join('?' for _ in CONTACT_COLUMNS)})"
)
_REPLACE_CONTACT = _INSERT_CONTACT.replace("INSERT INTO", "INSERT OR REPLACE INTO", 1)
_LOOKUP_CHUNK = 500


def new_id() -> str:
    return str(uuid.uuid4())


def new_ids(count: int) -> list[str]:
    """``count`` random version-4 UUIDs, made in bulk (seeding 100k contacts must be fast)."""
    digits = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        h = digits[start : start + 32]
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}")
    return ids


def email_domains(email: str | None) -> list[str]:
    if not email or "@" not in email:
        return []
    return [email.rsplit("@", 1)[1]]


def _field_type(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "Text"
    return "Number"


def _text_fields(contact: dict[str, Any]) -> list[str | None]:
    return [None if (value := contact.get(field)) is None else str(value) for field in CONTACT_TEXT_FIELDS]


def _json_list(items: Sequence[str]) -> str:
    return json.dumps(list(dict.fromkeys(items))) if items else "[]"


@functools.lru_cache(maxsize=4096)
def _domains_json(email: str) -> str:
    return json.dumps(email_domains(email))


def _new_row(
    email: str, contact: dict[str, Any], list_ids: Sequence[str], now: str, trusted: bool, fresh_id: str
) -> tuple[Any, ...]:
    """Column values (CONTACT_COLUMNS order) for a contact seen for the first time."""
    alternate = contact.get("alternate_emails")
    custom = contact.get("custom_fields")
    return (
        (trusted and contact.get("contact_id")) or fresh_id,
        email,
        *_text_fields(contact),
        json.dumps([str(item).lower() for item in alternate]) if alternate else "[]",
        _json_list([*list_ids, *(contact.get("list_ids") or [])]),
        _domains_json(email),
        json.dumps(custom) if custom else "{}",
        (trusted and contact.get("created_at")) or now,
        (trusted and contact.get("updated_at")) or now,
    )


def _merged_row(
    email: str, contact: dict[str, Any], old: sqlite3.Row, list_ids: Sequence[str], now: str, trusted: bool
) -> tuple[Any, ...]:
    """Column values for an existing contact: given fields overwrite, lists and custom fields merge."""
    texts = [
        old[field] if value is None else value
        for field, value in zip(CONTACT_TEXT_FIELDS, _text_fields(contact), strict=True)
    ]
    alternate = contact.get("alternate_emails")
    custom = json.loads(old["custom_fields"])
    custom.update(contact.get("custom_fields") or {})
    return (
        old["contact_id"],
        email,
        *texts,
        json.dumps([str(item).lower() for item in alternate])
        if alternate is not None
        else old["alternate_emails"],
        _json_list([*json.loads(old["list_ids"]), *list_ids, *(contact.get("list_ids") or [])]),
        _domains_json(email),
        json.dumps(custom),
        old["created_at"],
        (trusted and contact.get("updated_at")) or now,
    )


class Store:
    def __init__(self, db_path: str | None) -> None:
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(db_path or ":memory:", check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        if db_path:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def wipe(self, keep: Sequence[str] = ()) -> None:
        """Empty every table except those named in ``keep``."""
        with self.transaction() as conn:
            for table in TABLES:
                if table not in keep:
                    conn.execute(f"DELETE FROM {table}")

    # -- metadata -------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- lists ----------------------------------------------------------------------------
    def create_list(self, name: str, now: str) -> dict[str, Any]:
        list_id = new_id()
        with self.lock:
            self.conn.execute(
                "INSERT INTO lists (list_id, name, created_at) VALUES (?, ?, ?)", (list_id, name, now)
            )
        return {"list_id": list_id, "name": name, "created_at": now}

    def lists(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.conn.execute("SELECT * FROM lists ORDER BY created_at, rowid").fetchall()
        return [dict(row) for row in rows]

    def missing_lists(self, list_ids: Iterable[str]) -> list[str]:
        wanted = list(dict.fromkeys(list_ids))
        with self.lock:
            known = {row["list_id"] for row in self.conn.execute("SELECT list_id FROM lists")}
        return [list_id for list_id in wanted if list_id not in known]

    def list_contact_count(self, list_id: str) -> int:
        with self.lock:
            row = self.conn.execute(
                "SELECT COUNT(*) FROM contacts, json_each(contacts.list_ids) AS l WHERE l.value = ?",
                (list_id,),
            ).fetchone()
        return int(row[0])

    # -- contacts -------------------------------------------------------------------------
    def custom_field_names(self) -> list[str]:
        with self.lock:
            return [row["name"] for row in self.conn.execute("SELECT name FROM custom_fields ORDER BY name")]

    def upsert_contacts(
        self, contacts: Sequence[dict[str, Any]], list_ids: Sequence[str], now: str, *, trusted: bool = False
    ) -> int:
        """Insert or update contacts keyed by lower-cased email; returns how many were written.

        Provided fields overwrite, missing ones are kept; ``list_ids`` are added to each contact.
        ``trusted`` (admin seeding) also honours ``contact_id``, ``created_at`` and ``updated_at``.
        """
        by_email: dict[str, dict[str, Any]] = {}
        for contact in contacts:
            by_email[str(contact["email"]).strip().lower()] = contact
        with self.transaction() as conn:
            existing = self._contacts_by_email(conn, list(by_email))
            fresh_ids = iter(new_ids(len(by_email) - len(existing)))
            new_rows, changed_rows = [], []
            field_types: dict[str, str] = {}
            for email, contact in by_email.items():
                old = existing.get(email)
                if old is None:
                    new_rows.append(_new_row(email, contact, list_ids, now, trusted, next(fresh_ids)))
                else:
                    changed_rows.append(_merged_row(email, contact, old, list_ids, now, trusted))
                for name, value in (contact.get("custom_fields") or {}).items():
                    field_types.setdefault(str(name), _field_type(value))
            try:
                conn.executemany(_INSERT_CONTACT, new_rows)
            except sqlite3.IntegrityError as error:
                raise ValueError(f"a contact_id is already used by another contact ({error})") from error
            conn.executemany(_REPLACE_CONTACT, changed_rows)
            conn.executemany(
                "INSERT OR IGNORE INTO custom_fields (name, field_type) VALUES (?, ?)", field_types.items()
            )
        return len(by_email)

    @staticmethod
    def _contacts_by_email(conn: sqlite3.Connection, emails: list[str]) -> dict[str, sqlite3.Row]:
        found: dict[str, sqlite3.Row] = {}
        if conn.execute("SELECT 1 FROM contacts LIMIT 1").fetchone() is None:
            return found
        for start in range(0, len(emails), _LOOKUP_CHUNK):
            chunk = emails[start : start + _LOOKUP_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for row in conn.execute(f"SELECT * FROM contacts WHERE email IN ({marks})", chunk):
                found[row["email"]] = row
        return found

    def contact_count(self) -> int:
        with self.lock:
            return int(self.conn.execute("SELECT COUNT(*) FROM contacts").fetchone()[0])

    def contacts_by_email(self, emails: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {
                email: dict(row) for email, row in self._contacts_by_email(self.conn, list(emails)).items()
            }

    def contacts_by_id(self, contact_ids: Sequence[str]) -> list[dict[str, Any]]:
        if not contact_ids:
            return []
        marks = ", ".join("?" for _ in contact_ids)
        with self.lock:
            rows = self.conn.execute(
                f"SELECT * FROM contacts WHERE contact_id IN ({marks}) ORDER BY contact_id", list(contact_ids)
            ).fetchall()
        return [dict(row) for row in rows]

    def delete_contacts(self, contact_ids: Sequence[str] | None) -> int:
        """Delete the given contacts (None = all) and their events; returns how many were deleted."""
        with self.transaction() as conn:
            if contact_ids is None:
                deleted = conn.execute("DELETE FROM contacts").rowcount
                conn.execute("DELETE FROM events")
                return int(deleted)
            ids = [(contact_id,) for contact_id in contact_ids]
            before = conn.total_changes
            conn.executemany("DELETE FROM contacts WHERE contact_id = ?", ids)
            deleted = conn.total_changes - before
            conn.executemany("DELETE FROM events WHERE contact_id = ?", ids)
            return deleted

    def contact_ids_in_lists(self, list_ids: Sequence[str]) -> set[str]:
        if not list_ids:
            return set()
        marks = ", ".join("?" for _ in list_ids)
        with self.lock:
            rows = self.conn.execute(
                f"SELECT DISTINCT c.contact_id FROM contacts AS c, json_each(c.list_ids) AS l "
                f"WHERE l.value IN ({marks})",
                list(list_ids),
            )
            return {row[0] for row in rows}

    def all_contact_ids(self) -> set[str]:
        with self.lock:
            return {row[0] for row in self.conn.execute("SELECT contact_id FROM contacts")}

    # -- events ---------------------------------------------------------------------------
    def add_events(self, events: Sequence[dict[str, Any]], now: str) -> int:
        """Insert engagement events; each names its contact by ``contact_id`` or ``email``."""
        emails = [str(event["email"]).lower() for event in events if not event.get("contact_id")]
        with self.transaction() as conn:
            ids_by_email = {
                email: row["contact_id"] for email, row in self._contacts_by_email(conn, emails).items()
            }
            rows = []
            for index, event in enumerate(events):
                contact_id = event.get("contact_id") or ids_by_email.get(str(event.get("email", "")).lower())
                if not contact_id:
                    raise ValueError(f"events[{index}]: no contact with email {event.get('email')!r}")
                rows.append(
                    (
                        contact_id,
                        event.get("event_source", "mail"),
                        event["event_type"],
                        event.get("event_timestamp") or now,
                        json.dumps(event.get("data") or {}),
                    )
                )
            conn.executemany(
                "INSERT INTO events (contact_id, event_source, event_type, event_timestamp, data) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)
