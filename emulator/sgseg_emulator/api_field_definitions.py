"""Custom field definition routes: /v3/marketing/field_definitions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .errors import FieldErrors, bad_request
from .field_definitions import FIELD_TYPES, MAX_CUSTOM_FIELDS, RESERVED_FIELDS, FieldDefinitions, name_problem
from .routing import emulator_of, json_object

router = APIRouter()
PATH = "/v3/marketing/field_definitions"


@router.get(PATH)
async def get_field_definitions(request: Request) -> JSONResponse:
    custom = FieldDefinitions(emulator_of(request).store).custom()
    reserved = []
    for field in RESERVED_FIELDS:
        item: dict[str, object] = {"id": field.id, "name": field.name, "field_type": field.field_type}
        if field.read_only:
            item["read_only"] = True
        reserved.append(item)
    return JSONResponse(
        {
            "custom_fields": [
                {"id": field.id, "name": field.name, "field_type": field.field_type} for field in custom
            ],
            "reserved_fields": reserved,
            "_metadata": {"self": str(request.url)},
        }
    )


@router.post(PATH)
async def create_field_definition(request: Request) -> JSONResponse:
    body = await json_object(request)
    definitions = FieldDefinitions(emulator_of(request).store)
    existing = definitions.custom()
    errors = FieldErrors()
    name, field_type = body.get("name"), body.get("field_type")
    problem = name_problem(name, [field.name for field in existing])
    if problem is not None:
        errors.add("name", problem)
    if field_type not in FIELD_TYPES:
        errors.add("field_type", f"field_type must be one of {', '.join(FIELD_TYPES)}, got {field_type!r}")
    errors.raise_if_any()
    if len(existing) >= MAX_CUSTOM_FIELDS:
        raise bad_request(f"the account already has the maximum of {MAX_CUSTOM_FIELDS} custom fields", "name")
    field = definitions.create(str(name), str(field_type))
    return JSONResponse(
        {
            "id": field.id,
            "name": field.name,
            "field_type": field.field_type,
            "_metadata": {"self": f"{str(request.url).rstrip('/')}/{field.id}"},
        },
        status_code=200,  # SendGrid answers 200 here, not 201
    )
