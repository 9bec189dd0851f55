"""Contact export routes: /v3/marketing/contacts/exports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .errors import ApiError, FieldErrors, errors_body
from .exports import export_url
from .routing import OptionalJson, emulator_of

router = APIRouter()
EXPORTS = "/v3/marketing/contacts/exports"
FILE_TYPES = ("csv", "json")
DEFAULT_MAX_FILE_SIZE = 5000  # MB: own copy of the spec's default


def _id_list(body: dict[str, Any], name: str, errors: FieldErrors) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors.add(name, f"{name} must be an array of ids")
        return []
    return list(dict.fromkeys(value))


@router.post(EXPORTS)
def start_export(request: Request, body: OptionalJson) -> JSONResponse:
    """202 ``{id, _metadata}``. Neither segment_ids nor list_ids: every contact is exported."""
    body = {} if body is None else body
    errors = FieldErrors()
    if not isinstance(body, dict):
        errors.add("body", "the request body must be a JSON object")
        errors.raise_if_any()
    segment_ids = _id_list(body, "segment_ids", errors)
    list_ids = _id_list(body, "list_ids", errors)
    file_type = body.get("file_type", "csv")
    if file_type not in FILE_TYPES:
        errors.add("file_type", f"file_type must be one of {', '.join(FILE_TYPES)}, got {file_type!r}")
    max_file_size = body.get("max_file_size", DEFAULT_MAX_FILE_SIZE)
    if isinstance(max_file_size, bool) or not isinstance(max_file_size, int) or max_file_size < 1:
        errors.add("max_file_size", f"max_file_size must be a whole number of MB >= 1, got {max_file_size!r}")
    errors.raise_if_any()
    emulator = emulator_of(request)
    with emulator.store.lock:
        known_segments = {row[0] for row in emulator.store.conn.execute("SELECT segment_id FROM segments")}
    unknown = [segment_id for segment_id in segment_ids if segment_id not in known_segments]
    if unknown:
        raise ApiError(404, errors_body(f"segment {unknown[0]!r} not found", "segment_ids"))
    missing = emulator.store.missing_lists(list_ids)
    if missing:
        raise ApiError(404, errors_body(f"list {missing[0]!r} not found", "list_ids"))
    export_id = emulator.exports.create(segment_ids, list_ids, file_type, max_file_size)
    emulator.work_added()
    base_url = str(request.base_url)
    return JSONResponse(
        {"id": export_id, "_metadata": {"self": export_url(base_url, export_id)}}, status_code=202
    )


@router.get(EXPORTS)
def list_exports(request: Request) -> JSONResponse:
    items = emulator_of(request).exports.summaries(str(request.base_url))
    return JSONResponse({"result": items, "_metadata": {"self": str(request.url)}})


@router.get(EXPORTS + "/{export_id}")
def export_status(export_id: str, request: Request) -> JSONResponse:
    """200 ``ContactExport``: pending, ready (urls signed afresh, contact_count) or failure."""
    view = emulator_of(request).exports.view(export_id, str(request.base_url))
    if view is None:
        raise ApiError(404, errors_body(f"export {export_id!r} not found", "id"))
    return JSONResponse(view)
