"""Errors the emulator answers with, in SendGrid's shapes."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Ends a request with ``status`` and ``body`` (None = no body) plus optional headers."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


class FieldErrors:
    """Collects ``{"field", "message"}`` entries and raises them together as one 400."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, field: str | None, message: str) -> None:
        """Record that ``field`` (None: the request as a whole) breaks a rule."""
        self.items.append({"field": field, "message": message})

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, status: int = 400) -> None:
        """Raise every recorded error as one ``ApiError`` (``status``, default 400); nothing if none."""
        if self.items:
            raise ApiError(status, {"errors": self.items})


def errors_body(message: str, field: str | None = None) -> dict[str, Any]:
    return {"errors": [{"field": field, "message": message}]}


def bad_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, errors_body(message, field))


def not_found(message: str, field: str | None = None) -> ApiError:
    return ApiError(404, errors_body(message, field))
