"""Contacts and lists routes: /v3/marketing/contacts*, /v3/marketing/lists."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import views
from .clock import to_iso
from .errors import ApiError, FieldErrors, bad_request
from .routing import csv_values, emulator_of, json_object, page_metadata, page_params
from .store import new_id

router = APIRouter()
MAX_CONTACTS_PER_UPSERT = 30000
MAX_SEARCH_EMAILS = 100


def check_contacts(contacts: Any, errors: FieldErrors, *, limit: int | None) -> list[dict[str, Any]]:
    """Each contact needs an email (this emulator keys contacts by email only)."""
    if not isinstance(contacts, list) or not contacts:
        errors.add("contacts", "contacts must be a non-empty array")
        return []
    if limit is not None and len(contacts) > limit:
        errors.add("contacts", f"at most {limit} contacts per request, got {len(contacts)}")
    for index, contact in enumerate(contacts):
        if not isinstance(contact, dict):
            errors.add(f"contacts[{index}]", "each contact must be an object")
            continue
        email = contact.get("email")
        if not isinstance(email, str) or "@" not in email or not 3 <= len(email) <= 254:
            errors.add(f"contacts[{index}].email", "an email address is required (3 to 254 characters)")
        custom = contact.get("custom_fields")
        if custom is not None and not isinstance(custom, dict):
            errors.add(
                f"contacts[{index}].custom_fields", "custom_fields must be an object keyed by field name"
            )
        alternate = contact.get("alternate_emails")
        if alternate is not None and (not isinstance(alternate, list) or len(alternate) > 5):
            errors.add(f"contacts[{index}].alternate_emails", "alternate_emails must be an array of up to 5")
        if len(errors.items) >= 20:
            break
    return contacts


def check_list_ids(request: Request, value: Any, errors: FieldErrors) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors.add("list_ids", "list_ids must be an array of list ids")
        return []
    missing = emulator_of(request).store.missing_lists(value)
    if missing:
        errors.add("list_ids", f"list {missing[0]!r} does not exist")
    return value


@router.put("/v3/marketing/contacts")
async def upsert_contacts(request: Request) -> JSONResponse:
    body = await json_object(request)
    errors = FieldErrors()
    list_ids = check_list_ids(request, body.get("list_ids"), errors)
    contacts = check_contacts(body.get("contacts"), errors, limit=MAX_CONTACTS_PER_UPSERT)
    errors.raise_if_any()
    emulator = emulator_of(request)
    emulator.store.upsert_contacts(contacts, list_ids, to_iso(emulator.now()))
    return JSONResponse({"job_id": new_id()}, status_code=202)


@router.get("/v3/marketing/contacts/count")
async def contact_count(request: Request) -> JSONResponse:
    count = emulator_of(request).store.contact_count()
    return JSONResponse({"contact_count": count, "billable_count": count})


@router.post("/v3/marketing/contacts/search/emails")
async def search_by_emails(request: Request) -> JSONResponse:
    body = await json_object(request)
    emails = body.get("emails")
    if not isinstance(emails, list) or not emails or not all(isinstance(item, str) for item in emails):
        raise bad_request("emails must be a non-empty array of email addresses", "emails")
    if len(emails) > MAX_SEARCH_EMAILS:
        raise bad_request(f"at most {MAX_SEARCH_EMAILS} emails per search", "emails")
    wanted = [email.strip().lower() for email in emails]
    invalid = [email for email in wanted if not _is_email_address(email)]
    if invalid:
        raise bad_request(f"invalid email address: {invalid[0]!r}", "emails")
    found = emulator_of(request).store.contacts_by_email(wanted)
    if not found:
        raise ApiError(404, {"errors": [{"field": "emails", "message": "no contacts found"}]})
    result: dict[str, Any] = {}
    for email in wanted:
        row = found.get(email)
        result[email] = {"contact": views.contact_details(row)} if row else {"error": "contact not found"}
    return JSONResponse({"result": result})


def _is_email_address(text: str) -> bool:
    local, at, domain = text.rpartition("@")
    return bool(at and local and domain) and len(text) <= 254 and not any(char.isspace() for char in text)


@router.delete("/v3/marketing/contacts")
async def delete_contacts(request: Request) -> JSONResponse:
    query = request.query_params
    ids = csv_values(query.getlist("ids"))
    delete_all = query.get("delete_all_contacts") == "true"
    if ids and delete_all:
        raise bad_request("use either ids or delete_all_contacts, not both", "ids")
    if not ids and not delete_all:
        raise bad_request("ids (comma separated) or delete_all_contacts=true is required", "ids")
    emulator_of(request).store.delete_contacts(None if delete_all else ids)
    return JSONResponse({"job_id": new_id()}, status_code=202)


@router.post("/v3/marketing/lists")
async def create_list(request: Request) -> JSONResponse:
    body = await json_object(request)
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise bad_request("name is required and must be a string of 1 to 100 characters", "name")
    emulator = emulator_of(request)
    created = emulator.store.create_list(name, to_iso(emulator.now()))
    return JSONResponse(views.contact_list(created, 0), status_code=201)


@router.get("/v3/marketing/lists")
async def get_lists(request: Request) -> JSONResponse:
    size, offset = page_params(request, default_size=100, max_size=1000)
    store = emulator_of(request).store
    every = store.lists()
    page = [
        views.contact_list(row, store.list_contact_count(row["list_id"]))
        for row in every[offset : offset + size]
    ]
    return JSONResponse({"result": page, "_metadata": page_metadata(request, size, offset, len(every))})
