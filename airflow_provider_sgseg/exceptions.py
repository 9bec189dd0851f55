"""Typed errors raised by the provider.

Two families:

* :class:`SendGridInputError` (a ``ValueError``): the caller's input breaks a rule that is
  knowable client-side. Raised before any HTTP request is sent.
* :class:`SendGridError`: SendGrid (or the network) answered with a failure. Carries the HTTP
  method, path, status and SendGrid's own messages. Never carries the API key.

The tree (``*``: also an ``AirflowFailException``: a definitive answer, so a task raising it fails
without using up its retries; every other error leaves the task's retries to apply)::

    ValueError
    └── SendGridInputError *
        ├── SendGridRowError *
        └── SendGridFileError *
    SendGridError
    ├── SendGridTransportError
    ├── SendGridAuthError
    │   ├── SendGridConfigError *
    │   └── SendGridForbiddenError
    │       └── SendGridFileURLError
    ├── SendGridNotFoundError
    ├── SendGridValidationError
    ├── SendGridRateLimitError
    ├── SendGridServerError
    ├── SendGridResponseError
    └── SegmentQueryInvalidError *
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_sgseg.version_compat import AirflowFailException

MAX_QUOTED = 300  # characters of one message an error quotes
MAX_QUOTED_FIELD = 100  # characters of one detail's field (SendGrid's: names like contacts[3].email)
MAX_QUOTED_VALUE = 2500  # characters of a bad value's repr (a list of 50 ids fits)
_CUT = re.compile(r"… \((\d+) more characters\)$")


def shorten(text: str, limit: int = MAX_QUOTED, *, one_line: bool = True) -> str:
    """``text`` (on one line, whitespace runs collapsed, unless ``one_line`` is False) cut to
    ``limit`` characters, saying how many more there were. Text it already cut stays as it is."""
    flat = " ".join(text.split()) if one_line else text
    cut = _CUT.search(flat)
    if len(flat) <= limit or (cut is not None and cut.start() <= limit):
        return flat
    return f"{flat[:limit]}… ({len(flat) - limit} more characters)"


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of SendGrid's ``{"errors": [{"field", "message"}]}`` (or ``{"error": ...}``):
    ``message`` on one line, cut to 300 characters; ``field`` to 100."""

    message: str
    field: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", shorten(str(self.message)))
        if self.field is not None:
            object.__setattr__(self, "field", shorten(str(self.field), MAX_QUOTED_FIELD))

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


MAX_QUOTED_DETAILS = 10  # an error's text quotes at most this many details ...
MAX_QUOTED_DETAILS_CHARS = 2000  # ... and stops once they fill this many characters


def quoted_details(details: Sequence[ErrorDetail]) -> str:
    """``details`` joined with ``; `` for an error's text: the first 10 at most (fewer once they
    fill 2,000 characters), then ``… and K more errors (N in all)``. A body refusing 30,000
    rows stays a short text; ``SendGridError.details`` keeps them all."""
    quoted: list[str] = []
    size = 0
    for detail in details[:MAX_QUOTED_DETAILS]:
        if quoted and size >= MAX_QUOTED_DETAILS_CHARS:
            break
        quoted.append(str(detail))
        size += len(quoted[-1]) + 2
    more = len(details) - len(quoted)
    tail = [f"… and {more} more error{'s' if more > 1 else ''} ({len(details)} in all)"] if more else []
    return "; ".join(quoted + tail)


class SendGridInputError(ValueError, AirflowFailException):
    """Input that breaks a rule checked before any request: names the value (its repr cut to
    2,500 characters: a template may render a whole XCom) and the rule.

    Also an ``AirflowFailException``: a retry renders the same input, so the task fails at once
    instead of using up its retries (``except ValueError`` still catches it)."""

    def __init__(self, name: str, value: object, rule: str) -> None:
        self.name = name
        self.value = value
        self.rule = rule
        super().__init__(f"Invalid {name} {shorten(repr(value), MAX_QUOTED_VALUE, one_line=False)}: {rule}")


