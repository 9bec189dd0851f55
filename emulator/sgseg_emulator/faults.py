"""Injected faults: "for the next N requests matching METHOD + path, misbehave like this"."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("status", "delay", "drop", "malformed", "drip")
WHEN = ("before", "after")
MAX_TIMES = 1_000_000
MAX_DELAY = 3600.0  # seconds: a delay fault longer than any client timeout worth testing
# HTTP answers that carry no body: one sent anyway is read as the start of the next answer on
# the connection, so it would break a request the fault was not meant for.
NO_BODY_STATUSES = frozenset({204, 304})
# Headers the emulator writes itself (the body's framing); a fault's own would contradict them.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # an RFC 9110 token
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*\Z")  # visible ASCII, spaces and tabs: no CR/LF


@dataclass
class Fault:
    """``kind``: status (answer ``status`` with ``headers``/``body``), delay (wait ``seconds``),
    drop (close the connection without an answer), malformed (invalid JSON with ``status``) or
    drip (the real answer, its body sent 8 bytes at a time, one piece every ``seconds``).
    ``when="after"`` lets the request take effect first and then replaces its answer.
    """

    kind: str
    method: str | None = None
    path: str | None = None  # regular expression, searched in the request path
    path_prefix: str | None = None
    times: int = 1
    when: str = "before"
    status: int | None = None  # default: 500 for status, 200 for malformed
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.when not in WHEN:
            raise ValueError(f"when must be 'before' or 'after', got {self.when!r}")
        if (
            isinstance(self.times, bool)
            or not isinstance(self.times, int)
            or not 1 <= self.times <= MAX_TIMES
        ):
            raise ValueError(f"times must be an integer from 1 to {MAX_TIMES}, got {self.times!r}")
        if self.status is not None and not (
            isinstance(self.status, int) and not isinstance(self.status, bool) and 200 <= self.status <= 599
        ):
            raise ValueError(
                f"status must be an HTTP status code from 200 to 599 (a 1xx is no final answer), "
                f"got {self.status!r}"
            )
        if self.response_status in NO_BODY_STATUSES and (self.kind == "malformed" or self.body is not None):
            raise ValueError(f"a {self.response_status} answer has no body: drop body, or use another status")
        seconds = self.seconds
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_DELAY:
            raise ValueError(f"seconds must be a number from 0 to {MAX_DELAY}, got {seconds!r}")
        if self.kind in ("delay", "drip") and not seconds > 0:
            raise ValueError(f"a {self.kind} fault needs seconds > 0, got {seconds!r}")
        for name in ("method", "path", "path_prefix"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()
        ):
            raise ValueError(f"headers must map names to string values, got {self.headers!r}")
        for name, value in self.headers.items():
            if not _HEADER_NAME.match(name) or name.lower() in FRAMING_HEADERS:
                raise ValueError(
                    f"headers: {name!r} is not a header name a fault may set (an HTTP token, not "
                    f"{', '.join(sorted(FRAMING_HEADERS))})"
                )
            if not _HEADER_VALUE.match(value):
                raise ValueError(f"headers: the value of {name!r} must be printable ASCII, got {value!r}")
        if self.path is not None:
            try:
                re.compile(self.path)
            except re.error as error:
                raise ValueError(f"path must be a regular expression: {error}") from None
        if self.method is not None:
            self.method = self.method.upper()

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        if "kind" not in data:
            raise ValueError("kind is required")
        return cls(**data)

    @property
    def response_status(self) -> int:
        if self.status is not None:
            return self.status
        return 200 if self.kind == "malformed" else 500

    def matches(self, method: str, path: str) -> bool:
        if self.method not in (None, "*") and self.method != method.upper():
            return False
        if self.path_prefix is not None and not path.startswith(self.path_prefix):
            return False
        return self.path is None or re.search(self.path, path) is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    """Armed faults, consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, counting one use of it."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def armed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]
