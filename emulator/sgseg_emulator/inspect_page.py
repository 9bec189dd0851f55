"""``GET /__emulator__/inspect``: a read-only HTML page for a person (no JavaScript, no API key).

It lists what a DAG left in the emulator: segments (name, id, contacts count, sample times,
query), the contacts count, contacts jobs (upserts, imports, deletes, exports, with status),
Single Sends (status, ``send_at``, recipients) and the most recent API requests (method, path,
status; the log never holds a header, so never the key). ``?segment_id=``, ``?single_send_id=``
or ``?job_id=`` puts that object at the top and marks its row: the provider's extra links for an
emulator connection point here. A browser sends no bearer key, so the page needs none; it shows
no contact data, only counts.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from .clock import to_iso
from .errors import ApiError, bad_request
from .routing import emulator_of
from .state import Emulator

PATH = "/__emulator__/inspect"
MAX_ROWS = 200  # per table, newest first: a page a person can read
MAX_REQUESTS = 50
# The objects a link can ask for: query parameter -> the section (and anchor prefix) it names.
SELECTORS = {"segment_id": "segment", "single_send_id": "single-send", "job_id": "job"}
HEADERS = {
    # Nothing runs on this page: no script, no outside resource, no framing.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f3f3f3}
tr.selected td{background:#fff3b0}
code{font-size:.85rem;white-space:pre-wrap}
.missing{color:#a00}
"""

router = APIRouter(prefix="/__emulator__")


@dataclass(frozen=True)
class Selection:
    """The object a link asked for: its kind (a ``SELECTORS`` value) and id."""

    kind: str
    object_id: str

    @property
    def anchor(self) -> str:
        return f"{self.kind}-{self.object_id}"


