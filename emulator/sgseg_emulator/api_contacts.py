"""Contacts and lists routes: /v3/marketing/contacts*, /v3/marketing/lists."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import views
from .clock import to_iso
from .contact_rules import MAX_UPSERT_BYTES, is_email_address, structure_problems
from .contact_schema import IDENTIFIERS
from .errors import ApiError, FieldErrors, bad_request, errors_body
from .field_definitions import FieldDefinitions
from .request_bodies import ContactsUpsert, NameOnly, checked
from .routing import (
    JsonObject,
    LenientJson,
    RawBody,
    csv_values,
    emulator_of,
    page_metadata,
    page_params,
    parse_json_object,
)

router = APIRouter()
MAX_SEARCH_EMAILS = 100  # own copy of the spec's limit (the oracle never imports the provider's)
_MAX_REPORTED_ERRORS = 20


@router.put("/v3/marketing/contacts")
def upsert_contacts(request: Request, raw: RawBody) -> JSONResponse:
    """Validate the request (400 for the whole of it), then queue an upsert job (202 job_id)."""
    size = len(raw)
    if size > MAX_UPSERT_BYTES:
        raise ApiError(
            413, errors_body(f"the request body is {size} bytes; at most {MAX_UPSERT_BYTES}", "body")
        )
    body: ContactsUpsert = checked(ContactsUpsert, parse_json_object(raw))
    emulator = emulator_of(request)
    errors = FieldErrors()
    list_ids = body.get("list_ids") or []
    if missing := emulator.store.missing_lists(list_ids):
        errors.add("list_ids", f"list {missing[0]!r} does not exist")
    contacts = body["contacts"]
    types = {field.id: field.field_type for field in FieldDefinitions(emulator.store).custom()}
    for index, contact in enumerate(contacts):
        for field, message in structure_problems(contact, types):
            errors.add(f"contacts[{index}]" + (f".{field}" if field else ""), message)
        if len(errors.items) >= _MAX_REPORTED_ERRORS:
            break
    errors.raise_if_any()
    job_id = emulator.contact_jobs.submit_upsert(contacts, list_ids)
    emulator.work_added()
    return JSONResponse({"job_id": job_id}, status_code=202)


@router.get("/v3/marketing/contacts/count")
def contact_count(request: Request) -> JSONResponse:
    count = emulator_of(request).store.contact_count()
    return JSONResponse({"contact_count": count, "billable_count": count})


@router.post("/v3/marketing/contacts/search/emails")
def search_by_emails(request: Request, body: JsonObject) -> JSONResponse:
    emails = body.get("emails")
    if not isinstance(emails, list) or not emails or not all(isinstance(item, str) for item in emails):
        raise bad_request("emails must be a non-empty array of email addresses", "emails")
    if len(emails) > MAX_SEARCH_EMAILS:
        raise bad_request(f"at most {MAX_SEARCH_EMAILS} emails per search", "emails")
    wanted = [email.strip().lower() for email in emails]
    invalid = [email for email in wanted if not is_email_address(email)]
    if invalid:
        raise bad_request(f"invalid email address: {invalid[0]!r}", "emails")
    found = emulator_of(request).store.contacts_by_identifier("email", wanted)
    if not found:
        raise ApiError(404, {"errors": [{"field": "emails", "message": "no contacts found"}]})
    names = FieldDefinitions(emulator_of(request).store).names_by_id()
    result: dict[str, Any] = {}
    for email in wanted:
        row = found.get(email)
        result[email] = (
            {"contact": views.contact_details(row, names)} if row else {"error": "contact not found"}
        )
    return JSONResponse({"result": result})


@router.delete("/v3/marketing/contacts")
def delete_contacts(request: Request) -> JSONResponse:
    query = request.query_params
    ids = csv_values(query.getlist("ids"))
    delete_all = query.get("delete_all_contacts") == "true"
    if ids and delete_all:
        raise bad_request("use either ids or delete_all_contacts, not both", "ids")
    if not ids and not delete_all:
        raise bad_request("ids (comma separated) or delete_all_contacts=true is required", "ids")
    emulator = emulator_of(request)
    deleted = emulator.store.delete_contacts(None if delete_all else ids)
    return JSONResponse({"job_id": emulator.contact_jobs.record_delete(deleted)}, status_code=202)


@router.post("/v3/marketing/lists")
def create_list(request: Request, body: JsonObject) -> JSONResponse:
    name = checked(NameOnly, body)["name"]
    emulator = emulator_of(request)
    created = emulator.store.create_list(name, to_iso(emulator.now()))
    return JSONResponse(views.contact_list(created, 0), status_code=201)


@router.get("/v3/marketing/lists")
def get_lists(request: Request) -> JSONResponse:
    # Own copies of the spec's page_size default and maximum (the emulator is the oracle).
    size, offset = page_params(request, default_size=100, max_size=1000)
    store = emulator_of(request).store
    every = store.lists()
    page = [
        views.contact_list(row, store.list_contact_count(row["list_id"]))
        for row in every[offset : offset + size]
    ]
    return JSONResponse({"result": page, "_metadata": page_metadata(request, size, offset, len(every))})


@router.post("/v3/marketing/contacts/search/identifiers/{identifier_type}")
def search_by_identifiers(identifier_type: str, request: Request, body: LenientJson) -> JSONResponse:
    """200 ``{"result": {value: {"contact"} or {"error"}}}``; 404 when nothing matches; 400 for a
    bad type or list. Errors are a single ``ContactsError`` object here, as the spec has it."""
    if identifier_type not in IDENTIFIERS:
        message = f"identifier_type must be one of {', '.join(IDENTIFIERS)}, got {identifier_type!r}"
        raise ApiError(400, {"message": message, "field": "identifier_type"})
    values = body.get("identifiers") if isinstance(body, dict) else None
    if not isinstance(values, list) or not values or not all(isinstance(item, str) for item in values):
        raise ApiError(
            400, {"message": "identifiers must be a non-empty array of strings", "field": "identifiers"}
        )
    if len(values) > MAX_SEARCH_EMAILS:
        raise ApiError(400, {"message": f"at most {MAX_SEARCH_EMAILS} identifiers", "field": "identifiers"})
    wanted = [value.strip().lower() if identifier_type == "email" else value for value in values]
    store = emulator_of(request).store
    found = store.contacts_by_identifier(identifier_type, wanted)
    if not found:
        raise ApiError(404, {"message": "no contacts found", "field": "identifiers"})
    names = FieldDefinitions(store).names_by_id()
    result = {
        value: {"contact": views.contact_details(found[value], names)}
        if value in found
        else {"error": "contact not found"}
        for value in wanted
    }
    return JSONResponse({"result": result})
