"""Contact exports: the exact members of segments and/or lists, written to files the emulator serves.

An export is ``pending`` for ``export_delay`` seconds. Then its membership is taken in SQL
(``export_members``), its files are written ``CHUNK_ROWS`` contacts at a time, split so that no
file exceeds ``max_file_size`` MB, and it is ``ready`` until ``expires_at`` (``export_expiry``
after completion). A segment that is gone or whose query is invalid by then ends it in
``failure`` with a message. With neither ``segment_ids`` nor ``list_ids`` every contact is
exported, as SendGrid does.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .clock import parse_iso, to_iso
from .field_definitions import RESERVED_FIELDS, FieldDefinitions
from .store import CONTACT_COLUMNS, new_id

if TYPE_CHECKING:
    import sqlite3

    from .clock import Clock
    from .config import ConfigSource
    from .file_store import FileStore
    from .membership import Membership
    from .store import Store

CHUNK_ROWS = 5_000
BYTES_PER_MB = 1024 * 1024  # max_file_size is in MB; binary megabytes (INFERRED)
# Columns of a CSV export: the reserved fields upper-cased (INFERRED from SendGrid's export
# files), then the custom fields by name. JSON exports are one object per line, keys lower-case.
_COLUMNS = tuple(field.name for field in RESERVED_FIELDS)
_JSON_LISTS = ("alternate_emails", "email_domains")


class ExportFailure(Exception):
    """The export cannot be built; its message becomes the export's ``message``."""


def export_url(base_url: str, export_id: str) -> str:
    return f"{base_url.rstrip('/')}/v3/marketing/contacts/exports/{export_id}"


def export_file_name(export_id: str, number: int, file_type: str) -> str:
    return f"exports/{export_id}_{number}.{file_type}"


def _values(contact: sqlite3.Row, custom_ids: list[str]) -> tuple[list[Any], dict[str, Any]]:
    """(reserved field values in ``_COLUMNS`` order, custom values by field id) of one contact."""
    reserved: list[Any] = []
    for name in _COLUMNS:
        if name in _JSON_LISTS:
            reserved.append(json.loads(contact[name]))
        elif name in CONTACT_COLUMNS:
            reserved.append(contact[name])
        else:
            reserved.append(None)  # engagement fields (last_opened...) are not tracked per contact
    stored = json.loads(contact["custom_fields"])
    return reserved, {field_id: stored.get(field_id) for field_id in custom_ids}