@router.get("/inspect", response_class=HTMLResponse)
def inspect(request: Request) -> HTMLResponse:
    """The page; 404 (still a page, saying so) when the object a query parameter names is unknown."""
    emulator = emulator_of(request)
    selection = _selection(dict(request.query_params))
    segments = _segments(emulator)
    jobs = _jobs(emulator)
    single_sends = _single_sends(emulator)
    found_ids = {
        "segment": {row["id"] for row in segments},
        "job": {row["id"] for row in jobs},
        "single-send": {row["id"] for row in single_sends},
    }
    found = selection is None or selection.object_id in found_ids[selection.kind]
    body = "".join(
        [
            f"<h1>SendGrid emulator</h1><p>Clock: {_text(to_iso(emulator.now()))} ({emulator.clock.mode}). "
            f"Contacts: {emulator.store.contact_count()}. "
            "Read-only; reload the page to see later state.</p>",
            _selected(selection, found),
            _table(
                "Segments",
                "segment",
                ["name", "id", "contacts", "sample updated", "next sample", "refreshes", "status", "query"],
                [(row["id"], _segment_cells(row)) for row in segments],
                selection,
            ),
            _table(
                "Contacts jobs",
                "job",
                ["kind", "id", "status", "started", "finished", "counts"],
                [(row["id"], _job_cells(row)) for row in jobs],
                selection,
            ),
            _table(
                "Single Sends",
                "single-send",
                ["name", "id", "status", "send_at", "recipients"],
                [(row["id"], _single_send_cells(row)) for row in single_sends],
                selection,
            ),
            _table(
                f"Recent requests (last {MAX_REQUESTS}, newest first)",
                "request",
                ["time", "method", "path", "status", "fault"],
                [("", _request_cells(entry)) for entry in _recent_requests(emulator)],
                None,
            ),
        ]
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>SendGrid emulator</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(page, status_code=200 if found else 404, headers=HEADERS)


def _selection(query: dict[str, str]) -> Selection | None:
    chosen = [(name, value) for name, value in query.items() if name in SELECTORS and value]
    if len(chosen) > 1:
        names = ", ".join(name for name, _ in chosen)
        raise bad_request(f"give at most one of {names}", names)
    if not chosen:
        return None
    name, value = chosen[0]
    return Selection(SELECTORS[name], value)


def _segments(emulator: Emulator) -> list[dict[str, Any]]:
    """The newest ``MAX_ROWS`` segments, newest first, as Get Segment answers them (no sample)."""
    segments = []
    for summary in reversed(emulator.segments.summaries([], [], False)[-MAX_ROWS:]):
        try:
            segments.append(emulator.segments.get(summary["id"], include_sample=False))
        except ApiError:  # deleted since the list was read
            continue
    return segments


def _jobs(emulator: Emulator) -> list[dict[str, Any]]:
    """Upserts, imports, deletes and exports, newest first, in their API shapes plus ``kind``."""
    with emulator.store.lock:
        conn = emulator.store.conn
        rows = conn.execute(
            "SELECT job_id AS id, job_type AS kind, started_at AS at FROM contact_jobs "
            "UNION ALL SELECT export_id, 'export', created_at FROM exports ORDER BY at DESC LIMIT ?",
            (MAX_ROWS,),
        ).fetchall()
    jobs = []
    for job_id, kind, _ in rows:
        view = (
            emulator.exports.view(job_id, "") if kind == "export" else emulator.contact_jobs.view(job_id, "")
        )
        if view is not None:
            jobs.append({**view, "kind": kind})
    return jobs


def _single_sends(emulator: Emulator) -> list[dict[str, Any]]:
    _, total = emulator.single_sends.page(0, 0)
    items, _ = emulator.single_sends.page(MAX_ROWS, max(0, total - MAX_ROWS))  # the newest
    recipients = {
        send["single_send_id"]: send["recipient_count"] for send in emulator.single_sends.deliveries()
    }
    return [{**item, "recipients": recipients.get(item["id"])} for item in reversed(items)]


def _recent_requests(emulator: Emulator) -> list[dict[str, Any]]:
    return list(reversed(emulator.logged_requests()[-MAX_REQUESTS:]))


def _segment_cells(segment: dict[str, Any]) -> list[str]:
    status = segment.get("status", {})
    validation = status.get("query_validation", "")
    if status.get("error_message"):
        validation += f": {status['error_message']}"
    return [
        _text(segment["name"]),
        _link("segment_id", segment["id"]),
        _text(segment["contacts_count"]),
        _text(segment.get("sample_updated_at")),
        _text(segment.get("next_sample_update")),
        _text(f"{segment.get('refreshes_used', 0)} of {segment.get('max_refreshes', 0)} today"),
        _text(validation),
        f"<code>{_text(segment.get('query_dsl'))}</code>",
    ]


def _job_cells(job: dict[str, Any]) -> list[str]:
    if job["kind"] == "export":
        counts = {"contact_count": job.get("contact_count"), "files": len(job.get("urls", []))}
        if job.get("message"):
            counts["message"] = job["message"]
        started, finished = job.get("created_at"), job.get("completed_at")
    else:
        counts = {name: value for name, value in job.get("results", {}).items() if name != "errors_url"}
        started, finished = job.get("started_at"), job.get("finished_at")
    return [
        _text(job["kind"]),
        _link("job_id", job["id"]),
        _text(job["status"]),
        _text(started),
        _text(finished),
        _text(", ".join(f"{name} {value}" for name, value in counts.items() if value is not None)),
    ]


def _single_send_cells(single_send: dict[str, Any]) -> list[str]:
    return [
        _text(single_send.get("name")),
        _link("single_send_id", single_send["id"]),
        _text(single_send.get("status")),
        _text(single_send.get("send_at")),
        _text(single_send.get("recipients")),
    ]


def _request_cells(entry: dict[str, Any]) -> list[str]:
    return [
        _text(entry.get("time")),
        _text(entry.get("method")),
        f"<code>{_text(entry.get('path'))}</code>",  # no query string: file-host URLs carry signatures
        _text(entry.get("status")),
        _text(entry.get("fault")),
    ]


def _selected(selection: Selection | None, found: bool) -> str:
    if selection is None:
        return ""
    name = selection.kind.replace("-", " ")
    if not found:
        return (
            f'<p class="missing">No {name} {_text(selection.object_id)} in this emulator '
            "(was it reset or restarted since?).</p>"
        )
    target = f'<a href="#{_attribute(selection.anchor)}">{name} {_text(selection.object_id)}</a>'
    return f"<p>Selected: {target} (marked below).</p>"


def _table(
    title: str,
    kind: str,
    columns: Sequence[str],
    rows: Iterable[tuple[str, list[str]]],
    selection: Selection | None,
) -> str:
    lines = [f"<h2>{_text(title)}</h2>"]
    body = []
    for object_id, cells in rows:
        selected = selection is not None and selection.kind == kind and selection.object_id == object_id
        attributes = f' id="{_attribute(f"{kind}-{object_id}")}"' if object_id else ""
        if selected:
            attributes += ' class="selected"'
        body.append(f"<tr{attributes}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    if not body:
        lines.append("<p>None.</p>")
        return "".join(lines)
    head = "".join(f"<th>{_text(column)}</th>" for column in columns)
    lines.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
    return "".join(lines)


def _link(parameter: str, object_id: str) -> str:
    kind = SELECTORS[parameter]
    href = f"inspect?{parameter}={quote(object_id, safe='')}#{kind}-{object_id}"
    return f'<a href="{_attribute(href)}"><code>{_text(object_id)}</code></a>'


def _text(value: Any) -> str:
    if value is None:
        return ""
    return html.escape(
        value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, dict | list)
        else str(value)
    )


def _attribute(value: str) -> str:
    return html.escape(value, quote=True)
