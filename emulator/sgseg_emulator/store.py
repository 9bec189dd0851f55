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
from dataclasses import dataclass, field
from typing import Any

from .contact_schema import COLUMN_NAMES, IDENTIFIERS, TEXT_FIELDS, contacts_ddl

# The events DDL (with contact_schema's contacts) is the contract with the query compiler.
SCHEMA = (
    contacts_ddl()
    + """
CREATE TABLE IF NOT EXISTS events (
  event_id INTEGER PRIMARY KEY, contact_id TEXT NOT NULL, event_source TEXT NOT NULL DEFAULT 'mail',
  event_type TEXT NOT NULL, event_timestamp TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_by_contact ON events (contact_id, event_type);
CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type, event_timestamp);
CREATE TABLE IF NOT EXISTS lists (
  list_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS custom_fields (
  field_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, field_type TEXT NOT NULL,
  seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS contact_jobs (
  job_id TEXT PRIMARY KEY, job_type TEXT NOT NULL, status TEXT NOT NULL, source TEXT NOT NULL,
  list_ids TEXT NOT NULL DEFAULT '[]', field_mappings TEXT, payload TEXT,
  started_at TEXT NOT NULL, due_at TEXT, finished_at TEXT, upload_expires_at TEXT, message TEXT,
  requested_count INTEGER NOT NULL DEFAULT 0, created_count INTEGER NOT NULL DEFAULT 0,
  updated_count INTEGER NOT NULL DEFAULT 0, deleted_count INTEGER NOT NULL DEFAULT 0,
  errored_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS contact_jobs_due ON contact_jobs (status, due_at);
CREATE TABLE IF NOT EXISTS contact_job_errors (
  job_id TEXT NOT NULL, row_number INTEGER NOT NULL, identifier TEXT NOT NULL, message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS contact_job_errors_by_job ON contact_job_errors (job_id, row_number);
CREATE TABLE IF NOT EXISTS exports (
  export_id TEXT PRIMARY KEY, status TEXT NOT NULL, file_type TEXT NOT NULL, max_file_size INTEGER NOT NULL,
  segment_ids TEXT NOT NULL, list_ids TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  due_at TEXT NOT NULL, completed_at TEXT, expires_at TEXT NOT NULL, contact_count INTEGER, message TEXT,
  files TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS export_members (
  export_id TEXT NOT NULL, contact_id TEXT NOT NULL, PRIMARY KEY (export_id, contact_id)
) WITHOUT ROWID;
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
)

TABLES = (
    "contacts",
    "events",
    "lists",
    "custom_fields",
    "contact_jobs",
    "contact_job_errors",
    "exports",
    "export_members",
    "segments",
    "refreshes",
    "single_sends",
    "sends",
    "meta",
)
# What a reset that keeps contacts keeps: the contacts and everything that describes them.
CONTACT_TABLES = ("contacts", "events", "lists", "custom_fields")
CONTACT_META_KEYS = ("custom_field_seq",)  # kept with them: custom field ids are never reused

# Contact columns a client may set as plain strings (email, lower-cased, is set apart).
CONTACT_TEXT_FIELDS = tuple(name for name in TEXT_FIELDS if name != "email")
CONTACT_COLUMNS = COLUMN_NAMES
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


@dataclass
class UpsertResult:
    """Per-row outcome counts; ``errors`` holds (index in the given contacts, identifier, message)."""

    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)


def identifiers_of(contact: dict[str, Any]) -> dict[str, str]:
    """The identifiers a contact gives, emails lower-cased as SendGrid stores them."""
    found = {}
    for kind in IDENTIFIERS:
        value = contact.get(kind)
        if value is not None and str(value).strip():
            found[kind] = str(value).strip().lower() if kind == "email" else str(value)
    return found


def _json_list(items: Sequence[str]) -> str:
    return json.dumps(list(dict.fromkeys(items))) if items else "[]"


@functools.lru_cache(maxsize=4096)
def _domains_json(email: str | None) -> str:
    return json.dumps(email_domains(email))


def _new_row(
    contact: dict[str, Any], list_ids: Sequence[str], now: str, trusted: bool, fresh_id: str
) -> dict[str, Any]:
    """Column values for a contact seen for the first time."""
    alternate = contact.get("alternate_emails")
    custom = contact.get("custom_fields")
    email = identifiers_of(contact).get("email")
    row: dict[str, Any] = {"contact_id": (trusted and contact.get("contact_id")) or fresh_id, "email": email}
    for name in CONTACT_TEXT_FIELDS:
        value = contact.get(name)
        row[name] = None if value is None else str(value)
    row.update(
        alternate_emails=json.dumps([str(item).lower() for item in alternate]) if alternate else "[]",
        list_ids=_json_list([*list_ids, *(contact.get("list_ids") or [])]),
        email_domains=_domains_json(email),
        custom_fields=json.dumps(custom) if custom else "{}",
        created_at=(trusted and contact.get("created_at")) or now,
        updated_at=(trusted and contact.get("updated_at")) or now,
    )
    return row


def _merge(
    row: dict[str, Any], contact: dict[str, Any], list_ids: Sequence[str], now: str, trusted: bool
) -> None:
    """Update an existing contact's columns: given fields overwrite, lists and custom fields merge."""
    email = identifiers_of(contact).get("email")
    if email is not None:
        row["email"], row["email_domains"] = email, _domains_json(email)
    for name in CONTACT_TEXT_FIELDS:
        value = contact.get(name)
        if value is not None:
            row[name] = str(value)
    alternate = contact.get("alternate_emails")
    if alternate is not None:
        row["alternate_emails"] = json.dumps([str(item).lower() for item in alternate])
    row["list_ids"] = _json_list([*json.loads(row["list_ids"]), *list_ids, *(contact.get("list_ids") or [])])
    if contact.get("custom_fields"):
        custom = json.loads(row["custom_fields"])
        custom.update(contact["custom_fields"])
        row["custom_fields"] = json.dumps(custom)
    row["updated_at"] = (trusted and contact.get("updated_at")) or now


def _identity_problem(row: dict[str, Any], given: dict[str, str]) -> str | None:
    """Why a row may not update ``row`` (SendGrid: "In order to update a contact, all of its
    existing identifiers must be present")."""
    for kind in IDENTIFIERS:
        if row[kind] and given.get(kind) != row[kind]:
            return f"the contact has {kind} {row[kind]!r}: all of its existing identifiers must be present"
    return None


class Store:
    """The emulator's SQLite database: one connection; hold ``lock`` across a check and the
    write it guards."""

    def __init__(self, db_path: str | None) -> None:
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(db_path or ":memory:", check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        if db_path:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``with store.transaction() as conn:`` one transaction under the lock, rolled back on error."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def wipe(self, keep_contacts: bool = False) -> None:
        """Empty every table; ``keep_contacts`` keeps CONTACT_TABLES and CONTACT_META_KEYS."""
        with self.transaction() as conn:
            for table in TABLES:
                if not keep_contacts:
                    conn.execute(f"DELETE FROM {table}")
                elif table == "meta":
                    marks = ", ".join("?" * len(CONTACT_META_KEYS))
                    conn.execute(f"DELETE FROM meta WHERE key NOT IN ({marks})", CONTACT_META_KEYS)
                elif table not in CONTACT_TABLES:
                    conn.execute(f"DELETE FROM {table}")

    # -- metadata -------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """The stored value for ``key`` (None: unset)."""
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        with self.lock:
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- delayed work -----------------------------------------------------------------------
    def has_pending_work(self) -> bool:
        """Whether a contact job or export is still pending (e.g. left by an earlier run on a db file)."""
        with self.lock:
            row = self.conn.execute(
                "SELECT 1 FROM contact_jobs WHERE status = 'pending'"
                " UNION ALL SELECT 1 FROM exports WHERE status = 'pending' LIMIT 1"
            ).fetchone()
        return row is not None

    def next_due(self, table: str, now: str, columns: str = "*") -> sqlite3.Row | None:
        """The oldest ``pending`` row of ``table`` (contact_jobs, exports) due by ``now``."""
        with self.lock:
            row: sqlite3.Row | None = self.conn.execute(
                f"SELECT {columns} FROM {table} WHERE status = 'pending' AND due_at <= ?"
                " ORDER BY due_at, rowid LIMIT 1",
                (now,),
            ).fetchone()
        return row

    # -- lists ----------------------------------------------------------------------------
    def create_list(self, name: str, now: str) -> dict[str, Any]:
        """A new list named ``name``, created at ``now`` (ISO): ``{list_id, name, created_at}``."""
        list_id = new_id()
        with self.lock:
            self.conn.execute(
                "INSERT INTO lists (list_id, name, created_at) VALUES (?, ?, ?)", (list_id, name, now)
            )
        return {"list_id": list_id, "name": name, "created_at": now}

    def lists(self) -> list[dict[str, Any]]:
        """Every list, oldest first, as stored rows."""
        with self.lock:
            rows = self.conn.execute("SELECT * FROM lists ORDER BY created_at, rowid").fetchall()
        return [dict(row) for row in rows]

    def missing_lists(self, list_ids: Iterable[str]) -> list[str]:
        """Those of ``list_ids`` that do not exist, in the given order."""
        wanted = list(dict.fromkeys(list_ids))
        with self.lock:
            known = {row["list_id"] for row in self.conn.execute("SELECT list_id FROM lists")}
        return [list_id for list_id in wanted if list_id not in known]

    def list_contact_count(self, list_id: str) -> int:
        """How many contacts are in list ``list_id``."""
        with self.lock:
            row = self.conn.execute(
                "SELECT COUNT(*) FROM contacts, json_each(contacts.list_ids) AS l WHERE l.value = ?",
                (list_id,),
            ).fetchone()
        return int(row[0])

    # -- contacts -------------------------------------------------------------------------
    def upsert_contacts(
        self, contacts: Sequence[dict[str, Any]], list_ids: Sequence[str], now: str, *, trusted: bool = False
    ) -> UpsertResult:
        """Insert or update contacts keyed by their identifiers, in one transaction.

        A contact matches the stored contact that has any of its identifiers (emails compared
        lower-cased); later rows of the batch see earlier ones. Provided fields overwrite, missing
        ones are kept; ``list_ids`` are added to each contact. Rows whose identifiers belong to two
        contacts, or (unless ``trusted``) that omit an identifier the contact has, are not written
        but reported in ``errors``. ``trusted`` (admin seeding) also honours ``contact_id``,
        ``created_at`` and ``updated_at``.
        """
        result = UpsertResult()
        given = [identifiers_of(contact) for contact in contacts]
        with self.transaction() as conn:
            touched, owner = self._contacts_by_identifiers(conn, given)
            fresh_ids = iter(new_ids(len(contacts)))
            new_contact_ids: set[str] = set()
            changed_ids: set[str] = set()
            for index, (contact, identifiers) in enumerate(zip(contacts, given, strict=True)):
                label = next(iter(identifiers.values()), "")
                owners = {owner[pair] for pair in identifiers.items() if pair in owner}
                if not identifiers:
                    result.errors.append((index, label, "the contact has no identifier"))
                    continue
                if len(owners) > 1:
                    result.errors.append((index, label, "its identifiers belong to different contacts"))
                    continue
                if owners:
                    contact_id = owners.pop()
                    row = touched[contact_id]
                    problem = None if trusted else _identity_problem(row, identifiers)
                    if problem is not None:
                        result.errors.append((index, label, problem))
                        continue
                    _merge(row, contact, list_ids, now, trusted)
                    changed_ids.add(contact_id)
                    result.updated += 1
                else:
                    row = _new_row(contact, list_ids, now, trusted, next(fresh_ids))
                    contact_id = row["contact_id"]
                    touched[contact_id] = row
                    new_contact_ids.add(contact_id)
                    result.created += 1
                for pair in identifiers.items():
                    owner[pair] = contact_id
            inserts = [tuple(touched[cid][c] for c in CONTACT_COLUMNS) for cid in new_contact_ids]
            updates = [
                tuple(touched[cid][c] for c in CONTACT_COLUMNS) for cid in changed_ids - new_contact_ids
            ]
            try:
                conn.executemany(_INSERT_CONTACT, inserts)
            except sqlite3.IntegrityError as error:
                raise ValueError(f"a contact_id is already used by another contact ({error})") from error
            conn.executemany(_REPLACE_CONTACT, updates)
        return result

    @staticmethod
    def _contacts_by_identifiers(
        conn: sqlite3.Connection, given: Sequence[dict[str, str]]
    ) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], str]]:
        """Stored contacts having any of the ``given`` identifiers: (rows by contact_id, owners)."""
        rows: dict[str, dict[str, Any]] = {}
        owner: dict[tuple[str, str], str] = {}
        if conn.execute("SELECT 1 FROM contacts LIMIT 1").fetchone() is None:
            return rows, owner
        for kind in IDENTIFIERS:
            values = list({identifiers[kind] for identifiers in given if kind in identifiers})
            for value, found in Store._contacts_by(conn, kind, values).items():
                rows.setdefault(found["contact_id"], dict(found))
                owner[(kind, value)] = found["contact_id"]
        return rows, owner

    @staticmethod
    def _contacts_by(conn: sqlite3.Connection, kind: str, values: list[str]) -> dict[str, sqlite3.Row]:
        """Stored contacts whose identifier ``kind`` (a column in IDENTIFIERS) is one of ``values``."""
        if kind not in IDENTIFIERS:
            raise ValueError(f"not an identifier: {kind!r}")
        found: dict[str, sqlite3.Row] = {}
        for start in range(0, len(values), _LOOKUP_CHUNK):
            chunk = values[start : start + _LOOKUP_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for row in conn.execute(f"SELECT * FROM contacts WHERE {kind} IN ({marks})", chunk):
                found[row[kind]] = row
        return found

    def contact_count(self) -> int:
        """How many contacts there are."""
        with self.lock:
            return int(self.conn.execute("SELECT COUNT(*) FROM contacts").fetchone()[0])

    def contacts_by_identifier(self, kind: str, values: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored contacts whose identifier ``kind`` (email, phone_number_id, external_id, anonymous_id) is
        one of ``values``, by value."""
        with self.lock:
            return {
                value: dict(row) for value, row in self._contacts_by(self.conn, kind, list(values)).items()
            }

    def contacts_by_id(self, contact_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Stored contacts with the given ids, ordered by id."""
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
        """Ids of the contacts in any of ``list_ids``."""
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
        """Ids of every contact."""
        with self.lock:
            return {row[0] for row in self.conn.execute("SELECT contact_id FROM contacts")}

    # -- events ---------------------------------------------------------------------------
    def add_events(self, events: Sequence[dict[str, Any]], now: str) -> int:
        """Insert engagement events; each names its contact by ``contact_id`` or ``email``."""
        emails = [str(event["email"]).lower() for event in events if not event.get("contact_id")]
        with self.transaction() as conn:
            ids_by_email = {
                email: row["contact_id"] for email, row in self._contacts_by(conn, "email", emails).items()
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
