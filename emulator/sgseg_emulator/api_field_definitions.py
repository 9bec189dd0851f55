"""Custom field definition routes: /v3/marketing/field_definitions."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .errors import ApiError, bad_request
from .field_definitions import (
    MAX_CUSTOM_FIELDS,
    RESERVED_FIELDS,
    CustomField,
    FieldDefinitions,
    name_problem,
    reserved_field,
)
from .request_bodies import FieldDefinitionCreate, NameOnly, checked
from .routing import JsonObject, emulator_of

router = APIRouter()
PATH = "/v3/marketing/field_definitions"


@router.get(PATH)
def get_field_definitions(request: Request) -> JSONResponse:
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
def create_field_definition(request: Request, body: JsonObject) -> JSONResponse:
    store = emulator_of(request).store
    with store.lock:  # the name and count checks and the insert are one step
        return _create_field_definition(
            request, checked(FieldDefinitionCreate, body), FieldDefinitions(store)
        )


def _create_field_definition(
    request: Request, body: FieldDefinitionCreate, definitions: FieldDefinitions
) -> JSONResponse:
    existing = definitions.custom()
    name, field_type = body["name"], body["field_type"]
    problem = name_problem(name, [field.name for field in existing])
    if problem is not None:
        raise bad_request(problem, "name")
    if len(existing) >= MAX_CUSTOM_FIELDS:
        raise bad_request(f"the account already has the maximum of {MAX_CUSTOM_FIELDS} custom fields", "name")
    field = definitions.create(name, field_type)
    # SendGrid answers 200 here, not 201.
    return JSONResponse(_field_view(field, f"{str(request.url).rstrip('/')}/{field.id}"))


def _field_view(field: CustomField, self_url: str) -> dict[str, object]:
    return {
        "id": field.id,
        "name": field.name,
        "field_type": field.field_type,
        "_metadata": {"self": self_url},
    }


def _field_or_404(definitions: FieldDefinitions, field_id: str) -> CustomField:
    field = definitions.by_id().get(field_id)
    if field is None:
        reason = "is a reserved field and cannot change" if reserved_field(field_id) else "does not exist"
        raise ApiError(404, {"errors": [{"field": "custom_field_id", "message": f"{field_id!r} {reason}"}]})
    return field


@router.patch(PATH + "/{field_id}")
def rename_field_definition(field_id: str, request: Request, body: JsonObject) -> JSONResponse:
    """200 with the renamed field (only the name can change); 400 for a bad name; 404 unknown id."""
    store = emulator_of(request).store
    with store.lock:  # the name check and the rename are one step
        return _rename_field_definition(request, field_id, checked(NameOnly, body), FieldDefinitions(store))


def _rename_field_definition(
    request: Request, field_id: str, body: NameOnly, definitions: FieldDefinitions
) -> JSONResponse:
    field = _field_or_404(definitions, field_id)
    others = [other.name for other in definitions.custom() if other.id != field_id]
    problem = name_problem(body["name"], others)
    if problem is not None:
        raise bad_request(problem, "name")
    renamed = definitions.rename(field, body["name"])
    return JSONResponse(_field_view(renamed, str(request.url)))


@router.delete(PATH + "/{field_id}")
def delete_field_definition(field_id: str, request: Request) -> Response:
    """204; the field's values go from every contact. 404 for an unknown (or reserved) id."""
    definitions = FieldDefinitions(emulator_of(request).store)
    definitions.delete(_field_or_404(definitions, field_id))
    return Response(status_code=204)
