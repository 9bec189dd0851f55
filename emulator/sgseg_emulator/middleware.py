"""ASGI layer in front of every route: auth, rate limits, the request log and injected faults."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from .clock import to_iso
from .faults import Fault
from .file_store import FILES_PREFIX
from .routing import decode_json
from .state import Emulator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ADMIN_PREFIX = "/__emulator__"
# The inspection page is for a person's browser, which sends no bearer key; it is read-only and
# shows no key and no contact data (inspect_page.py).
OPEN_ADMIN_PAGES = frozenset({("GET", "/__emulator__/inspect")})
UNAUTHORIZED = {"errors": [{"field": None, "message": "authorization required"}]}
TOO_MANY = {"errors": [{"field": None, "message": "too many requests"}]}
MALFORMED_BODY = b'{"results": [{"id": "truncated'
# Larger bodies (contact batches of up to 6 MB) are logged as their size and SHA-256, not parsed:
# a million contacts upserted must not sit in the log.
MAX_LOGGED_BODY = 64 * 1024


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that stays connected
        return {"type": "http.disconnect"}

    return receive


def _query_dict(query_string: bytes) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key in query:
            previous = query[key]
            query[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            query[key] = value
    return query


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return decode_json(body)
    except ValueError:
        return body.decode("utf-8", "replace")


async def _respond(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw_headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    if body:
        raw_headers.append((b"content-type", b"application/json"))
    raw_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


DRIP_BYTES = 8


def _dripping(send: Send, receive: Receive, seconds: float) -> Send:
    """``send`` with each response body sent ``DRIP_BYTES`` at a time, ``seconds`` apart: every
    piece comes well within a read timeout, the whole answer long after it. Stops once the
    client has gone (``receive`` then says ``http.disconnect``)."""
    gone = asyncio.ensure_future(receive())

    async def drip(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
            return
        payload: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        for start in range(0, len(payload), DRIP_BYTES):
            last = start + DRIP_BYTES >= len(payload)
            await send(
                {
                    "type": "http.response.body",
                    "body": payload[start : start + DRIP_BYTES],
                    "more_body": more or not last,
                }
            )
            if not last:
                await asyncio.wait({gone}, timeout=seconds)
                if gone.done():
                    return
        if not payload:
            await send(message)
        if not more:
            gone.cancel()

    return drip


async def _drop_connection(original_receive: Receive) -> None:
    """Close the TCP connection without answering (the client sees a protocol/read error)."""
    transport = getattr(getattr(original_receive, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("emulator fault: drop the connection")
    transport.close()
    await asyncio.sleep(0.01)  # let the server notice the disconnect before it tries a 500


class EmulatorMiddleware:
    """ASGI middleware in front of the app: bearer auth, armed faults, the rate limit (429 with
    ``X-RateLimit-*``) and the request log."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    def _authorized(self, scope: Scope) -> bool:
        expected = f"Bearer {self.emulator.config.api_key}".encode()
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                return hmac.compare_digest(value, expected)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        is_admin = path.startswith(ADMIN_PREFIX)
        is_file = path.startswith(FILES_PREFIX)
        # File uploads stream through (a CSV import may be gigabytes); API bodies are read once.
        body = b"" if is_file else await _read_body(receive)
        entry: dict[str, Any] | None = None
        if not is_admin:
            entry = {
                "method": method,
                "path": path,
                "query": _query_dict(scope.get("query_string", b"")),
                "json": None if is_file or len(body) > MAX_LOGGED_BODY else _json_or_none(body),
                "status": None,
                "time": to_iso(self.emulator.now()),
                "fault": None,
            }
            if len(body) > MAX_LOGGED_BODY:
                entry.update(body_bytes=len(body), body_sha256=hashlib.sha256(body).hexdigest())
            self.emulator.log_request(entry)
        if entry is not None and is_file:
            await self._handle_file(scope, receive, send, entry)
            return
        await self._handle(scope, receive, send, body, entry, is_admin)

    async def _handle_file(self, scope: Scope, receive: Receive, send: Send, entry: dict[str, Any]) -> None:
        """The file host (S3's stand-in): no API key, no SendGrid rate limit, faults "before" only."""

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        fault = self.emulator.faults.take(scope["method"], scope["path"])
        if fault is None:
            await self.app(scope, receive, send_logged)
            return
        entry["fault"] = fault.kind
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            await self.app(scope, receive, send_logged)
            return

        def record(status: int | None) -> None:
            entry["status"] = status

        await self._apply(fault, receive, send, {}, record)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        entry: dict[str, Any] | None,
        is_admin: bool,
    ) -> None:
        rate = self.emulator.count_request() if not is_admin else None
        extra_headers = dict(rate.headers) if rate is not None else {}

        def record(status: int | None) -> None:
            if entry is not None:
                entry["status"] = status

        if not self._authorized(scope) and (scope["method"], scope["path"]) not in OPEN_ADMIN_PAGES:
            record(401)
            await _respond(send, 401, json.dumps(UNAUTHORIZED).encode(), extra_headers)
            return
        if rate is not None and not rate.allowed:
            record(429)
            reset = extra_headers["X-RateLimit-Reset"]
            retry = max(1, int(float(reset) - self.emulator.now().timestamp()))
            await _respond(
                send, 429, json.dumps(TOO_MANY).encode(), {**extra_headers, "Retry-After": str(retry)}
            )
            return
        fault = None if is_admin else self.emulator.faults.take(scope["method"], scope["path"])
        if entry is not None and fault is not None:
            entry["fault"] = fault.kind

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                record(message["status"])
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name.lower().encode(), value.encode())
                    for name, value in extra_headers.items()
                    if name.lower().encode() not in present
                ]
            await send(message)

        if fault is None:
            await self.app(scope, _replay(body), send_with_headers)
            return
        if fault.when == "after" or fault.kind == "drip":
            # The request takes full effect; only the answer the client gets is replaced.
            captured: list[Message] = []

            async def swallow(message: Message) -> None:
                captured.append(message)

            await self.app(scope, _replay(body), swallow)
            if fault.kind == "drip":  # its answer trickles out
                drip = _dripping(send_with_headers, receive, fault.seconds)
                for message in captured:
                    await drip(message)
                return
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
                for message in captured:
                    await send_with_headers(message)
                return
            await self._apply(fault, receive, send, extra_headers, record)
            return
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            await self.app(scope, _replay(body), send_with_headers)
            return
        await self._apply(fault, receive, send, extra_headers, record)

    async def _apply(
        self,
        fault: Fault,
        receive: Receive,
        send: Send,
        extra_headers: dict[str, str],
        record: Callable[[int | None], None],
    ) -> None:
        if fault.kind == "drop":
            record(None)
            await _drop_connection(receive)
            return
        headers = {**extra_headers, **fault.headers}
        if fault.kind == "malformed":
            record(fault.response_status)
            await _respond(send, fault.response_status, MALFORMED_BODY, headers)
            return
        record(fault.response_status)
        payload = b"" if fault.body is None else json.dumps(fault.body).encode()
        await _respond(send, fault.response_status, payload, headers)
