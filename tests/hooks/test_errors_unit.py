"""Pure mapping of SendGrid answers to typed errors (both error body shapes)."""

from __future__ import annotations

import datetime
import json

import pytest

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
from airflow_provider_sgseg.hooks._errors import error_details, error_for_status, parse_json

PATH = "/v3/marketing/segments/2.0/6b2b2a0e-7e1f-4b8b-9a53-0c1c3d5e6f70"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", []),
        (b"   ", []),
        (
            json.dumps({"errors": [{"field": "name", "message": "name already exists"}]}).encode(),
            [ErrorDetail(message="name already exists", field="name")],
        ),
        (
            json.dumps({"errors": [{"field": None, "message": "too many requests"}]}).encode(),
            [ErrorDetail(message="too many requests")],
        ),
        (
            json.dumps({"error": "Segment does not exist."}).encode(),
            [ErrorDetail(message="Segment does not exist.")],
        ),
        (b"<html>Bad Gateway</html>", [ErrorDetail(message="<html>Bad Gateway</html>")]),
        (json.dumps({"errors": ["plain string"]}).encode(), [ErrorDetail(message="plain string")]),
        (json.dumps([1, 2]).encode(), [ErrorDetail(message="[1, 2]")]),
        (b"x" * 1000, [ErrorDetail(message="x" * 300 + "… (700 more characters)")]),
    ],
)
def test_error_details_parse_every_shape(body: bytes, expected: list[ErrorDetail]) -> None:
    assert error_details(body) == expected


HTML_PAGE = (
    "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n"
    + "  <p>The upstream server did not answer in time.</p>\n" * 200
    + "</body>\n</html>\n"
).encode()


@pytest.mark.parametrize(
    "body",
    [
        HTML_PAGE,
        json.dumps({"error": HTML_PAGE.decode()}).encode(),
        json.dumps({"errors": [{"field": "query_dsl", "message": HTML_PAGE.decode()}]}).encode(),
    ],
    ids=["html page", "json error", "json errors"],
)
def test_a_long_body_is_quoted_cut_on_one_line(body: bytes) -> None:
    assert len(HTML_PAGE) > 10_000
    error = error_for_status("GET", PATH, 502, body)
    text = str(error)
    assert "<title>502 Bad Gateway</title>" in text and "\n" not in text and "  " not in text
    (detail,) = error.details
    cut = len(" ".join(HTML_PAGE.decode().split())) - 300
    assert detail.message.endswith(f"… ({cut} more characters)")
    assert len(detail.message) < 330 and len(text) < 500


def test_thousands_of_errors_are_quoted_first_few_and_counted() -> None:
    rows = [
        {"field": f"contacts[{n}].email", "message": f"row {n}: {'invalid email ' * 40}"}
        for n in range(30_000)
    ]
    error = error_for_status("PUT", "/v3/marketing/contacts", 400, json.dumps({"errors": rows}).encode())
    text = str(error)
    assert len(text) < 5_000 and "\n" not in text
    quoted = text.count("contacts[")  # each quoted detail names its field
    assert text.startswith("SendGrid rejected the request (PUT /v3/marketing/contacts -> HTTP 400): ")
    assert "contacts[0].email: row 0: invalid email" in text and 1 <= quoted <= 10
    assert text.endswith(f"; … and {30_000 - quoted} more errors (30000 in all)")
    assert len(error.details) == 30_000 and error.details[-1].field == "contacts[29999].email"


def test_a_long_field_is_cut_like_a_message() -> None:
    body = json.dumps({"errors": [{"field": "f" * 5_000, "message": "bad"}]}).encode()
    error = error_for_status("PUT", "/v3/marketing/contacts", 400, body)
    (detail,) = error.details
    assert detail.field == "f" * 100 + "… (4900 more characters)"
    assert len(str(error)) < 300


def test_at_most_ten_short_details_are_quoted() -> None:
    rows = [{"field": "email", "message": f"bad {n}"} for n in range(11)]
    text = str(error_for_status("PUT", "/v3/marketing/contacts", 400, json.dumps({"errors": rows}).encode()))
    assert "email: bad 9; … and 1 more error (11 in all)" in text and "bad 10" not in text
    exactly_ten = json.dumps({"errors": rows[:10]}).encode()
    assert str(error_for_status("PUT", "/v3/marketing/contacts", 400, exactly_ten)).endswith("email: bad 9")


ERRORS_BODY = json.dumps({"errors": [{"field": "query_dsl", "message": "invalid query"}]}).encode()


def errors(message: str, field: str | None = None) -> bytes:
    return json.dumps({"errors": [{"field": field, "message": message}]}).encode()