MAX_SHOWN_ROW_VALUE = 80  # characters of a bad row value an error or report quotes


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``did you mean 'email'?`` for the name in ``known`` nearest to ``name`` (case ignored), or
    ``""`` when none is near (:func:`difflib.get_close_matches`)."""
    by_lower = {str(item).lower(): str(item) for item in known}
    found = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1)
    return f"did you mean {by_lower[found[0]]!r}?" if found else ""


class SendGridRowError(SendGridInputError):
    """One source row breaks a rule: ``row`` (1-based), ``column``, ``value`` and ``rule``; ``where``
    the row is in its source when known (``line 11 of contacts.csv``, see :meth:`at`).

    Reads ``row 10 (line 11 of contacts.csv): column 'email' value 'x': not a valid email address``;
    a rule about the whole row (``column="*"``) or one that names its columns itself
    (``quote=False``) leaves the column out: ``row 10: no identifier (email, ...)``.
    """

    def __init__(
        self, row: int, column: str, value: object, rule: str, *, quote: bool = True, where: str | None = None
    ) -> None:
        self.row = row
        self.column = column
        self.quote = quote
        self.where = where
        super().__init__(f"row {row} column {column!r}", value, rule)
        self.args = (self._text(),)

    def at(self, where: str | None) -> SendGridRowError:
        """This error, saying ``where`` the row is in its source (nothing changes for None)."""
        if where:
            self.where = where
            self.args = (self._text(),)
        return self

    def _text(self) -> str:
        shown = repr(self.value)
        if len(shown) > MAX_SHOWN_ROW_VALUE:
            shown = shown[:MAX_SHOWN_ROW_VALUE] + "..."
        place = f"row {self.row} ({self.where})" if self.where else f"row {self.row}"
        if self.column == "*":
            return f"{place}: {self.rule}: {shown}"
        if not self.quote:
            return f"{place}: {self.rule}"
        return f"{place}: column {self.column!r} value {shown}: {self.rule}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe report entry (XCom): row, column, value (as text, shortened) and rule."""
        text = str(self.value)
        return {
            "row": self.row,
            "column": self.column,
            "value": text if len(text) <= MAX_SHOWN_ROW_VALUE else text[:MAX_SHOWN_ROW_VALUE] + "...",
            "rule": self.rule,
        }


class SendGridFileError(SendGridInputError):
    """A file breaks a rule: a source file (unreadable, not UTF-8, a line or a download beyond its
    bound, not CSV) or a downloaded export file. Names the file (a path, or a URL without its
    signature), the line when known, and the rule."""

    def __init__(self, path: str, rule: str, *, line: int | None = None) -> None:
        self.path = path
        self.line = line
        super().__init__("file", path, f"line {line}: {rule}" if line is not None else rule)


class SendGridError(Exception):
    """SendGrid answered a request with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status_code: int | None = None,
        details: Sequence[ErrorDetail] = (),
    ) -> None:
        self.method = method
        self.path = path
        self.status_code = status_code
        self.details = tuple(details)
        where = f"{method} {path}" if method and path else (path or "")
        status = f" -> HTTP {status_code}" if status_code is not None else ""
        reasons = quoted_details(self.details)
        text = f"{message} ({where}{status})" if where or status else message
        super().__init__(f"{text}: {reasons}" if reasons else text)


class SendGridTransportError(SendGridError):
    """The request did not get an HTTP answer (connection refused or dropped, timeout)."""


class SendGridAuthError(SendGridError):
    """401: the API key is missing, wrong or revoked."""


class SendGridConfigError(SendGridAuthError, AirflowFailException):  # type: ignore[misc]  # status_code: ours wins
    """The Airflow connection cannot work as set up: names the connection id and the rule broken.

    Raised before any request for a missing or malformed API key and for a host that cannot be a
    SendGrid API base URL; raised after one when the segment list endpoint, which exists at every
    SendGrid base URL, answers 404 (the host is not SendGrid's API). Never carries the key.
    Also an ``AirflowFailException``: retrying cannot fix a connection; fix it and clear the task.
    """


class SendGridForbiddenError(SendGridAuthError):
    """403: the key or the plan may not use this endpoint (manual refresh needs a paid plan)."""


class SendGridFileURLError(SendGridForbiddenError):
    """401/403 from the file host of a pre-signed URL SendGrid handed out (an export file, an
    import upload): the URL expired or is no longer valid. Not an API-key problem: the key is
    never sent there; a fresh URL comes from SendGrid again. A subclass of
    :class:`SendGridForbiddenError` only because such 403s were raised as that before."""


class SendGridNotFoundError(SendGridError):
    """404: nothing at this path. With a right base URL the resource in the path does not exist; a
    wrong base URL answers 404 too (``SendGridMarketingHook.segment_exists`` tells them apart)."""


class SendGridValidationError(SendGridError):
    """400, 409 or 422: SendGrid refused the request as sent (its body, parameters or the state of the
    resource); the same request cannot succeed. ``details`` holds SendGrid's field and message."""


class SendGridRateLimitError(SendGridError):
    """429: a rate limit or quota was hit. ``reset_at`` is when SendGrid said it resets, if it said."""

    def __init__(self, message: str, *, reset_at: datetime.datetime | None = None, **kwargs: object) -> None:
        self.reset_at = reset_at
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class SendGridServerError(SendGridError):
    """5xx: SendGrid failed; usually transient."""


class SendGridResponseError(SendGridError):
    """SendGrid answered 2xx with a body that is not the JSON we expected."""


class SegmentQueryInvalidError(SendGridError, AirflowFailException):  # type: ignore[misc]  # status_code: ours wins
    """SendGrid validated the segment's ``query_dsl`` as INVALID; ``details`` holds its message.
    Also an ``AirflowFailException``: retrying cannot fix a query."""
