"""The one-line summary each task logs last: what it did, in words and numbers, with names and ids.

Pure: each function takes what the task already holds (its XCom result, the segment it read)
and returns the sentence. A task logs it as its last INFO line, also when it resumes from a
deferral, so a person reading the log sees the outcome without opening XCom.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import pendulum

from airflow_provider_sgseg.rules.instants import parse_instant

FIRST_FEW = 5  # row numbers, files or segments a summary names before "and N more"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 row``, ``1,234 rows`` (``plural`` when adding an s is wrong)."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def first_few(items: Sequence[Any], total: int | None = None, limit: int = FIRST_FEW) -> str:
    """The first ``limit`` items joined with commas, then ``and N more`` (``total``: how many there
    are in all when ``items`` holds only the first of them)."""
    total = len(items) if total is None else total
    shown = ", ".join(str(item) for item in items[:limit])
    more = total - min(len(items), limit)
    return f"{shown} and {more:,} more" if more > 0 else shown


def in_zones(moment: object, zone: str | None = None) -> str:
    """An instant in UTC and, when ``zone`` is another IANA zone, there too:
    ``2026-03-02T00:00:00+00:00 UTC (2026-03-02T01:00:00+01:00 Europe/Amsterdam)``."""
    instant = parse_instant(moment)
    if instant is None:
        return "unknown"
    utc = f"{instant.in_tz('UTC').isoformat()} UTC"
    if not zone or zone == "UTC":
        return utc
    return f"{utc} ({instant.in_tz(pendulum.timezone(zone)).isoformat()} {zone})"


def _segment(segment_id: object, name: object = None) -> str:
    return f"segment {name!r} ({segment_id})" if name else f"segment {segment_id}"


def _contacts(segment: Mapping[str, Any]) -> str:
    count = segment.get("contacts_count")
    sample = segment.get("sample_updated_at")
    counts = (
        counted(count, "contact") if isinstance(count, int) and not isinstance(count, bool) else "? contacts"
    )
    return f"{counts} (sample of {sample})" if sample else f"{counts} (no sample yet)"


def _validation(segment: Mapping[str, Any]) -> str:
    status = segment.get("status")
    state = status.get("query_validation") if isinstance(status, Mapping) else None
    return f"query validation {state or 'not reported'}"


# ------------------------------------------------------------------------------------ contacts


def upsert(result: Mapping[str, Any]) -> str:
    """The upsert operator's summary, from its XCom result."""
    read = int(result.get("rows_read") or 0)
    if read == 0:
        return "Upsert done: the source is empty: 0 rows read, nothing sent to SendGrid."
    refused = int(result.get("refused_rows") or 0)
    parts = [
        f"{counted(read, 'row')} read",
        f"{result.get('created_count', 0):,} created",
        f"{result.get('updated_count', 0):,} updated",
        f"{result.get('errored_count', 0):,} errored at SendGrid",
    ]
    refused_text = f"{refused:,} refused locally"
    if refused:
        rows = [entry.get("row") for entry in result.get("refused") or [] if isinstance(entry, Mapping)]
        refused_text += f" (row{'s' if refused > 1 else ''} {first_few(rows, refused)})"
    parts.append(refused_text)
    merged = int(result.get("merged_rows") or 0)
    if merged:
        parts.append(f"{counted(merged, 'row')} merged into an earlier row of the same contact")
    jobs = list(result.get("job_ids") or [])
    unit: tuple[str, str | None] = (
        ("import file", None) if result.get("method") == "import" else ("batch", "batches")
    )
    batches = counted(int(result.get("batches") or 0), *unit)
    reused = int(result.get("reused_batches") or 0)
    if reused:  # a retry: those parts went out in an earlier try, this one did not send them again
        batches += f", {reused:,} of them accepted in an earlier try and not sent again"
    how = f"sent as {batches} ({counted(len(jobs), 'job')}: {first_few(jobs)})" if jobs else "nothing sent"
    summary = f"Upsert done: {', '.join(parts)}; {how}."
    if result.get("rejected_rows_path"):
        summary += f" Rejected rows: {result['rejected_rows_path']}."
    return summary


