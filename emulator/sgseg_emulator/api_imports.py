"""Contact import routes: the CSV import flow and every contact job's status."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .contact_schema import IDENTIFIERS
from .contacts_jobs import upload_name
from .errors import ApiError, FieldErrors, errors_body
from .field_definitions import FieldDefinitions, reserved_field
from .request_bodies import ImportCreate, checked
from .routing import JsonObject, emulator_of

router = APIRouter()
IMPORTS = "/v3/marketing/contacts/imports"
# Headers the upload must carry, as SendGrid's upload_headers list them (INFERRED: S3's
# server-side encryption header of a pre-signed PUT).
UPLOAD_HEADERS = ({"header": "x-amz-server-side-encryption", "value": "aws:kms"},)


def _check_mappings(value: list[str | None], custom_ids: set[str], errors: FieldErrors) -> list[str | None]:
    mapped_names = set()
    for index, field_id in enumerate(value):
        if field_id is None:
            continue
        reserved = reserved_field(field_id)
        if reserved is not None and reserved.read_only:
            errors.add(f"field_mappings[{index}]", f"reserved field {reserved.name!r} is read-only")
        elif reserved is None and field_id not in custom_ids:
            errors.add(f"field_mappings[{index}]", f"{field_id!r} is not a field id")
        elif reserved is not None:
            mapped_names.add(reserved.name)
    if not mapped_names & set(IDENTIFIERS):
        errors.add("field_mappings", f"at least one identifier must be mapped: {', '.join(IDENTIFIERS)}")
    return value


@router.put(IMPORTS)
def start_import(request: Request, body: JsonObject) -> JSONResponse:
    """200 ``{job_id, upload_uri, upload_headers}``; the job waits for the file at upload_uri."""
    emulator = emulator_of(request)
    request_body: ImportCreate = checked(ImportCreate, body)
    errors = FieldErrors()
    custom_ids = {field.id for field in FieldDefinitions(emulator.store).custom()}
    mappings = _check_mappings(request_body["field_mappings"], custom_ids, errors)
    list_ids = request_body.get("list_ids") or []
    errors.raise_if_any()
    missing = emulator.store.missing_lists(list_ids)
    if missing:  # the spec's 404: "If any of the specified lists do not exist."
        raise ApiError(404, errors_body(f"list {missing[0]!r} does not exist", "list_ids"))
    job_id, expires = emulator.contact_jobs.create_import(list_ids, mappings)
    emulator.start_worker()
    upload_uri = emulator.files.signed_url(str(request.base_url), "PUT", upload_name(job_id), expires)
    return JSONResponse({"job_id": job_id, "upload_uri": upload_uri, "upload_headers": list(UPLOAD_HEADERS)})


@router.get(IMPORTS + "/{job_id}")
def import_status(job_id: str, request: Request) -> JSONResponse:
    """200 ``ContactImport`` for any contact job (upsert, CSV import, delete); 404 if unknown."""
    view = emulator_of(request).contact_jobs.view(job_id, str(request.base_url))
    if view is None:
        raise ApiError(404, errors_body(f"import job {job_id!r} not found", "id"))
    return JSONResponse(view)
