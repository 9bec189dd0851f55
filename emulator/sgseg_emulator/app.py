"""The emulator's ASGI application: FastAPI routes behind the auth/faults/logging middleware."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from . import (
    api_admin,
    api_contacts,
    api_exports,
    api_field_definitions,
    api_files,
    api_imports,
    api_segments,
    api_single_sends,
    api_stats,
    inspect_page,
)
from .errors import ApiError, errors_body
from .middleware import EmulatorMiddleware
from .state import Emulator


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    if error.body is None:
        return Response(status_code=error.status, headers=error.headers)
    return JSONResponse(error.body, status_code=error.status, headers=error.headers)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    message = "resource not found" if error.status_code == 404 else str(error.detail)
    return JSONResponse(errors_body(message), status_code=error.status_code)


async def _unexpected_error(request: Request, error: Exception) -> Response:
    # A bug in the emulator: answer in SendGrid's 500 shape (uvicorn still logs the traceback).
    return JSONResponse(errors_body(f"emulator error: {type(error).__name__}: {error}"), status_code=500)


def create_app(emulator: Emulator) -> EmulatorMiddleware:
    # SendGrid answers an unknown path (a trailing slash included) 404 "resource not found"; it
    # never redirects, so neither does the emulator.
    api = FastAPI(
        title="sgseg SendGrid emulator",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    api.state.emulator = emulator
    routers = (
        api_segments,
        api_imports,
        api_exports,
        api_contacts,
        api_field_definitions,
        api_single_sends,
        api_stats,
    )
    for module in (*routers, api_admin, inspect_page, api_files):
        api.include_router(module.router)
    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(HTTPException, _http_error)
    api.add_exception_handler(Exception, _unexpected_error)
    return EmulatorMiddleware(api, emulator)