class _FileWriter:
    """Writes encoded rows into numbered files of at most ``limit`` bytes (one row at least)."""

    def __init__(self, files: FileStore, export_id: str, file_type: str, limit: int, header: bytes) -> None:
        self.files = files
        self.export_id = export_id
        self.file_type = file_type
        self.limit = limit
        self.header = header
        self.names: list[str] = []
        self._file: io.BufferedWriter | None = None
        self._size = 0

    def write(self, line: bytes) -> None:
        if self._file is None or (self._size + len(line) > self.limit and self._size > len(self.header)):
            self._next_file()
        assert self._file is not None
        self._file.write(line)
        self._size += len(line)

    def _next_file(self) -> None:
        self.close()
        name = export_file_name(self.export_id, len(self.names) + 1, self.file_type)
        self.names.append(name)
        self._file = self.files.path(name).open("wb")
        self._file.write(self.header)
        self._size = len(self.header)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class Exports:
    """The ``exports`` table: contact exports of segments and lists, built when due."""

    store: Store
    clock: Clock
    config: ConfigSource
    files: FileStore
    membership: Membership

    def create(self, segment_ids: list[str], list_ids: list[str], file_type: str, max_file_size: int) -> str:
        """A pending export (ids already checked); returns its id."""
        export_id = new_id()
        now = self.clock.now()
        due = now + timedelta(seconds=self.config().export_delay)
        expires = due + timedelta(seconds=self.config().export_expiry)
        with self.store.lock:
            self.store.conn.execute(
                "INSERT INTO exports (export_id, status, file_type, max_file_size, segment_ids, list_ids,"
                " created_at, updated_at, due_at, expires_at) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    export_id,
                    file_type,
                    max_file_size,
                    json.dumps(segment_ids),
                    json.dumps(list_ids),
                    to_iso(now),
                    to_iso(now),
                    to_iso(due),
                    to_iso(expires),
                ),
            )
        return export_id

    # -- building ---------------------------------------------------------------------------
    def build(self, export: sqlite3.Row) -> None:
        """Build one due export (an ``exports`` row): ready with its files, or failure."""
        export_id = export["export_id"]
        now = self.clock.now()
        try:
            self._select_members(export, now)
            names, count = self._write_files(export)
        except ExportFailure as error:
            updates: dict[str, Any] = {"status": "failure", "message": str(error)}
        except Exception as error:  # an emulator bug: end the export, do not retry it forever
            updates = {"status": "failure", "message": f"emulator error: {type(error).__name__}: {error}"}
        else:
            expires = now + timedelta(seconds=self.config().export_expiry)
            updates = {
                "status": "ready",
                "files": json.dumps(names),
                "contact_count": count,
                "completed_at": to_iso(now),
                "expires_at": to_iso(expires),
            }
        updates["updated_at"] = to_iso(now)
        assignments = ", ".join(f"{column} = ?" for column in updates)
        with self.store.transaction() as conn:
            conn.execute(
                f"UPDATE exports SET {assignments} WHERE export_id = ?", [*updates.values(), export_id]
            )
            conn.execute("DELETE FROM export_members WHERE export_id = ?", (export_id,))

    def _select_members(self, export: sqlite3.Row, at: datetime) -> None:
        export_id = export["export_id"]
        segment_ids, list_ids = json.loads(export["segment_ids"]), json.loads(export["list_ids"])
        insert = (
            "INSERT OR IGNORE INTO export_members (export_id, contact_id) SELECT :export_id, contact_id FROM"
        )
        membership = self.membership
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM export_members WHERE export_id = ?", (export_id,))
            for segment_id in segment_ids:
                segment = conn.execute(
                    "SELECT * FROM segments WHERE segment_id = ?", (segment_id,)
                ).fetchone()
                if segment is None:
                    raise ExportFailure(f"segment {segment_id} does not exist")
                if segment["validation"] == "INVALID":
                    raise ExportFailure(
                        f"segment {segment_id} has an invalid query: {segment['error_message']}"
                    )
                sql, params = membership.members_query(segment, at)
                conn.execute(f"{insert} ({sql})", {**params, "export_id": export_id})
            for list_id in list_ids:
                if conn.execute("SELECT 1 FROM lists WHERE list_id = ?", (list_id,)).fetchone() is None:
                    raise ExportFailure(f"list {list_id} does not exist")
                conn.execute(
                    f"{insert} (SELECT c.contact_id FROM contacts AS c, json_each(c.list_ids) AS l"
                    " WHERE l.value = :list_id)",
                    {"export_id": export_id, "list_id": list_id},
                )
            if not segment_ids and not list_ids:
                conn.execute(f"{insert} contacts", {"export_id": export_id})

    def _write_files(self, export: sqlite3.Row) -> tuple[list[str], int]:
        export_id, file_type = export["export_id"], export["file_type"]
        custom = FieldDefinitions(self.store).custom()
        custom_ids = [field.id for field in custom]
        if file_type == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow([name.upper() for name in _COLUMNS] + [field.name for field in custom])
            header = buffer.getvalue().encode()
        else:
            header = b""
        limit = export["max_file_size"] * BYTES_PER_MB
        files = _FileWriter(self.files, export_id, file_type, limit, header)
        count, last = 0, ""
        try:
            while True:
                with self.store.lock:
                    rows = self.store.conn.execute(
                        "SELECT c.* FROM export_members AS m"
                        " JOIN contacts AS c ON c.contact_id = m.contact_id"
                        " WHERE m.export_id = ? AND m.contact_id > ? ORDER BY m.contact_id LIMIT ?",
                        (export_id, last, CHUNK_ROWS),
                    ).fetchall()
                if not rows:
                    break
                for contact in rows:
                    reserved, values = _values(contact, custom_ids)
                    if file_type == "csv":
                        buffer.seek(0)
                        buffer.truncate()
                        writer.writerow(
                            [",".join(v) if isinstance(v, list) else v for v in reserved]
                            + [values[field_id] for field_id in custom_ids]
                        )
                        line = buffer.getvalue()
                    else:
                        record = dict(zip(_COLUMNS, reserved, strict=True))
                        record["custom_fields"] = {
                            field.name: values[field.id] for field in custom if values[field.id] is not None
                        }
                        line = json.dumps(record) + "\n"
                    files.write(line.encode())
                count += len(rows)
                last = rows[-1]["contact_id"]
        finally:
            files.close()
        if not files.names:
            files.write(b"")  # an empty export is one file holding only the header
            files.close()
        return files.names, count

    # -- reading ----------------------------------------------------------------------------
    def _row(self, export_id: str) -> sqlite3.Row | None:
        with self.store.lock:
            row: sqlite3.Row | None = self.store.conn.execute(
                "SELECT * FROM exports WHERE export_id = ?", (export_id,)
            ).fetchone()
        return row

    def file_of(self, name: str) -> str | None:
        """The export file ``name`` if it belongs to an export that is ready (None otherwise)."""
        export_id = name.removeprefix("exports/").rsplit("_", 1)[0]
        row = self._row(export_id)
        return name if row is not None and name in json.loads(row["files"]) else None

    def view(self, export_id: str, base_url: str) -> dict[str, Any] | None:
        """The ``ContactExport`` shape (None: no such export). URLs are signed afresh on each read,
        valid for ``download_url_ttl`` but never past ``expires_at``."""
        row = self._row(export_id)
        if row is None:
            return None
        view: dict[str, Any] = {
            "id": export_id,
            "status": row["status"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "expires_at": row["expires_at"],
            "_metadata": {"self": export_url(base_url, export_id)},
        }
        if row["completed_at"]:
            view["completed_at"] = row["completed_at"]
        if row["status"] == "ready":
            now = self.clock.now()
            ttl = timedelta(seconds=self.config().download_url_ttl)
            until = min(now + ttl, parse_iso(row["expires_at"]))
            files = json.loads(row["files"])
            view["urls"] = [self.files.signed_url(base_url, "GET", name, until) for name in files]
            view["contact_count"] = row["contact_count"]
        if row["message"]:
            view["message"] = row["message"]
        return view

    def summaries(self, base_url: str) -> list[dict[str, Any]]:
        """Items of ``GET /v3/marketing/contacts/exports``, newest first."""
        with self.store.lock:
            conn = self.store.conn
            rows = conn.execute("SELECT * FROM exports ORDER BY created_at DESC, rowid DESC").fetchall()
            segment_names = dict(conn.execute("SELECT segment_id, name FROM segments").fetchall())
            list_names = dict(conn.execute("SELECT list_id, name FROM lists").fetchall())
        items = []
        for row in rows:
            item = self.view(row["export_id"], base_url) or {}
            segment_ids, list_ids = json.loads(row["segment_ids"]), json.loads(row["list_ids"])
            item.pop("updated_at", None)
            item.pop("contact_count", None)
            item.pop("message", None)
            item["export_type"] = (
                "segment_export" if segment_ids else "list_export" if list_ids else "contacts_export"
            )
            item["segments"] = [{"ID": sid, "Name": segment_names.get(sid, "")} for sid in segment_ids]
            item["lists"] = [{"ID": lid, "Name": list_names.get(lid, "")} for lid in list_ids]
            items.append(item)
        return items
