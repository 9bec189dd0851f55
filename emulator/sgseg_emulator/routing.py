"""Small helpers shared by the route modules: request parsing and paging."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from .errors import ApiError, bad_request

if TYPE_CHECKING:
    from .state import Emulator


def emulator_of(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


# The emulator's own bound (SendGrid documents none; no SendGrid body nests deeper than 5):
# deeper JSON is refused with a 400 rather than exhausting Python's recursion.
MAX_JSON_DEPTH = 32


def decode_json(raw: bytes) -> Any:
    """``raw`` decoded; ``ValueError`` when it is not JSON or nests deeper than ``MAX_JSON_DEPTH``."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_JSON_DEPTH:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json(raw: bytes, *, required: bool = True) -> Any:
    """A JSON request body; 400 in SendGrid's shape when it is missing or not JSON."""
    if not raw.strip():
        if required:
            raise bad_request("a JSON request body is required", "body")
        return None
    try:
        return decode_json(raw)
    except ValueError as error:
        raise bad_request(f"request body is not valid JSON: {error}", "json.decode failed") from error


def parse_json_object(raw: bytes) -> dict[str, Any]:
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", "body")
    return body


# Route functions are plain ``def``: FastAPI runs them in its threadpool, so SQLite work never
# blocks the event loop. Reading the body is async, so it comes in through these dependencies.
async def _raw_body(request: Request) -> bytes:
    return await request.body()


async def _json_object(request: Request) -> dict[str, Any]:
    return parse_json_object(await request.body())


async def _json(request: Request) -> Any:
    return parse_json(await request.body())


async def _optional_json(request: Request) -> Any:
    return parse_json(await request.body(), required=False)


async def _lenient_json(request: Request) -> Any:
    try:
        return parse_json(await request.body(), required=False)
    except ApiError:
        return None


RawBody = Annotated[bytes, Depends(_raw_body)]
JsonBody = Annotated[Any, Depends(_json)]
JsonObject = Annotated[dict[str, Any], Depends(_json_object)]
OptionalJson = Annotated[Any, Depends(_optional_json)]
# None when the body is missing or not JSON (the route answers in its own error shape).
LenientJson = Annotated[Any, Depends(_lenient_json)]


def parse_bool(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise bad_request(f"{name} must be true or false, got {value!r}", name)


def csv_values(values: list[str]) -> list[str]:
    """Values of a repeated and/or comma-separated query parameter."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def page_params(request: Request, *, default_size: int, max_size: int) -> tuple[int, int]:
    """(page_size, offset) from ``page_size`` and the opaque ``page_token`` (an offset here)."""
    raw_size = request.query_params.get("page_size")
    raw_token = request.query_params.get("page_token") or "0"
    try:
        size = int(raw_size) if raw_size else default_size
    except ValueError:
        size = -1
    if not 1 <= size <= max_size:
        raise bad_request(f"page_size must be an integer from 1 to {max_size}", "page_size")
    # Tokens are offsets below SQLite's integer range; anything else was never issued.
    if not (raw_token.isascii() and raw_token.isdigit() and len(raw_token) <= 18):
        raise bad_request("page_token is not a token this server issued", "page_token")
    return size, int(raw_token)


def page_metadata(request: Request, size: int, offset: int, total: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {"self": str(request.url), "count": total}
    if offset + size < total:
        metadata["next"] = str(request.url.include_query_params(page_size=size, page_token=offset + size))
    if offset > 0:
        metadata["prev"] = str(
            request.url.include_query_params(page_size=size, page_token=max(0, offset - size))
        )
    return metadata
