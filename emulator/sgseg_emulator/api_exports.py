"""Contact export routes: /v3/marketing/contacts/exports."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .errors import ApiError, bad_request, errors_body
from .exports import export_url
from .request_bodies import ExportCreate, checked
from .routing import OptionalJson, emulator_of

router = APIRouter()
EXPORTS = "/v3/marketing/contacts/exports"
DEFAULT_MAX_FILE_SIZE = 5000  # MB: own copy of the spec's default


@router.post(EXPORTS)
def start_export(request: Request, body: OptionalJson) -> JSONResponse:
    """202 ``{id, _metadata}``. Neither segment_ids nor list_ids: every contact is exported."""
    export: ExportCreate = checked(ExportCreate, {} if body is None else body)
    segment_ids = list(dict.fromkeys(export.get("segment_ids", [])))
    list_ids = list(dict.fromkeys(export.get("list_ids", [])))
    file_type = export.get("file_type", "csv")
    max_file_size = export.get("max_file_size", DEFAULT_MAX_FILE_SIZE)
    if max_file_size < 1:  # the spec sets no minimum: the emulator's own rule
        raise bad_request(
            f"max_file_size must be a whole number of MB >= 1, got {max_file_size!r}", "max_file_size"
        )
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
