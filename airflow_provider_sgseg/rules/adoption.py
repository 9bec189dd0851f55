"""What a retry adopts instead of sending a write again, from SendGrid's own evidence. Pure.

A write whose answer was lost (a timeout, a 5xx after SendGrid acted) may have taken effect;
sending it again would spend a second refresh of the daily quota or start a second export. The
retry looks first, and these rules say whether what it sees is the earlier try's:

* the manual refresh: :func:`refresh_accepted` (the segment's ``last_refreshed_at`` or
  ``refreshes_used`` moved past what was read before the POST);
* the contacts export: :func:`adoptable_export` (an export of the same segments and lists,
  created since the attempt, still usable; :func:`export_reusable`).

The operators (``operators/segments.py``, ``operators/contacts_export.py``) read and act.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.jobs import url_file_type

# ------------------------------------------------------------------------------- the refresh


def refresh_accepted(attempt: Mapping[str, Any], segment: Mapping[str, Any]) -> bool:
    """Whether ``segment`` (read after the POST) shows the refresh ``attempt`` recorded before it.

    Evidence is SendGrid's own: ``last_refreshed_at`` moved past the value read before the POST
    (``attempt["last_refreshed_at_before"]``), or ``refreshes_used`` grew
    (``attempt["refreshes_used_before"]``). Comparing server values with server values keeps the
    worker's clock out of it.
    """
    before = parse_instant(attempt.get("last_refreshed_at_before"))
    after = parse_instant(segment.get("last_refreshed_at"))
    moved = after is not None and (before is None or after > before)
    used_before = attempt.get("refreshes_used_before")
    used_after = segment.get("refreshes_used")
    counted = type(used_before) is int and type(used_after) is int and used_after > used_before
    return moved or counted


# -------------------------------------------------------------------------------- the export


def export_reusable(export: Mapping[str, Any], now: datetime.datetime, margin: float = 300.0) -> bool:
    """Whether an earlier export can serve a retry: not failed, and not expiring within ``margin``
    seconds (a pending export has no real ``expires_at`` yet; it is reusable unless one says so)."""
    if str(export.get("status") or "").lower() == "failure":
        return False
    expires_at = parse_instant(export.get("expires_at"))
    return expires_at is None or expires_at.timestamp() - now.timestamp() > margin


ADOPTION_SKEW = 300.0  # seconds SendGrid's clock and the worker's may be apart


def adoptable_export(
    exports: Sequence[Mapping[str, Any]],
    segment_ids: list[str],
    list_ids: list[str],
    attempted_at: datetime.datetime,
    now: datetime.datetime,
    skew: float = ADOPTION_SKEW,
    *,
    file_type: str | None = None,
) -> str | None:
    """The export an earlier try started but never heard back about, from
    ``GET /v3/marketing/contacts/exports``: same segments and lists, created no earlier than the
    attempt (less ``skew`` seconds for clocks apart), still reusable. The newest, or None.

    The list does not give an export's file type; one whose ``urls`` name another type than
    ``file_type`` (see :func:`url_file_type`) is skipped. Without telling URLs (pending, or
    unknown suffixes) it stays a candidate: the download checks the content."""
    wanted = (sorted(segment_ids), sorted(list_ids))
    candidates = []
    for export in exports:
        created = parse_instant(export.get("created_at"))
        if created is None or created.timestamp() < attempted_at.timestamp() - skew:
            continue
        if (_ids(export.get("segments")), _ids(export.get("lists"))) != wanted:
            continue
        listed_type = _listed_file_type(export)
        if file_type and listed_type and listed_type != file_type:
            continue
        if export.get("id") and export_reusable(export, now):
            candidates.append((created.timestamp(), str(export["id"])))
    return max(candidates)[1] if candidates else None


def _listed_file_type(export: Mapping[str, Any]) -> str | None:
    urls = export.get("urls")
    types = [url_file_type(str(url)) for url in urls] if isinstance(urls, list) else []
    return next((kind for kind in types if kind), None)


def _ids(items: object) -> list[str]:
    if not isinstance(items, list):
        return []
    return sorted(str(item.get("ID") or item.get("id")) for item in items if isinstance(item, Mapping))