def export(
    result: Mapping[str, Any], segment_ids: Sequence[str], list_ids: Sequence[str], destination: object
) -> str:
    """The export operator's summary, from its XCom result and what it exported where."""
    sources = [
        f"segments {', '.join(segment_ids)}" if segment_ids else "",
        f"lists {', '.join(list_ids)}" if list_ids else "",
    ]
    paths = list(result.get("paths") or [])
    names = [str(path).rsplit("/", 1)[-1] for path in paths]
    contact_count = result.get("contact_count")
    return (
        f"Export {result.get('export_id')} of {' and '.join(s for s in sources if s)} done: "
        f"{counted(int(result.get('row_count') or 0), 'row')} written "
        f"(SendGrid's contact_count {'unknown' if contact_count is None else f'{contact_count:,}'}) "
        f"in {counted(len(paths), str(result.get('file_type') or 'csv') + ' file')} "
        f"({first_few(names)}) at {destination}; URLs expire at {result.get('expires_at')}."
    )


# ------------------------------------------------------------------------------------ segments


def _quota(left: int | None, next_allowed_at: datetime.datetime | None, zone: str) -> str:
    left_text = (
        "refreshes left today unknown"
        if left is None
        else f"{counted(left, 'refresh', 'refreshes')} left today"
    )
    next_at = in_zones(next_allowed_at, zone) if next_allowed_at else "now"
    return f"{left_text}; next refresh allowed at {next_at}"


def refresh_spent(
    result: Mapping[str, Any],
    segment: Mapping[str, Any],
    zone: str,
    left: int | None,
    next_allowed_at: datetime.datetime | None,
    *,
    by_this_try: bool,
) -> str:
    """The refresh operator's summary after a refresh (this try's, or an earlier try's whose answer
    was lost): refreshes left today for the segment and when the next one is allowed, in UTC and
    in ``zone`` (the segment's ``user_time_zone``)."""
    who = "1 refresh spent" if by_this_try else "1 refresh spent by an earlier try (not sent again)"
    return (
        f"Refreshed {_segment(result.get('segment_id'), segment.get('name'))}: {who}, job "
        f"{result.get('job_id') or 'unknown'}; {_quota(left, next_allowed_at, zone)}; watermark "
        f"{result.get('watermark')}."
    )


def refresh_skipped(
    segment_id: str,
    segment: Mapping[str, Any],
    zone: str,
    left: int | None,
    blocked_by: str | None,
    next_allowed_at: datetime.datetime | None,
) -> str:
    """The refresh operator's summary when the quota skips the refresh."""
    return (
        f"Skipped the refresh of {_segment(segment_id, segment.get('name'))} ({blocked_by}): none "
        f"spent; {_quota(left, next_allowed_at, zone)}."
    )


def segment_created(segment: Mapping[str, Any], change: str) -> str:
    """The create operator's summary: ``change`` says what happened (created, reused, updated)."""
    return (
        f"Segment {segment.get('name')!r} ({segment.get('id')}) {change}; {_validation(segment)}; "
        f"{_contacts(segment)}."
    )


def segment_read(segment: Mapping[str, Any]) -> str:
    """The get operator's summary."""
    sample = segment.get("contacts_sample")
    sampled = f"; {counted(len(sample), 'contact')} in contacts_sample" if isinstance(sample, list) else ""
    return (
        f"Found segment {segment.get('name')!r} ({segment.get('id')}): {_contacts(segment)}, "
        f"{_validation(segment)}{sampled}."
    )


def segments_listed(segments: Sequence[Mapping[str, Any]]) -> str:
    """The list operator's summary."""
    named = [f"{item.get('name')!r} ({item.get('id')})" for item in segments]
    return f"Found {counted(len(segments), 'segment')}{': ' + first_few(named) if named else ''}."


