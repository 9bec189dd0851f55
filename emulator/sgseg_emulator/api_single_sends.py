"""Single Send routes: /v3/marketing/singlesends."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .request_bodies import SingleSendCreate, checked
from .routing import JsonBody, JsonObject, emulator_of, page_metadata, page_params

router = APIRouter()
BASE = "/v3/marketing/singlesends"


@router.post(BASE)
def create_single_send(request: Request, body: JsonObject) -> JSONResponse:
    return JSONResponse(
        emulator_of(request).single_sends.create(checked(SingleSendCreate, body)), status_code=201
    )


@router.get(BASE)
def list_single_sends(request: Request) -> JSONResponse:
    # Own copies of the spec's page_size default and maximum (the emulator is the oracle).
    size, offset = page_params(request, default_size=100, max_size=100)
    items, total = emulator_of(request).single_sends.page(size, offset)
    return JSONResponse({"result": items, "_metadata": page_metadata(request, size, offset, total)})


@router.get(BASE + "/{single_send_id}")
def get_single_send(request: Request, single_send_id: str) -> JSONResponse:
    return JSONResponse(emulator_of(request).single_sends.get(single_send_id))


@router.delete(BASE + "/{single_send_id}")
def delete_single_send(request: Request, single_send_id: str) -> Response:
    emulator_of(request).single_sends.delete(single_send_id)
    return Response(status_code=204)


@router.put(BASE + "/{single_send_id}/schedule")
def schedule_single_send(request: Request, single_send_id: str, body: JsonBody) -> JSONResponse:
    return JSONResponse(emulator_of(request).single_sends.schedule(single_send_id, body), status_code=201)
