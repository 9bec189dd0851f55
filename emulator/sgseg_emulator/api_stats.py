"""Single Send stats routes: /v3/marketing/stats/singlesends (list, by id, links, CSV export),
and the admin route that makes a Single Send an A/B test."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .errors import FieldErrors, bad_request
from .routing import JsonObject, csv_values, emulator_of, page_metadata, page_params
from .stats import PHASES, check_ids, group_by, stats_query, time_zone

router = APIRouter()
BASE = "/v3/marketing/stats/singlesends"
# Own copies of the spec's page_size default and maximum, and its id limits (the emulator is the oracle).
PAGE_SIZE, MAX_PAGE_SIZE = 25, 50
MAX_LIST_IDS, MAX_EXPORT_IDS = 25, 50


def _paged(request: Request, results: list[dict[str, Any]], **extra: Any) -> JSONResponse:
    size, offset = page_params(request, default_size=PAGE_SIZE, max_size=MAX_PAGE_SIZE)
    page = results[offset : offset + size]
    metadata = page_metadata(request, size, offset, len(results))
    return JSONResponse({"results": page, "_metadata": metadata, **extra})


def _values(request: Request, name: str) -> list[str]:
    return csv_values(request.query_params.getlist(name))


@router.get(BASE)
def list_stats(request: Request) -> JSONResponse:
    ids = check_ids(_values(request, "singlesend_ids"), "singlesend_ids", MAX_LIST_IDS)
    stats = emulator_of(request).stats
    return _paged(request, [stats.totals(item) for item in stats.triggered_ids(ids)])


@router.get(BASE + "/export")
def export_stats(request: Request) -> Response:
    ids = check_ids(_values(request, "ids"), "ids", MAX_EXPORT_IDS, required=True)
    errors = FieldErrors()
    time_zone(errors, request.query_params.get("timezone"))
    errors.raise_if_any()
    return Response(emulator_of(request).stats.export_csv(ids), media_type="text/csv")


@router.get(BASE + "/{single_send_id}")
def get_stats(request: Request, single_send_id: str) -> JSONResponse:
    params = request.query_params
    query = stats_query(
        params.get("aggregated_by"),
        params.get("start_date"),
        params.get("end_date"),
        params.get("timezone"),
        _values(request, "group_by"),
    )
    return _paged(request, emulator_of(request).stats.rows(single_send_id, query))


@router.get(BASE + "/{single_send_id}/links")
def get_link_stats(request: Request, single_send_id: str) -> JSONResponse:
    params = request.query_params
    errors = FieldErrors()
    group = group_by(errors, _values(request, "group_by"))
    phase = params.get("ab_phase_id")
    if phase is not None and phase not in PHASES:
        errors.add("ab_phase_id", "ab_phase_id must be test or send")
    errors.raise_if_any()
    results = emulator_of(request).stats.links(single_send_id, group, params.get("ab_variation_id"), phase)
    return _paged(request, results, total_clicks=sum(item["clicks"] for item in results))


@router.post("/__emulator__/singlesends/{single_send_id}/ab_test")
def set_ab_test(request: Request, single_send_id: str, body: JsonObject) -> JSONResponse:
    variations, percentage = body.get("variations", 2), body.get("test_percentage", 20)
    if isinstance(variations, bool) or isinstance(percentage, bool):
        raise bad_request("variations and test_percentage must be integers", "body")
    return JSONResponse(emulator_of(request).stats.set_ab_test(single_send_id, variations, percentage))