def segment_updated(segment: Mapping[str, Any], name: str | None, query_dsl: str | None) -> str:
    """The update operator's summary: what changed."""
    changed = [
        f"name set to {name!r}" if name is not None else "",
        "query_dsl replaced" if query_dsl is not None else "",
    ]
    what = " and ".join(change for change in changed if change)
    return (
        f"Updated segment {segment.get('name')!r} ({segment.get('id')}): {what}; "
        f"{_validation(segment)}; {_contacts(segment)}."
    )


def segment_deleted(segment_id: str, deleted: bool, why: str = "") -> str:
    """The delete operator's summary."""
    if deleted:
        return f"Deleted segment {segment_id}."
    return f"Segment {segment_id} was already gone: nothing deleted ({why})."


def segment_populated(result: Mapping[str, Any], name: object, min_contacts: int) -> str:
    """The segment sensor's summary, from its XCom result."""
    count = result.get("contacts_count")
    counts = counted(count, "contact") if isinstance(count, int) else "? contacts"
    return (
        f"Segment populated: {_segment(result.get('segment_id'), name)} counts {counts} "
        f"(min_contacts={min_contacts}) in the sample of {result.get('sample_updated_at')}."
    )


# -------------------------------------------------------------------------------- single sends


def single_send(name: str, result: Mapping[str, Any], already: bool = False) -> str:
    """The Single Send operator's summary: status, scheduled time, audience sizes and the gate."""
    gate = result.get("audience_gate")
    if isinstance(gate, Mapping):
        sizes = [
            f"{_segment(item.get('segment_id'), item.get('name'))} {item.get('contacts_count')} contacts"
            for item in gate.get("segments") or []
        ]
        verdict = "passed" if gate.get("passed") else "FAILED"
        audience = f"audience gate {verdict} at {gate.get('checked_at')} ({'; '.join(sizes)})"
    elif already:
        audience = "audience gate not run (already sent or scheduled earlier)"
    else:
        audience = "no audience gate set (audience sizes not read)"
    what = "was already" if already else "is"
    return (
        f"Single Send {name!r} ({result.get('single_send_id')}) {what} {result.get('status')} for "
        f"{result.get('send_at')}; {audience}."
    )


def stats_settled(result: Mapping[str, Any]) -> str:
    """The stats sensor's summary, from its XCom result."""
    counts = result.get("counts")
    shown = (
        ", ".join(f"{key} {value}" for key, value in counts.items())
        if isinstance(counts, Mapping)
        else "none yet"
    )
    state = "provisional" if result.get("provisional") else "settled"
    return (
        f"Single Send {result.get('single_send_id')} stats {state}: sent at {result.get('send_at')}; "
        f"counts {shown}; last change at {result.get('changed_at')}."
    )


def stats_landed(result: Mapping[str, Any]) -> str:
    """The stats operator's summary, from its XCom result."""
    ids = list(result.get("single_send_ids") or [])
    totals = result.get("totals")
    shown = (
        ", ".join(f"{key} {value:,}" for key, value in totals.items())
        if isinstance(totals, Mapping)
        else "none"
    )
    where = [f"tables {result['table']}/{result['links_table']}" if result.get("table") else ""]
    if result.get("files"):
        where.append(f"files {', '.join(result['files'])}")
    landed = " and ".join(w for w in where if w) or "nowhere (no destination set)"
    return (
        f"Landed {counted(int(result.get('stats_rows') or 0), 'stats row')} and "
        f"{counted(int(result.get('link_rows') or 0), 'link row')} of {counted(len(ids), 'Single Send')}"
        f"{' (' + first_few(ids) + ')' if ids else ''} in {landed}"
        f"{' (provisional)' if result.get('provisional') else ''}; totals {shown}."
    )