@pytest.mark.parametrize(
    ("method", "status", "body", "error_type"),
    [
        ("POST", 400, ERRORS_BODY, SendGridValidationError),
        # A 400 is a refusal on every method, whatever its message says.
        ("GET", 400, errors("Segment not found", "id"), SendGridValidationError),
        ("GET", 400, json.dumps({"error": "segment does not exist"}).encode(), SendGridValidationError),
        ("DELETE", 400, errors("segment doesn't exist"), SendGridValidationError),
        ("PATCH", 400, errors("custom field 'tier' does not exist", "query_dsl"), SendGridValidationError),
        ("POST", 400, errors("list does not exist"), SendGridValidationError),
        ("DELETE", 409, ERRORS_BODY, SendGridValidationError),
        ("PUT", 422, ERRORS_BODY, SendGridValidationError),
        ("GET", 401, b"", SendGridAuthError),
        ("GET", 403, b"", SendGridForbiddenError),
        ("GET", 404, b"", SendGridNotFoundError),
        ("DELETE", 404, errors("resource not found"), SendGridNotFoundError),
        ("POST", 429, b"", SendGridRateLimitError),
        ("GET", 500, json.dumps({"error": "Please check our status page"}).encode(), SendGridServerError),
        # A 5xx worded like a missing resource is still a server failure (retried).
        ("GET", 503, errors("segment not found"), SendGridServerError),
        ("GET", 503, b"Service Unavailable", SendGridServerError),
        ("GET", 408, b"", SendGridError),
        ("GET", 302, b"", SendGridError),
    ],
)
def test_error_for_status_maps_each_status(method: str, status: int, body: bytes, error_type: type) -> None:
    error = error_for_status(method, PATH, status, body)
    assert type(error) is error_type
    assert (error.method, error.path, error.status_code) == (method, PATH, status)
    text = str(error)
    assert f"{method} {PATH}" in text
    assert f"HTTP {status}" in text
    for detail in error_details(body):
        assert detail.message in text


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429, 500, 503])
def test_the_class_never_depends_on_the_wording(status: int) -> None:
    wordings = [
        "custom field 'tier' does not exist",
        "syntax error at or near 'SELEC'",
        "segment not found",
        "no such segment",
        "too many requests",
        "",
    ]
    classes = {
        type(error_for_status(method, PATH, status, errors(text, "query_dsl")))
        for text in wordings
        for method in ("GET", "POST", "PATCH", "DELETE", "PUT")
    }
    assert len(classes) == 1


def test_forbidden_is_an_auth_error() -> None:
    assert isinstance(error_for_status("POST", PATH, 403, b""), SendGridAuthError)


def test_rate_limit_error_carries_reset_time() -> None:
    reset = datetime.datetime(2026, 9, 21, 12, 0, tzinfo=datetime.timezone.utc)
    error = error_for_status(
        "POST", PATH, 429, b'{"errors":[{"field":null,"message":"too many requests"}]}', reset_at=reset
    )
    assert isinstance(error, SendGridRateLimitError)
    assert error.reset_at == reset
    assert "2026-09-21T12:00:00+00:00" in str(error)
    assert "too many requests" in str(error)


def test_parse_json_reads_objects_lists_and_allowed_empty_bodies() -> None:
    assert parse_json("GET", PATH, 200, b'{"id": "x"}', empty_ok=False) == {"id": "x"}
    assert parse_json("GET", PATH, 200, b"[1]", empty_ok=False) == [1]
    assert parse_json("DELETE", PATH, 204, b"", empty_ok=True) is None


def test_parse_json_reports_an_unexpected_empty_body() -> None:
    with pytest.raises(SendGridResponseError, match=r"empty body .*GET /v3/.*HTTP 200"):
        parse_json("GET", PATH, 200, b" ", empty_ok=False)


def test_parse_json_reports_truncated_body() -> None:
    with pytest.raises(
        SendGridResponseError, match=r"not valid JSON.*GET /v3/.*HTTP 200.*\{\"id\": \"x"
    ) as caught:
        parse_json("GET", PATH, 200, b'{"id": "x', empty_ok=True)
    assert caught.value.status_code == 200


def test_a_huge_bad_value_is_quoted_cut() -> None:
    from airflow_provider_sgseg.exceptions import SendGridInputError

    error = SendGridInputError("segment_ids", "x" * 1_000_000, "must be a list of ids")
    assert len(str(error)) < 2_700
    assert "(997502 more characters)" in str(
        error
    )  # the repr has 1,000,002 characters and str(error).endswith("must be a list of ids")
    assert error.value == "x" * 1_000_000  # the value itself is kept for the caller


def test_every_detail_is_cut_wherever_it_is_built() -> None:
    detail = ErrorDetail("m" * 1_000_000, field="f" * 500_000)
    assert len(detail.message) < 400 and len(detail.field or "") < 200
    assert len(str(SendGridError("SendGrid rejected the query", details=[detail]))) < 700
