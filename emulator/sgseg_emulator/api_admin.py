"""Admin routes under /__emulator__/: clock, seeding, faults, request log, reset, settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .clock import to_iso
from .errors import FieldErrors, bad_request
from .faults import Fault
from .field_definitions import FieldDefinitions
from .routing import JsonObject, OptionalJson, emulator_of
from .store import identifiers_of

router = APIRouter(prefix="/__emulator__")


def _clock_view(request: Request) -> dict[str, Any]:
    emulator = emulator_of(request)
    return {"now": to_iso(emulator.now()), "mode": emulator.clock.mode}


@router.get("/clock")
def get_clock(request: Request) -> JSONResponse:
    return JSONResponse(_clock_view(request))


@router.post("/clock/advance")
def advance_clock(request: Request, body: JsonObject) -> JSONResponse:
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise bad_request("seconds must be a number", "seconds")
    try:
        # Contact jobs and exports that fall due run now (in the threadpool, as every route).
        emulator_of(request).advance_clock(float(seconds))
    except ValueError as error:
        raise bad_request(str(error), "seconds") from error
    return JSONResponse(_clock_view(request))


def _check_seed_contacts(contacts: Any, errors: FieldErrors) -> list[dict[str, Any]]:
    """Each contact is an object with an identifier; custom_fields, if any, an object."""
    if not isinstance(contacts, list) or not contacts:
        errors.add("contacts", "contacts must be a non-empty array")
        return []
    for index, contact in enumerate(contacts):
        if not isinstance(contact, dict):
            errors.add(f"contacts[{index}]", "each contact must be an object")
        elif not identifiers_of(contact):
            errors.add(f"contacts[{index}]", "an identifier (email, phone_number_id, ...) is required")
        elif contact.get("custom_fields") is not None and not isinstance(contact["custom_fields"], dict):
            errors.add(f"contacts[{index}].custom_fields", "custom_fields must be an object")
        if len(errors.items) >= 20:
            break
    return contacts


@router.post("/contacts/bulk")
def seed_contacts(request: Request, body: JsonObject) -> JSONResponse:
    """Fast seeding, applied at once: any number of contacts; honours contact_id/created_at/
    updated_at if given; custom fields by id or by name (missing ones are created)."""
    errors = FieldErrors()
    contacts = _check_seed_contacts(body.get("contacts"), errors)
    list_ids = body.get("list_ids") or []
    if not isinstance(list_ids, list):
        errors.add("list_ids", "list_ids must be an array")
    errors.raise_if_any()
    emulator = emulator_of(request)
    with emulator.store.lock:  # fields named for the first time are created once
        FieldDefinitions(emulator.store).key_by_id(contacts)
        try:
            result = emulator.store.upsert_contacts(contacts, list_ids, to_iso(emulator.now()), trusted=True)
        except ValueError as error:
            raise bad_request(str(error), "contacts") from error
    if result.errors:
        index, _, message = result.errors[0]
        raise bad_request(f"contacts[{index}]: {message}", "contacts")
    return JSONResponse({"count": result.created + result.updated})


@router.post("/events")
def add_events(request: Request, body: JsonObject) -> JSONResponse:
    events = body.get("events")
    if not isinstance(events, list) or not all(isinstance(e, dict) and e.get("event_type") for e in events):
        raise bad_request("events must be an array of objects, each with event_type", "events")
    emulator = emulator_of(request)
    try:
        count = emulator.store.add_events(events, to_iso(emulator.now()))
    except ValueError as error:
        raise bad_request(str(error), "events") from error
    return JSONResponse({"count": count})


@router.post("/faults")
def add_fault(request: Request, body: JsonObject) -> JSONResponse:
    specs = body["faults"] if isinstance(body.get("faults"), list) else [body]
    try:
        faults = [Fault.from_json(spec) for spec in specs]
    except (TypeError, ValueError) as error:
        raise bad_request(str(error), "fault") from error
    emulator = emulator_of(request)
    for fault in faults:
        emulator.faults.add(fault)
    return JSONResponse({"faults": emulator.faults.armed()}, status_code=201)


@router.get("/faults")
def list_faults(request: Request) -> JSONResponse:
    return JSONResponse({"faults": emulator_of(request).faults.armed()})


@router.delete("/faults")
def clear_faults(request: Request) -> Response:
    emulator_of(request).faults.clear()
    return Response(status_code=204)


@router.get("/requests")
def logged_requests(request: Request) -> JSONResponse:
    method = request.query_params.get("method")
    prefix = request.query_params.get("path_prefix")
    entries = [
        entry
        for entry in emulator_of(request).logged_requests()
        if (method is None or entry["method"] == method.upper())
        and (prefix is None or entry["path"].startswith(prefix))
    ]
    return JSONResponse({"requests": entries})


@router.get("/sends")
def sends(request: Request) -> JSONResponse:
    return JSONResponse({"sends": emulator_of(request).single_sends.deliveries()})


@router.post("/reset")
def reset(request: Request, body: OptionalJson) -> JSONResponse:
    """Body optional: ``{"keep_contacts": true}`` keeps contacts, lists, custom fields and events."""
    if body is not None and not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", "body")
    keep_contacts = (body or {}).get("keep_contacts", False)
    if not isinstance(keep_contacts, bool):
        raise bad_request(f"keep_contacts must be true or false, got {keep_contacts!r}", "keep_contacts")
    emulator_of(request).reset(keep_contacts=keep_contacts)
    return JSONResponse(_clock_view(request))


@router.get("/config")
def get_config(request: Request) -> JSONResponse:
    return JSONResponse(emulator_of(request).config.public_dict())


@router.patch("/config")
def configure(request: Request, body: JsonObject) -> JSONResponse:
    try:
        config = emulator_of(request).configure(body)
    except (TypeError, ValueError) as error:
        raise bad_request(str(error), "config") from error
    return JSONResponse(config.public_dict())
