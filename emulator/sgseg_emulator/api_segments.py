"""Segments V2 routes: /v3/marketing/segments/2.0."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .request_bodies import SegmentCreate, SegmentUpdate, checked
from .routing import JsonObject, LenientJson, csv_values, emulator_of, parse_bool

router = APIRouter()
BASE = "/v3/marketing/segments/2.0"


@router.get(BASE)
def list_segments(request: Request) -> JSONResponse:
    query = request.query_params
    results = emulator_of(request).segments.summaries(
        ids=csv_values(query.getlist("ids")),
        parent_list_ids=csv_values(query.getlist("parent_list_ids")),
        no_parent_list_id=parse_bool(query.get("no_parent_list_id"), "no_parent_list_id", False),
    )
    return JSONResponse({"results": results})


@router.post(BASE)
def create_segment(request: Request, body: JsonObject) -> JSONResponse:
    return JSONResponse(emulator_of(request).segments.create(checked(SegmentCreate, body)), status_code=201)


@router.get(BASE + "/{segment_id}")
def get_segment(request: Request, segment_id: str) -> JSONResponse:
    include = parse_bool(request.query_params.get("contacts_sample"), "contacts_sample", True)
    return JSONResponse(emulator_of(request).segments.get(segment_id, include_sample=include))


@router.patch(BASE + "/{segment_id}")
def update_segment(request: Request, segment_id: str, body: JsonObject) -> JSONResponse:
    return JSONResponse(emulator_of(request).segments.update(segment_id, checked(SegmentUpdate, body)))


@router.delete(BASE + "/{segment_id}")
def delete_segment(request: Request, segment_id: str) -> Response:
    emulator_of(request).segments.delete(segment_id)
    return Response(status_code=202)


@router.post(BASE + "/refresh/{segment_id}")
def refresh_segment(request: Request, segment_id: str, body: LenientJson) -> JSONResponse:
    return JSONResponse(emulator_of(request).segments.refresh(segment_id, body), status_code=202)
