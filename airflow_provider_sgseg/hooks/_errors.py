"""Turn a SendGrid HTTP answer into a typed error or parsed JSON. The one place errors are mapped.

Pure: works on status, body bytes and the request's method and path; never sees headers that
could carry the API key.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from airflow_provider_sgseg.exceptions import (
    ErrorDetail,
    SendGridAuthError,
    SendGridError,
    SendGridForbiddenError,
    SendGridNotFoundError,
    SendGridRateLimitError,
    SendGridResponseError,
    SendGridServerError,
    SendGridValidationError,
)

# Statuses that refuse the request as sent: repeating it cannot succeed.
_REFUSED_STATUSES = frozenset({400, 409, 422})


def error_details(body: bytes) -> list[ErrorDetail]:
    """SendGrid's messages from ``{"errors": [{field, message}]}`` or ``{"error": "..."}``.

    Non-JSON bodies (a proxy's HTML page) give their text, empty ones nothing. Every message is
    put on one line and cut to 300 characters (every field to 100), saying how many more there
    were. All entries are kept; the error's text quotes only the first ones.
    """
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return []
    try:
        payload = json.loads(text)
    except ValueError:
        return [ErrorDetail(message=text)]
    if isinstance(payload, dict):
        errors = payload.get("errors")
        if isinstance(errors, list) and errors:
            return [_detail(item) for item in errors]
        single = payload.get("error") or payload.get("message")
        if single is not None:
            return [ErrorDetail(message=str(single))]
    return [ErrorDetail(message=text)]


def _detail(item: object) -> ErrorDetail:
    if isinstance(item, dict):
        field = item.get("field")
        message = item.get("message")
        return ErrorDetail(
            message=str(message) if message is not None else json.dumps(item),
            field=str(field) if field is not None else None,
        )
    return ErrorDetail(message=str(item))


def error_for_status(
    method: str,
    path: str,
    status: int,
    body: bytes,
    *,
    reset_at: datetime.datetime | None = None,
) -> SendGridError:
    """The typed error for a non-2xx answer.

    The class follows the status alone. SendGrid's messages are prose for people (a 400 may say
    "does not exist" about a custom field in the query), so they are carried in ``details``, never
    read: a 404 is :class:`SendGridNotFoundError`, every 400/409/422 is
    :class:`SendGridValidationError`.
    """
    details = error_details(body)
    where: dict[str, Any] = {"method": method, "path": path, "status_code": status, "details": details}
    if status in _REFUSED_STATUSES:
        return SendGridValidationError("SendGrid rejected the request", **where)
    if status == 401:
        return SendGridAuthError("SendGrid refused the API key (missing, wrong or revoked)", **where)
    if status == 403:
        return SendGridForbiddenError("The API key or plan may not use this endpoint", **where)
    if status == 404:
        return SendGridNotFoundError("SendGrid has nothing at this path (unknown id or route)", **where)
    if status == 429:
        when = f"; resets at {reset_at.isoformat()}" if reset_at else ""
        return SendGridRateLimitError(
            f"SendGrid rate limit or quota reached{when}", reset_at=reset_at, **where
        )
    if status >= 500:
        return SendGridServerError("SendGrid failed to handle the request", **where)
    return SendGridError("SendGrid answered with an error", **where)


def text_body(method: str, path: str, status: int, body: bytes, content_type: str) -> str:
    """The text of a 2xx answer that is text, not JSON (the stats CSV export), in either reading of
    SendGrid's docs: plain text, or (the spec's) a JSON string holding it when the answer says it
    is JSON. An empty body, or a JSON one that is not a string, is an answer cut short or malformed."""
    if "json" in content_type.lower():
        payload = parse_json(method, path, status, body, empty_ok=False)
        if not isinstance(payload, str):
            raise SendGridResponseError(
                f"SendGrid answered with JSON {type(payload).__name__} where text was expected",
                method=method,
                path=path,
                status_code=status,
            )
        return payload
    if not body.strip():
        raise SendGridResponseError(
            "SendGrid answered with an empty body where text was expected (cut short?)",
            method=method,
            path=path,
            status_code=status,
        )
    return body.decode("utf-8-sig", errors="replace")


def parse_json(method: str, path: str, status: int, body: bytes, *, empty_ok: bool) -> Any:
    """The JSON of a 2xx answer. An empty body is ``None`` where ``empty_ok`` (DELETE, refresh,
    schedule), else an error like malformed JSON: both can be an answer cut short."""
    if not body.strip():
        if empty_ok:
            return None
        raise SendGridResponseError(
            "SendGrid answered with an empty body where JSON was expected (cut short?)",
            method=method,
            path=path,
            status_code=status,
        )
    try:
        return json.loads(body)
    except ValueError:
        raise SendGridResponseError(
            "SendGrid answered with a body that is not valid JSON (truncated?)",
            method=method,
            path=path,
            status_code=status,
            details=[ErrorDetail(message=body.decode("utf-8", errors="replace"))],
        ) from None
