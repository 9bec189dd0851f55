"""Is an existing segment the one the DAG describes? Compare ``query_dsl`` and ``parent_list_ids``.

SendGrid may re-space a stored query, so queries are compared whitespace-tolerantly: two queries
are the same when they differ only in whitespace outside quoted text. Runs of spaces, tabs and
newlines count as one space; whitespace at either end, and next to ``( ) , = < > !``, is
ignored. Case, and everything inside ``'...'`` or ``"..."``, counts. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# A quoted string or identifier ('' and "" escape their quote), or a run of anything else.
_PIECES = re.compile(r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|[^'"]+""", re.DOTALL)
_SPACE_BESIDE_PUNCTUATION = re.compile(r"\s*([(),=<>!])\s*")


def normalized_query(query: str) -> str:
    """``query`` with its whitespace made canonical (see the module docstring)."""
    out = []
    for piece in _PIECES.findall(query):
        if piece[:1] in ("'", '"'):
            out.append(piece)
        else:
            out.append(_SPACE_BESIDE_PUNCTUATION.sub(r"\1", re.sub(r"\s+", " ", piece)))
    return "".join(out).strip()


def same_query(left: object, right: object) -> bool:
    """Whether two queries are the same up to whitespace (both must be strings)."""
    return (
        isinstance(left, str) and isinstance(right, str) and normalized_query(left) == normalized_query(right)
    )


def same_parents(segment: Mapping[str, Any], parent_list_ids: Sequence[str] | None) -> bool:
    """Whether a Get Segment body has exactly ``parent_list_ids`` (None and [] are the same)."""
    return sorted(segment.get("parent_list_ids") or []) == sorted(parent_list_ids or [])


def differences(segment: Mapping[str, Any], query: str, parent_list_ids: Sequence[str] | None) -> list[str]:
    """What differs between a Get Segment body and the DAG's definition, one sentence each."""
    found = []
    if not same_query(segment.get("query_dsl"), query):
        found.append(f"its query_dsl is {segment.get('query_dsl')!r}, the DAG's is {query!r}")
    if not same_parents(segment, parent_list_ids):
        found.append(
            f"its parent_list_ids are {list(segment.get('parent_list_ids') or [])!r}, "
            f"the DAG's are {list(parent_list_ids or [])!r}"
        )
    return found


def field_changes(
    segment: Mapping[str, Any] | None,
    *,
    name: str | None = None,
    query_dsl: str | None = None,
    parent_list_ids: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Field by field, what writing the given values would change in ``segment`` (a Get Segment
    body; None: a segment not created yet): ``{field: {"from": current, "to": new}}``. Values
    left None are not compared; queries compare up to whitespace, parent lists as sets."""
    current: Mapping[str, Any] = segment or {}
    found: dict[str, dict[str, Any]] = {}
    if name is not None and current.get("name") != name:
        found["name"] = {"from": current.get("name"), "to": name}
    if query_dsl is not None and not same_query(current.get("query_dsl"), query_dsl):
        found["query_dsl"] = {"from": current.get("query_dsl"), "to": query_dsl}
    if parent_list_ids is not None and not same_parents(current, parent_list_ids):
        before = None if segment is None else list(current.get("parent_list_ids") or [])
        found["parent_list_ids"] = {"from": before, "to": list(parent_list_ids)}
    return found
