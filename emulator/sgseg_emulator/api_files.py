"""The file host's routes under /__files__/: export downloads, import uploads, import error files.

They behave like S3 pre-signed URLs: no API key (a request that carries an ``Authorization``
header is refused, so a client that would leak the SendGrid key to the file host fails here),
the signature and expiry in the query string, and S3's XML error bodies.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from .api_imports import UPLOAD_HEADERS
from .contact_rules import MAX_IMPORT_BYTES
from .contacts_jobs import errors_name, upload_name
from .file_store import FILES_PREFIX
from .routing import emulator_of

if TYPE_CHECKING:
    from .state import Emulator

router = APIRouter(prefix=FILES_PREFIX)
_MEDIA_TYPES = {"csv": "text/csv", "json": "application/json"}


def s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


def _refusal(request: Request, name: str) -> Response | None:
    if "authorization" in request.headers:
        return s3_error(400, "InvalidArgument", "Only one auth mechanism allowed")
    emulator = emulator_of(request)
    problem = emulator.files.check(request.method, name, dict(request.query_params), emulator.now())
    if problem is not None:
        code = "SignatureDoesNotMatch" if "signature" in problem else "AccessDenied"
        return s3_error(403, code, problem)
    return None


@router.get("/{name:path}")
def download(name: str, request: Request) -> Response:
    refusal = _refusal(request, name)
    if refusal is not None:
        return refusal
    emulator = emulator_of(request)
    if name.startswith("exports/"):
        found = emulator.exports.file_of(name)
    elif name.startswith("import-errors/"):
        job_id = name.removeprefix("import-errors/").removesuffix(".csv")
        exists = name == errors_name(job_id) and emulator.contact_jobs.errors_file_exists(job_id)
        found = name if exists else None
    else:
        found = None
    if found is None or not emulator.files.path(found).exists():
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    extension = found.rsplit(".", 1)[-1]
    return FileResponse(emulator.files.path(found), media_type=_MEDIA_TYPES.get(extension, "text/csv"))


@router.put("/{name:path}")
async def upload(name: str, request: Request) -> Response:
    refusal = _refusal(request, name)
    if refusal is not None:
        return refusal
    for header in UPLOAD_HEADERS:
        if request.headers.get(header["header"]) != header["value"]:
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                f"the signed header {header['header']}: {header['value']} is missing from the request",
            )
    emulator = emulator_of(request)
    job_id = name.removeprefix("imports/").removesuffix(".upload")
    # This route streams the body, so it stays async and sends its SQLite work to the threadpool.
    allowed = await run_in_threadpool(emulator.contact_jobs.upload_allowed, job_id)
    if name != upload_name(job_id) or not allowed:
        return s3_error(403, "AccessDenied", "this upload URL no longer accepts a file")
    target = emulator.files.path(name)
    partial = target.with_suffix(".partial")
    size = 0
    with partial.open("wb") as file:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_IMPORT_BYTES:
                file.close()
                partial.unlink()
                return s3_error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum size")
            file.write(chunk)
    os.replace(partial, target)
    await run_in_threadpool(_received, emulator, job_id)
    return Response(status_code=200, headers={"ETag": f'"{job_id}"'})


def _received(emulator: Emulator, job_id: str) -> None:
    emulator.contact_jobs.upload_received(job_id)
    emulator.work_added()
