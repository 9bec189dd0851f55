"""Narrow unit tests for SendGridMarketingHook with respx faking SendGrid (no network, no emulator).

Integration against the emulator lives in test_marketing_emulator.py.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from airflow_provider_sgseg import __version__
from airflow_provider_sgseg.exceptions import (
    SendGridAuthError,
    SendGridConfigError,
    SendGridError,
    SendGridForbiddenError,
    SendGridInputError,
    SendGridNotFoundError,
    SendGridRateLimitError,
    SendGridResponseError,
    SendGridServerError,
    SendGridTransportError,
    SendGridValidationError,
)
from airflow_provider_sgseg.hooks import marketing
from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook

KEY = "SG.unit-KEY-7f3c9e1d-must-never-leak"
NOW = 1_790_000_000.0
SEG = "6b2b2a0e-7e1f-4b8b-9a53-0c1c3d5e6f70"
SEG2 = "0f6c3f7d-2b9e-4c55-8f1a-7d3e2c1b0a99"
LIST = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
SS = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98"
SEGMENTS = "/v3/marketing/segments/2.0"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def segment(segment_id: str = SEG, name: str = "Buyers") -> dict[str, Any]:
    return {"id": segment_id, "name": name, "contacts_count": 3, "query_dsl": "SELECT 1"}


def errors(message: str, field: str | None = None) -> dict[str, Any]:
    return {"errors": [{"field": field, "message": message}]}


@dataclass
class FakeSendGrid:
    """Answers requests from a script of replies; the last reply repeats."""

    replies: list[Reply]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


@dataclass
class Sleeps:
    sync: list[float] = field(default_factory=list)
    async_: list[float] = field(default_factory=list)

    async def asleep(self, seconds: float) -> None:
        self.async_.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def policy(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=4, initial_wait=1.0, max_wait=60.0, jitter=0.0, sleep=sleeps.sync.append,
        async_sleep=sleeps.asleep, clock=lambda: NOW,
    )  # fmt: skip


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define an Airflow connection through AIRFLOW_CONN_<ID>; returns its id."""

    def define(conn_id: str = "sendgrid_unit", **fields: Any) -> str:
        conn = {"conn_type": "sendgrid_marketing", "password": KEY, **fields}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return define


@pytest.fixture
def sendgrid_api() -> Iterator[respx.MockRouter]:
    """Every HTTP request of the test goes to the route a test installs (none reaches a network)."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


def answer_with(router: respx.MockRouter, fake: FakeSendGrid) -> FakeSendGrid:
    """Let ``fake`` answer every request (replacing what answered before)."""
    router.route(name="sendgrid").mock(side_effect=fake)
    return fake


@pytest.fixture
def make_hook(
    connection: Callable[..., str], policy: RetryPolicy, sendgrid_api: respx.MockRouter
) -> Callable[..., tuple[SendGridMarketingHook, FakeSendGrid]]:
    def make(
        *replies: Reply, conn_id: str = "sendgrid_unit", **conn_fields: Any
    ) -> tuple[SendGridMarketingHook, FakeSendGrid]:
        connection(conn_id, **conn_fields)
        fake = answer_with(sendgrid_api, FakeSendGrid(list(replies) or [httpx.Response(200, json={})]))
        return SendGridMarketingHook(conn_id, retry=policy), fake

    return make


MakeHook = Callable[..., tuple[SendGridMarketingHook, FakeSendGrid]]


@pytest.fixture(autouse=True)
async def _close_shared_async_clients() -> AsyncIterator[None]:
    yield
    await marketing.aclose_shared_clients()


# ---------------------------------------------------------------------------- connection


def test_sends_auth_user_agent_and_json_headers(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200, json={"results": []}))
    hook.list_segments()
    headers = fake.requests[0].headers
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["User-Agent"] == f"airflow-provider-sgseg/{__version__}"
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/json"
    assert "on-behalf-of" not in headers
    assert str(fake.requests[0].url) == "https://api.sendgrid.com/v3/marketing/segments/2.0"


def test_on_behalf_of_extra_becomes_header(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200, json=[]), extra=json.dumps({"on_behalf_of": "eu-subuser"}))
    hook.list_segments()
    assert fake.requests[0].headers["on-behalf-of"] == "eu-subuser"


@pytest.mark.parametrize("subuser", ["sübuser", "sub\nuser", "sub\x00user", "подписчик"])
def test_a_subuser_a_header_cannot_carry_is_a_config_error_when_the_connection_is_read(
    make_hook: MakeHook, subuser: str
) -> None:
    hook, fake = make_hook(httpx.Response(200, json=[]), extra=json.dumps({"on_behalf_of": subuser}))
    with pytest.raises(SendGridConfigError, match=r"on_behalf_of.*printable ASCII"):
        hook.get_conn()
    with pytest.raises(SendGridConfigError, match="on_behalf_of"):
        hook.list_segments()
    ok, message = hook.test_connection()
    assert not ok and "on_behalf_of" in message and KEY not in message
    assert fake.requests == []


def test_numeric_subuser_id_and_blank_subuser(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200, json=[]), extra=json.dumps({"on_behalf_of": 12345}))
    hook.list_segments()
    assert fake.requests[0].headers["on-behalf-of"] == "12345"
    hook, fake = make_hook(
        httpx.Response(200, json=[]), conn_id="sendgrid_blank", extra=json.dumps({"on_behalf_of": " "})
    )
    hook.list_segments()
    assert "on-behalf-of" not in fake.requests[0].headers


def test_prefixed_form_extra_is_understood(make_hook: MakeHook) -> None:
    extra = {"extra__sendgrid_marketing__on_behalf_of": "legacy-sub"}
    hook, fake = make_hook(httpx.Response(200, json=[]), extra=json.dumps(extra))
    hook.list_segments()
    assert fake.requests[0].headers["on-behalf-of"] == "legacy-sub"


@pytest.mark.parametrize(
    ("host", "port", "base"),
    [
        ("api.eu.sendgrid.com", None, "https://api.eu.sendgrid.com"),
        ("https://api.eu.sendgrid.com/", None, "https://api.eu.sendgrid.com"),
        ("", None, "https://api.sendgrid.com"),
        ("http://127.0.0.1:8025", None, "http://127.0.0.1:8025"),
        ("http://127.0.0.1", 8026, "http://127.0.0.1:8026"),
        # Copied from a generic HTTP connection: the API's /v3 prefix is part of every request path.
        ("https://api.sendgrid.com/v3", None, "https://api.sendgrid.com"),
        ("https://api.sendgrid.com/v3/", None, "https://api.sendgrid.com"),
        ("api.sendgrid.com/v3", None, "https://api.sendgrid.com"),
        ("api.eu.sendgrid.com/v3/", None, "https://api.eu.sendgrid.com"),
        ("http://127.0.0.1:8025/v3/", None, "http://127.0.0.1:8025"),
        ("http://127.0.0.1/v3", 8027, "http://127.0.0.1:8027"),
        ("  HTTPS://API.SendGrid.com/  ", None, "https://api.sendgrid.com"),
    ],
)
def test_base_url_comes_from_host(make_hook: MakeHook, host: str, port: int | None, base: str) -> None:
    fields: dict[str, Any] = {"host": host} if port is None else {"host": host, "port": port}
    hook, fake = make_hook(httpx.Response(200, json=[]), httpx.Response(200, json=segment()), **fields)
    hook.list_segments()
    hook.get_segment(SEG)
    assert [str(r.url) for r in fake.requests] == [
        f"{base}/v3/marketing/segments/2.0",
        f"{base}/v3/marketing/segments/2.0/{SEG}?contacts_sample=true",
    ]


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("https://api.sendgrid.com/v3?on_behalf_of=sub", "has a query string or fragment"),
        ("https://api.sendgrid.com/?", "has a query string or fragment"),
        ("https://api.sendgrid.com/v3#segments", "has a query string or fragment"),
        ("https://api.sendgrid.com/v3/marketing", "has a path other than /v3"),
        ("https://proxy.example.com/sendgrid", "has a path other than /v3"),
        ("api.sendgrid.com/v3/v3", "has a path other than /v3"),
        ("ftp://api.sendgrid.com", "uses the scheme 'ftp'"),
        ("smtp://smtp.sendgrid.net:587", "uses the scheme 'smtp'"),
        ("https://", "has no valid host name"),
        ("https:///v3", "has no valid host name"),
        ("https://api sendgrid.com", "has no valid host name"),
        ("https://api.sendgrid.com:99999", "port 99999 is not between 1 and 65535"),
        (f"https://apikey:{KEY}@api.sendgrid.com", "carries user info"),
        (f"https://api.sendgrid.com/{KEY}", "host 'https://api.sendgrid.com/***' has a path other than /v3"),
    ],
)
def test_host_that_cannot_be_a_base_url_is_refused_before_any_request(
    make_hook: MakeHook, host: str, problem: str
) -> None:
    hook, fake = make_hook(httpx.Response(200, json=[]), conn_id="sendgrid_bad_host", host=host)
    with pytest.raises(SendGridConfigError) as caught:
        hook.list_segments()
    message = str(caught.value)
    assert message.startswith("Connection 'sendgrid_bad_host': ")
    assert problem in message
    assert "must be a SendGrid API base URL" in message
    assert KEY not in message
    assert isinstance(caught.value, SendGridAuthError)  # a configuration problem, like a missing key
    ok, tested = hook.test_connection()
    assert (ok, tested) == (False, message)
    assert fake.requests == []


def test_timeout_extra_sets_client_timeouts(make_hook: MakeHook) -> None:
    hook, _ = make_hook(extra=json.dumps({"timeout": "45"}))
    timeout = hook.get_conn().timeout
    assert (timeout.read, timeout.write, timeout.connect) == (45.0, 45.0, 10.0)
    hook_default, _ = make_hook(conn_id="sendgrid_default_timeout")
    assert hook_default.get_conn().timeout.read == 30.0


# "inf", Infinity and 1e308 overflowed the socket's timeout (OverflowError from every call)
@pytest.mark.parametrize("bad", ["soon", -3, 0, "inf", float("inf"), 1e308, 3601])
def test_bad_timeout_extra_is_a_clear_error(make_hook: MakeHook, bad: object) -> None:
    hook, fake = make_hook(extra=json.dumps({"timeout": bad}))
    with pytest.raises(SendGridInputError, match=r"'sendgrid_unit'.*timeout"):
        hook.list_segments()
    assert fake.requests == []


def test_missing_api_key_names_the_connection(
    connection: Callable[..., str], policy: RetryPolicy, sendgrid_api: respx.MockRouter
) -> None:
    connection("sendgrid_nokey", password="")
    fake = answer_with(sendgrid_api, FakeSendGrid([httpx.Response(200, json=[])]))
    hook = SendGridMarketingHook("sendgrid_nokey", retry=policy)
    with pytest.raises(SendGridAuthError, match="Connection 'sendgrid_nokey' has no API key"):
        hook.list_segments()
    assert fake.requests == []
    assert hook.test_connection() == (
        False,
        "Connection 'sendgrid_nokey' has no API key: put the SendGrid API key in its password field",
    )


def test_client_is_built_once_and_reused(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200, json=[]))
    first = hook.get_conn()
    hook.list_segments()
    hook.list_segments()
    assert hook.get_conn() is first
    assert len(fake.requests) == 2
    hook.close()
    assert first.is_closed


def test_constructing_the_hook_looks_nothing_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise AssertionError("connection looked up in __init__")

    monkeypatch.setattr(SendGridMarketingHook, "get_connection", explode)
    hook = SendGridMarketingHook("anything")
    assert hook.sendgrid_conn_id == "anything"


# ------------------------------------------------------------------------------- segments


def test_list_segments_query_parameters(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200, json={"results": []}))
    hook.list_segments(ids=[SEG, SEG2], parent_list_ids=[LIST], no_parent_list_id=True)
    params = fake.requests[0].url.params
    assert params.get_list("ids") == [SEG, SEG2]
    assert params["parent_list_ids"] == LIST
    assert params["no_parent_list_id"] == "true"
    hook.list_segments(parent_list_ids=f"{LIST},{SEG}")
    params = fake.requests[1].url.params
    assert params["parent_list_ids"] == f"{LIST},{SEG}"
    assert "no_parent_list_id" not in params
    assert "ids" not in params


@pytest.mark.parametrize("body", [{"results": [segment()]}, [segment()]])
def test_list_segments_accepts_results_wrapper_and_bare_list(make_hook: MakeHook, body: object) -> None:
    hook, _ = make_hook(httpx.Response(200, json=body))
    assert hook.list_segments() == [segment()]


@pytest.mark.parametrize("body", [{"result": []}, "text", [1, 2]])
def test_list_segments_rejects_other_shapes(make_hook: MakeHook, body: object) -> None:
    hook, fake = make_hook(httpx.Response(200, json=body))
    with pytest.raises(SendGridResponseError, match=r"GET /v3/marketing/segments/2\.0"):
        hook.list_segments()
    assert len(fake.requests) == 1  # a well-formed but unexpected body is not retried


def test_get_segment(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200, json=segment()))
    assert hook.get_segment(SEG) == segment()
    hook.get_segment(SEG, contacts_sample=False)
    assert [str(r.url) for r in fake.requests] == [
        f"https://api.sendgrid.com{SEGMENTS}/{SEG}?contacts_sample=true",
        f"https://api.sendgrid.com{SEGMENTS}/{SEG}?contacts_sample=false",
    ]


@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (httpx.Response(404), SendGridNotFoundError),
        (httpx.Response(404, json=errors("resource not found")), SendGridNotFoundError),
        # A 400 is a refusal whatever its words: only a 404 means "nothing at this path".
        (httpx.Response(400, json=errors("segment does not exist", "segment_id")), SendGridValidationError),
        (httpx.Response(400, json={"error": "Segment not found"}), SendGridValidationError),
    ],
)
def test_get_segment_error_class_follows_the_status(
    make_hook: MakeHook, reply: httpx.Response, error_type: type
) -> None:
    hook, fake = make_hook(reply)
    with pytest.raises(error_type, match=f"GET {SEGMENTS}/{SEG} -> HTTP {reply.status_code}"):
        hook.get_segment(SEG)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "message",
    [
        "custom field 'tier' does not exist",  # the field report: a PATCH retried as "not found"
        "syntax error at or near 'SELEC'",
        "segment not found",
        "no such table: contact_dat",
    ],
)
@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("PATCH", lambda h: h.update_segment(SEG, query_dsl="SELECT c.contact_id FROM contact_data c")),
        ("POST", lambda h: h.create_segment("Buyers", "SELECT 1")),
        ("DELETE", lambda h: h.delete_segment(SEG)),
        ("POST", lambda h: h.refresh_segment(SEG, "UTC")),
        ("PUT", lambda h: h.schedule_single_send(SS)),
    ],
)
def test_every_400_on_a_write_is_a_refusal_whatever_its_wording(
    make_hook: MakeHook, method: str, call: Callable[[SendGridMarketingHook], object], message: str
) -> None:
    hook, fake = make_hook(httpx.Response(400, json=errors(message, "query_dsl")))
    with pytest.raises(SendGridValidationError) as caught:
        call(hook)
    assert type(caught.value) is SendGridValidationError
    assert f"query_dsl: {message}" in str(caught.value)
    assert [r.method for r in fake.requests] == [method]  # never retried


def test_other_400_is_validation_error_with_details(make_hook: MakeHook) -> None:
    body = {
        "errors": [{"field": "query_dsl", "message": "bad column"}, {"field": "name", "message": "taken"}]
    }
    hook, _ = make_hook(httpx.Response(400, json=body))
    with pytest.raises(SendGridValidationError) as caught:
        hook.create_segment("Buyers", "SELECT x FROM y")
    error = caught.value
    assert [(d.field, d.message) for d in error.details] == [("query_dsl", "bad column"), ("name", "taken")]
    assert "(POST /v3/marketing/segments/2.0 -> HTTP 400): query_dsl: bad column; name: taken" in str(error)


def test_create_segment_body(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(201, json=segment()))
    assert (
        hook.create_segment(" Buyers ", "SELECT contact_id, updated_at FROM contact_data", [LIST])
        == segment()
    )
    request = fake.requests[0]
    assert (request.method, request.url.path) == ("POST", SEGMENTS)
    assert fake.body() == {
        "name": "Buyers",
        "query_dsl": "SELECT contact_id, updated_at FROM contact_data",
        "parent_list_ids": [LIST],
    }
    hook.create_segment("Other", "SELECT 1")
    assert "parent_list_ids" not in fake.body()


def test_update_segment_patches_only_given_fields(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200, json=segment(name="New")))
    assert hook.update_segment(SEG, name="New") == segment(name="New")
    assert (fake.requests[0].method, fake.requests[0].url.path) == ("PATCH", f"{SEGMENTS}/{SEG}")
    assert fake.body() == {"name": "New"}
    hook.update_segment(SEG, query_dsl="SELECT 2")
    assert fake.body() == {"query_dsl": "SELECT 2"}
    with pytest.raises(SendGridInputError, match="give a new name, a new query_dsl or both"):
        hook.update_segment(SEG)
    assert len(fake.requests) == 2


def test_delete_segment(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(202))
    assert hook.delete_segment(SEG) is None
    assert (fake.requests[0].method, fake.requests[0].url.path) == ("DELETE", f"{SEGMENTS}/{SEG}")


@pytest.mark.parametrize(
    ("listing", "exists"),
    [
        ({"results": [segment(SEG)]}, True),
        ({"results": []}, False),
        # A server that ignored the ids filter: the answer is still read for this very id.
        ({"results": [segment(SEG2), segment(LIST)]}, False),
        ([segment(SEG2), segment(SEG)], True),
    ],
)
def test_segment_exists_reads_the_list_filtered_by_id(
    make_hook: MakeHook, listing: object, exists: bool
) -> None:
    hook, fake = make_hook(httpx.Response(200, json=listing))
    assert hook.segment_exists(SEG) is exists
    (request,) = fake.requests
    assert (request.method, request.url.path, request.url.params.get_list("ids")) == ("GET", SEGMENTS, [SEG])


def test_segment_exists_calls_a_404_from_the_list_a_wrong_base_url(make_hook: MakeHook) -> None:
    # The body a wrong host may give is the very one SendGrid gives for an unknown id's route.
    hook, fake = make_hook(
        httpx.Response(404, json=errors("resource not found")), conn_id="sendgrid_proxy", host="proxy.example"
    )
    with pytest.raises(SendGridConfigError) as caught:
        hook.segment_exists(SEG)
    text = str(caught.value)
    assert "Connection 'sendgrid_proxy': https://proxy.example answered 404" in text
    assert "the host is not a SendGrid API base URL" in text
    assert caught.value.status_code == 404
    assert len(fake.requests) == 1


def test_refresh_segment(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(202, json={"job_id": "job-1"}))
    assert hook.refresh_segment(SEG, "America/Chicago") == {"job_id": "job-1"}
    assert (fake.requests[0].method, fake.requests[0].url.path) == ("POST", f"{SEGMENTS}/refresh/{SEG}")
    assert fake.body() == {"user_time_zone": "America/Chicago"}


@pytest.mark.parametrize(
    ("reply", "error_type", "text"),
    [
        (
            httpx.Response(404, json={"error": "Segment does not exist."}),
            SendGridNotFoundError,
            "Segment does not exist.",
        ),
        (httpx.Response(403), SendGridForbiddenError, "HTTP 403"),
        (
            httpx.Response(500, json={"error": "Please check our status page"}),
            SendGridServerError,
            "status page",
        ),
    ],
)
def test_refresh_errors_use_the_single_error_shape(
    make_hook: MakeHook, reply: httpx.Response, error_type: type, text: str
) -> None:
    hook, fake = make_hook(reply)
    with pytest.raises(error_type, match=text):
        hook.refresh_segment(SEG, "UTC")
    assert len(fake.requests) == 1


def test_find_segments_by_name_matches_exactly(make_hook: MakeHook) -> None:
    listing = {"results": [segment(SEG, "Buyers"), segment(SEG2, "Buyers 2"), segment(LIST, "buyers")]}
    hook, _ = make_hook(httpx.Response(200, json=listing))
    assert hook.find_segments_by_name("Buyers") == [segment(SEG, "Buyers")]
    assert hook.find_segments_by_name("Nobody") == []


# --------------------------------------------------------------------------- single sends


def test_create_single_send_body(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(201, json={"id": SS, "status": "draft"}))
    config = {"subject": "Hi", "html_content": "<p>x</p>", "sender_id": 1, "suppression_group_id": 2}
    result = hook.create_single_send(
        "Digest", segment_ids=[SEG], list_ids=[LIST], email_config=config, categories=["news"]
    )
    assert result == {"id": SS, "status": "draft"}
    assert (fake.requests[0].method, fake.requests[0].url.path) == ("POST", "/v3/marketing/singlesends")
    assert fake.body() == {
        "name": "Digest",
        "send_to": {"segment_ids": [SEG], "list_ids": [LIST]},
        "email_config": config,
        "categories": ["news"],
    }
    hook.create_single_send("Everyone", send_to_all=True)
    assert fake.body() == {"name": "Everyone", "send_to": {"all": True}}


def test_get_single_send(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200, json={"id": SS}))
    assert hook.get_single_send(SS) == {"id": SS}
    assert fake.requests[0].url.path == f"/v3/marketing/singlesends/{SS}"


def test_find_single_sends_by_name_follows_pages_on_our_own_host(make_hook: MakeHook) -> None:
    pages = [
        {"result": [{"id": "1", "name": "Digest"}, {"id": "2", "name": "Other"}],
         "_metadata": {"next": "https://elsewhere.example/v3/marketing/singlesends?page_size=100&page_token=t2"}},
        {"result": [{"id": "3", "name": "Digest"}], "_metadata": {"next": "https://api.sendgrid.com/v3/marketing/singlesends?page_token=t3"}},
        {"result": [], "_metadata": {}},
    ]  # fmt: skip
    hook, fake = make_hook(*(httpx.Response(200, json=page) for page in pages), host="api.eu.sendgrid.com")
    assert hook.find_single_sends_by_name("Digest") == [
        {"id": "1", "name": "Digest"},
        {"id": "3", "name": "Digest"},
    ]
    urls = [str(request.url) for request in fake.requests]
    assert urls == [
        "https://api.eu.sendgrid.com/v3/marketing/singlesends?page_size=100",
        "https://api.eu.sendgrid.com/v3/marketing/singlesends?page_size=100&page_token=t2",
        "https://api.eu.sendgrid.com/v3/marketing/singlesends?page_size=100&page_token=t3",
    ]


def test_find_single_sends_stops_on_a_repeated_page_token(make_hook: MakeHook) -> None:
    looping = {
        "result": [{"id": "1", "name": "Digest"}],
        "_metadata": {"next": "https://api.sendgrid.com/x?page_token=same"},
    }
    hook, fake = make_hook(httpx.Response(200, json=looping))
    assert len(hook.find_single_sends_by_name("Digest")) == 2
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("send_at", "sent"),
    [
        ("now", "now"),
        (
            datetime.datetime(2026, 12, 24, 18, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
            "2026-12-24T16:30:00Z",
        ),
        ("2026-12-24T18:30:00+00:00", "2026-12-24T18:30:00Z"),
    ],
)
def test_schedule_single_send(make_hook: MakeHook, send_at: str | datetime.datetime, sent: str) -> None:
    hook, fake = make_hook(httpx.Response(201, json={"send_at": sent, "status": "scheduled"}))
    assert hook.schedule_single_send(SS, send_at)["status"] == "scheduled"
    assert (fake.requests[0].method, fake.requests[0].url.path) == (
        "PUT",
        f"/v3/marketing/singlesends/{SS}/schedule",
    )
    assert fake.body() == {"send_at": sent}


# ------------------------------------------------------------------- validation before I/O

BAD_CALLS: list[tuple[str, Callable[[SendGridMarketingHook], object]]] = [
    ("segment_id", lambda h: h.get_segment("not-a-uuid")),
    ("segment_id", lambda h: h.get_segment(None)),  # type: ignore[arg-type]
    ("ids", lambda h: h.list_segments(ids=[SEG, "x"])),
    ("no_parent_list_id", lambda h: h.list_segments(no_parent_list_id="maybe")),  # type: ignore[arg-type]
    ("segment_name", lambda h: h.create_segment("", "SELECT 1")),
    ("segment_name", lambda h: h.create_segment("n" * 101, "SELECT 1")),
    ("query_dsl", lambda h: h.create_segment("Buyers", "  ")),
    ("parent_list_ids", lambda h: h.create_segment("Buyers", "SELECT 1", [LIST, SEG])),
    ("segment_id", lambda h: h.update_segment("None", name="x")),
    ("segment_id", lambda h: h.delete_segment("")),
    ("user_time_zone", lambda h: h.refresh_segment(SEG, "+01:00")),
    ("user_time_zone", lambda h: h.refresh_segment(SEG, "None")),
    ("segment_id", lambda h: h.refresh_segment("abc", "UTC")),
    ("segment_name", lambda h: h.find_segments_by_name("")),
    (
        "segment_ids",
        lambda h: h.create_single_send(
            "S", segment_ids=[f"00000000-0000-4000-8000-{n:012d}" for n in range(11)]
        ),
    ),
    ("single_send_name", lambda h: h.create_single_send("")),
    ("send_to_all", lambda h: h.create_single_send("S", send_to_all="yes")),  # type: ignore[arg-type]
    ("email_config", lambda h: h.create_single_send("S", email_config="subject")),  # type: ignore[arg-type]
    ("single_send_id", lambda h: h.get_single_send("1")),
    ("single_send_id", lambda h: h.schedule_single_send("1")),
    ("send_at", lambda h: h.schedule_single_send(SS, datetime.datetime(2026, 1, 1))),
    ("single_send_name", lambda h: h.find_single_sends_by_name("n" * 101)),
]


@pytest.mark.parametrize(("name", "call"), BAD_CALLS)
def test_bad_input_raises_before_any_request(
    make_hook: MakeHook, name: str, call: Callable[[SendGridMarketingHook], object]
) -> None:
    hook, fake = make_hook()
    with pytest.raises(SendGridInputError) as caught:
        call(hook)
    assert caught.value.name == name
    assert fake.requests == []


# ------------------------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_get_is_retried_on_each_retryable_status(make_hook: MakeHook, sleeps: Sleeps, status: int) -> None:
    hook, fake = make_hook(
        httpx.Response(status), httpx.Response(status), httpx.Response(200, json=segment())
    )
    assert hook.get_segment(SEG) == segment()
    assert len(fake.requests) == 3
    assert sleeps.sync == [1.0, 2.0]  # exponential backoff (jitter 0 in this policy)


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"X-RateLimit-Reset": str(int(NOW) + 17)}, 17.0),  # epoch seconds
        ({"X-RateLimit-Reset": "17"}, 17.0),  # seconds to go
        ({"Retry-After": "5"}, 5.0),
        (
            {
                "Retry-After": format_datetime(
                    datetime.datetime.fromtimestamp(NOW + 9, datetime.timezone.utc), usegmt=True
                )
            },
            9.0,
        ),
    ],
)
def test_rate_limit_wait_follows_the_server(
    make_hook: MakeHook, sleeps: Sleeps, headers: dict[str, str], wait: float
) -> None:
    hook, fake = make_hook(httpx.Response(429, headers=headers), httpx.Response(200, json={"results": []}))
    assert hook.list_segments() == []
    assert sleeps.sync == [wait]
    assert len(fake.requests) == 2


def test_server_wait_longer_than_cap_gives_up_at_once_with_reset_time(
    make_hook: MakeHook, sleeps: Sleeps
) -> None:
    reset = int(NOW) + 3600
    reply = httpx.Response(429, headers={"X-RateLimit-Reset": str(reset)}, json=errors("too many requests"))
    hook, fake = make_hook(reply, httpx.Response(200, json=[]))
    with pytest.raises(SendGridRateLimitError, match="too many requests") as caught:
        hook.list_segments()
    assert caught.value.reset_at == datetime.datetime.fromtimestamp(reset, datetime.timezone.utc)
    assert len(fake.requests) == 1
    assert sleeps.sync == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "1e20"},
        {"Retry-After": "inf"},
        {"Retry-After": "99999999999"},
        {"X-RateLimit-Reset": "1e300"},
        {"X-RateLimit-Reset": "inf"},
    ],
    ids=lambda headers: "-".join(f"{k}={v}" for k, v in headers.items()),
)
@pytest.mark.parametrize("method", ["list_segments", "refresh_segment"])
def test_a_hostile_named_wait_is_capped_at_a_day_and_stays_typed(
    make_hook: MakeHook,
    sleeps: Sleeps,
    capfd: pytest.CaptureFixture[str],
    headers: dict[str, str],
    method: str,
) -> None:
    hook, fake = make_hook(httpx.Response(429, headers=headers), httpx.Response(200, json=[]))
    with pytest.raises(SendGridRateLimitError) as caught:
        if method == "list_segments":
            hook.list_segments()
        else:
            hook.refresh_segment(SEG, "UTC")
    assert caught.value.reset_at == datetime.datetime.fromtimestamp(NOW + 86400, datetime.timezone.utc)
    assert len(fake.requests) == 1 and sleeps.sync == []  # a day is more than a task sits out
    assert "capped at 86400 s" in capfd.readouterr().out  # Airflow renders hook logs to the console


@pytest.mark.parametrize(
    ("call", "body"),
    [
        (lambda h: h.create_segment("Buyers", "SELECT 1"), {"name": "Buyers"}),
        (lambda h: h.create_single_send("Digest"), {"name": "Digest"}),
        (lambda h: h.create_field_definition("tier", "Text"), {"name": "tier", "field_type": "Text"}),
        (lambda h: h.create_segment("Buyers", "SELECT 1"), {"id": 7, "name": "Buyers"}),
    ],
)
def test_a_created_resource_without_an_id_is_a_response_error(
    make_hook: MakeHook, call: Callable[[SendGridMarketingHook], object], body: dict[str, Any]
) -> None:
    hook, fake = make_hook(httpx.Response(201, json=body))
    with pytest.raises(SendGridResponseError, match='expected an object with "id"'):
        call(hook)
    assert len(fake.requests) == 1  # a write is not sent again for its answer


@pytest.mark.parametrize(
    "call",
    [
        lambda h: h.get_segment(SEG),
        lambda h: h.update_segment(SEG, name="Buyers"),
        lambda h: h.get_single_send(SS),
        lambda h: h.get_import_status("job-1"),
    ],
)
def test_an_errors_body_in_a_2xx_is_never_a_result(
    make_hook: MakeHook, call: Callable[[SendGridMarketingHook], object]
) -> None:
    hook, fake = make_hook(httpx.Response(200, json=errors("segment is being rebuilt", "id")))
    with pytest.raises(SendGridResponseError, match="segment is being rebuilt") as caught:
        call(hook)
    assert caught.value.details  # SendGrid's message is kept
    assert len(fake.requests) == 1  # an answer of the wrong shape is raised at once


def test_attempts_are_capped_and_the_typed_error_is_raised(make_hook: MakeHook, sleeps: Sleeps) -> None:
    hook, fake = make_hook(httpx.Response(503, json=errors("unavailable")))
    with pytest.raises(SendGridServerError, match=r"GET .* -> HTTP 503\): unavailable"):
        hook.get_segment(SEG)
    assert len(fake.requests) == 4  # policy.max_attempts
    assert sleeps.sync == [1.0, 2.0, 4.0]


def test_rate_limit_window_header_on_a_5xx_does_not_stop_retries(make_hook: MakeHook, sleeps: Sleeps) -> None:
    window_end = {"X-RateLimit-Reset": str(int(NOW) + 3000)}  # on every SendGrid answer
    hook, fake = make_hook(httpx.Response(503, headers=window_end), httpx.Response(200, json=segment()))
    assert hook.get_segment(SEG) == segment()
    assert len(fake.requests) == 2
    assert sleeps.sync == [1.0]


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow connect"),
        httpx.ReadTimeout("slow read"),
        httpx.RemoteProtocolError("peer closed"),
    ],
)
def test_get_is_retried_on_transport_errors(make_hook: MakeHook, exc: Exception) -> None:
    hook, fake = make_hook(exc, httpx.Response(200, json=segment()))
    assert hook.get_segment(SEG) == segment()
    assert len(fake.requests) == 2


def test_transport_error_after_all_attempts_is_typed(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.ConnectError("refused"))
    with pytest.raises(
        SendGridTransportError,
        match=re.escape("No answer from SendGrid at https://api.sendgrid.com: ConnectError: refused"),
    ):
        hook.list_segments()
    assert len(fake.requests) == 4


def test_unsupported_scheme_is_not_retried(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.UnsupportedProtocol("ftp"))
    with pytest.raises(SendGridTransportError):
        hook.list_segments()
    assert len(fake.requests) == 1


def test_empty_body_is_retried_for_reads_and_success_where_allowed(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200), httpx.Response(200, json=segment()))
    assert hook.get_segment(SEG) == segment()
    assert len(fake.requests) == 2
    for index, call in enumerate(
        [
            lambda h: h.delete_segment(SEG),
            lambda h: h.refresh_segment(SEG, "UTC"),
            lambda h: h.schedule_single_send(SS),
        ]
    ):
        hook, fake = make_hook(httpx.Response(200), conn_id=f"sendgrid_empty_{index}")
        assert call(hook) in (None, {})
        assert len(fake.requests) == 1
    hook, fake = make_hook(httpx.Response(201), conn_id="sendgrid_empty_create")
    with pytest.raises(SendGridResponseError, match="empty body"):
        hook.create_segment("Buyers", "SELECT 1")
    assert len(fake.requests) == 1


def test_truncated_json_on_get_is_retried(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200, content=b'{"id": "6b2b'), httpx.Response(200, json=segment()))
    assert hook.get_segment(SEG) == segment()
    assert len(fake.requests) == 2


def test_patch_and_delete_are_retried(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(502), httpx.Response(200, json=segment()))
    hook.update_segment(SEG, name="Buyers")
    assert [r.method for r in fake.requests] == ["PATCH", "PATCH"]
    hook, fake = make_hook(httpx.ReadTimeout("slow"), httpx.Response(204), conn_id="sendgrid_unit_2")
    hook.delete_segment(SEG)
    assert [r.method for r in fake.requests] == ["DELETE", "DELETE"]


POSTS: list[Callable[[SendGridMarketingHook], object]] = [
    lambda h: h.create_segment("Buyers", "SELECT 1"),
    lambda h: h.refresh_segment(SEG, "UTC"),
    lambda h: h.create_single_send("Digest", segment_ids=[SEG]),
]


@pytest.mark.parametrize("post", POSTS)
@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (httpx.Response(500), SendGridServerError),
        (httpx.Response(503, headers={"Retry-After": "1"}), SendGridServerError),
        (httpx.ReadTimeout("no answer"), SendGridTransportError),
        (httpx.ConnectError("refused"), SendGridTransportError),
        (httpx.Response(201, content=b'{"id": "trunc'), SendGridResponseError),
    ],
)
def test_posts_are_sent_exactly_once(
    make_hook: MakeHook,
    sleeps: Sleeps,
    post: Callable[[SendGridMarketingHook], object],
    reply: Reply,
    error_type: type,
) -> None:
    hook, fake = make_hook(reply, httpx.Response(201, json={"id": "created twice"}))
    with pytest.raises(error_type):
        post(hook)
    assert len(fake.requests) == 1
    assert sleeps.sync == []


def test_schedule_is_retried_only_when_nothing_was_sent(make_hook: MakeHook) -> None:
    ok = httpx.Response(201, json={"status": "scheduled"})
    hook, fake = make_hook(httpx.ConnectError("refused"), ok)
    assert hook.schedule_single_send(SS) == {"status": "scheduled"}
    assert len(fake.requests) == 2
    for index, reply in enumerate([httpx.ReadTimeout("sent, no answer"), httpx.Response(500)]):
        hook, fake = make_hook(reply, ok, conn_id=f"sendgrid_sched_{index}")
        with pytest.raises(SendGridError):
            hook.schedule_single_send(SS)
        assert len(fake.requests) == 1


# Every write SendGrid refused with a 429 (it did nothing), with the answer that follows it.
WRITES_AFTER_429: list[tuple[str, Callable[[SendGridMarketingHook], object], httpx.Response]] = [
    ("create_segment", lambda h: h.create_segment("Buyers", "SELECT 1"), httpx.Response(201, json=segment())),
    ("update_segment", lambda h: h.update_segment(SEG, name="Buyers"), httpx.Response(200, json=segment())),
    ("delete_segment", lambda h: h.delete_segment(SEG), httpx.Response(204)),
    (
        "create_single_send",
        lambda h: h.create_single_send("Digest", segment_ids=[SEG]),
        httpx.Response(201, json={"id": SS, "name": "Digest"}),
    ),
    (
        "schedule_single_send",
        lambda h: h.schedule_single_send(SS),
        httpx.Response(201, json={"status": "scheduled"}),
    ),
    (
        "create_field_definition",
        lambda h: h.create_field_definition("tier", "Text"),
        httpx.Response(200, json={"id": "e1_T", "name": "tier", "field_type": "Text"}),
    ),
    (
        "upsert_contacts",
        lambda h: h.upsert_contacts(b'{"contacts":[]}'),
        httpx.Response(202, json={"job_id": "j"}),
    ),
    (
        "start_contacts_import",
        lambda h: h.start_contacts_import(["email"]),
        httpx.Response(
            200, json={"job_id": "j", "upload_uri": "https://upload.example/x", "upload_headers": []}
        ),
    ),
    (
        "start_contacts_export",
        lambda h: h.start_contacts_export(segment_ids=[SEG]),
        httpx.Response(202, json={"id": "e"}),
    ),
]


@pytest.mark.parametrize(("name", "write", "ok"), WRITES_AFTER_429, ids=[w[0] for w in WRITES_AFTER_429])
def test_a_429_on_any_write_is_waited_out_and_sent_again(
    make_hook: MakeHook,
    sleeps: Sleeps,
    name: str,
    write: Callable[[SendGridMarketingHook], object],
    ok: httpx.Response,
) -> None:
    hook, fake = make_hook(httpx.Response(429, headers={"Retry-After": "3"}), ok)
    write(hook)
    assert len(fake.requests) == 2
    assert sleeps.sync == [3.0]  # the wait SendGrid named (jitter 0 in this policy)


def test_a_refresh_429_is_the_quota_and_is_not_sent_again(make_hook: MakeHook, sleeps: Sleeps) -> None:
    hook, fake = make_hook(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(202, json={}))
    with pytest.raises(SendGridRateLimitError) as caught:
        hook.refresh_segment(SEG, "UTC")
    assert caught.value.reset_at == datetime.datetime.fromtimestamp(NOW + 3, datetime.timezone.utc)
    assert len(fake.requests) == 1 and sleeps.sync == []


def test_a_server_named_wait_gets_jitter(make_hook: MakeHook, connection: Callable[..., str]) -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=2, jitter=1.0, sleep=waits.append, clock=lambda: NOW)
    for index in range(20):
        hook, _ = make_hook(
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(200, json={"results": []}),
            conn_id=f"sendgrid_jitter_{index}",
        )
        hook.retry_policy = policy
        hook.list_segments()
    assert all(3.0 <= wait <= 4.0 for wait in waits) and len(set(waits)) > 1


async def test_a_wait_hook_sits_out_a_named_wait_exactly(
    connection: Callable[..., str], sendgrid_api: respx.MockRouter
) -> None:
    # The triggers' (and sensors') hook: a 429's reset is the moment the wait returns, for
    # every mapped sensor refused together, so no jitter is added to it.
    from airflow_provider_sgseg.triggers._base import wait_hook

    waits = Sleeps()
    policy = RetryPolicy(max_attempts=2, jitter=1.0, async_sleep=waits.asleep, clock=lambda: NOW)
    hook = wait_hook(connection(), {"retry": policy})
    answer_with(
        sendgrid_api,
        FakeSendGrid(
            [httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json={"id": SS})]
        ),
    )
    assert (await hook.aget_single_send(SS))["id"] == SS
    assert waits.async_ == [3.0]


CSV = "Single Send ID,Single Send Name,requests,delivered\n3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98,Digest,10,9\n"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text=CSV, headers={"Content-Type": "text/csv"}),
        httpx.Response(200, json=CSV),  # the spec's reading: a JSON string holding the CSV
    ],
    ids=["plain-csv", "json-string"],
)
def test_the_stats_csv_export_reads_both_readings_of_its_answer(
    make_hook: MakeHook, answer: httpx.Response
) -> None:
    hook, fake = make_hook(answer)
    assert hook.export_single_send_stats([SS, SS], timezone="Europe/Paris") == CSV
    (sent,) = fake.requests
    assert sent.url.path == "/v3/marketing/stats/singlesends/export"
    assert dict(sent.url.params) == {"ids": SS, "timezone": "Europe/Paris"}


def test_the_stats_csv_export_is_bounded_and_typed(make_hook: MakeHook, sleeps: Sleeps) -> None:
    huge = "Single Send ID\n" + "x" * 1024 * 1024
    hook, fake = make_hook(httpx.Response(200, text=huge, headers={"Content-Type": "text/csv"}))
    with pytest.raises(SendGridResponseError, match="more than the 1048576 bytes"):
        hook.export_single_send_stats([SS])
    # A JSON answer that is not the CSV string is malformed: retried like a cut-short body.
    hook, fake = make_hook(httpx.Response(200, json={"results": []}), httpx.Response(200, json=CSV))
    assert hook.export_single_send_stats([SS]) == CSV
    assert len(fake.requests) == 2 and sleeps.sync == [1.0]


def test_non_retryable_statuses_fail_at_once(make_hook: MakeHook) -> None:
    for status, error_type in [
        (400, SendGridValidationError),
        (401, SendGridAuthError),
        (403, SendGridForbiddenError),
        (404, SendGridNotFoundError),
        (409, SendGridError),
    ]:
        hook, fake = make_hook(httpx.Response(status), conn_id=f"sendgrid_status_{status}")
        with pytest.raises(error_type):
            hook.list_segments()
        assert len(fake.requests) == 1


# --------------------------------------------------------------------- test_connection


def test_test_connection(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200, json={"results": []}), host="api.eu.sendgrid.com/v3")
    assert hook.test_connection() == (
        True,
        "Connected to SendGrid at https://api.eu.sendgrid.com: the API key and the base URL work",
    )
    assert fake.requests[0].url.params["ids"] == "00000000-0000-0000-0000-000000000000"


PROBE_URL = "https://api.sendgrid.com/v3/marketing/segments/2.0?ids=00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("reply", "meaning", "came_back"),
    [
        # A 404 from the probe is a wrong base URL, never "the key was accepted".
        (httpx.Response(404), "The base URL is wrong", "HTTP 404"),
        (
            httpx.Response(404, json=errors("resource not found")),
            "The base URL is wrong",
            "resource not found",
        ),
        (httpx.Response(401, json=errors("authorization required")), "refused the API key", "HTTP 401"),
        (
            httpx.Response(403, json=errors("access forbidden")),
            "lacks the Marketing Campaigns scopes",
            "HTTP 403",
        ),
        (
            httpx.Response(400, json=errors("bad ids", "ids")),
            "did not accept the test request",
            "ids: bad ids",
        ),
        (httpx.Response(503), "did not accept the test request", "HTTP 503"),
        (httpx.Response(302, headers={"Location": "https://login.example"}), "did not accept", "HTTP 302"),
        (httpx.ConnectError("refused"), "No answer from the base URL", "ConnectError: refused"),
    ],
)
def test_test_connection_fails_on_any_answer_but_2xx(
    make_hook: MakeHook, reply: Reply, meaning: str, came_back: str
) -> None:
    hook, fake = make_hook(reply)
    ok, message = hook.test_connection()
    assert ok is False
    assert meaning in message
    assert f"Tried GET {PROBE_URL}" in message
    assert came_back in message
    assert KEY not in message
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(401, json=errors("authorization required")),
        httpx.Response(503),
        httpx.ConnectError("refused"),
    ],
)
def test_test_connection_failure_is_reported_once_without_the_key(make_hook: MakeHook, reply: Reply) -> None:
    hook, fake = make_hook(reply)
    ok, message = hook.test_connection()
    assert ok is False
    assert "GET /v3/marketing/segments/2.0" in message
    assert KEY not in message
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("conn_fields", "expected"),
    [
        ({"extra": json.dumps({"timeout": "soon"})}, "extra 'timeout' must be a positive number"),
        ({"extra": json.dumps({"timeout": -1})}, "extra 'timeout' must be a positive number"),
        ({"extra": json.dumps({"timeout": "inf"})}, "extra 'timeout' must be a positive number"),
        ({"extra": json.dumps({"timeout": 1e308})}, "extra 'timeout' must be a positive number"),
        ({"password": None}, "has no API key"),
        ({"password": "SG.in ner"}, "must be printable ASCII"),
    ],
)
def test_test_connection_reports_a_bad_connection_instead_of_raising(
    make_hook: MakeHook, conn_fields: dict[str, Any], expected: str
) -> None:
    hook, fake = make_hook(conn_id="sendgrid_bad_conn", **conn_fields)
    ok, message = hook.test_connection()
    assert ok is False
    assert expected in message
    assert "sendgrid_bad_conn" in message
    assert fake.requests == []


# ------------------------------------------------------------------ the key never leaks


async def test_transport_error_quoting_the_key_is_redacted(make_hook: MakeHook) -> None:
    # What httpx raises for a header it refuses: the whole header value, key included.
    def quoted() -> httpx.LocalProtocolError:
        return httpx.LocalProtocolError(f"Illegal header value {f'Bearer {KEY}'.encode()!r}")

    hook, _ = make_hook(quoted(), quoted())
    with pytest.raises(SendGridTransportError) as sync_error:
        hook.list_segments()
    ok, message = hook.test_connection()
    hook, _ = make_hook(quoted(), conn_id="sendgrid_async")
    with pytest.raises(SendGridTransportError) as async_error:
        await hook.alist_segments()
    assert ok is False
    for error in (sync_error.value, async_error.value):
        texts = (str(error), repr(error), str(error.__cause__), repr(error.__cause__), message)
        for text in texts:
            assert KEY not in text
            assert "Illegal header value" in text
        assert "Bearer ***" in str(error)


def test_api_key_never_in_errors_or_logs(make_hook: MakeHook, capfd: pytest.CaptureFixture[str]) -> None:
    failures: list[Reply] = [
        httpx.Response(401, json=errors("authorization required")),
        httpx.Response(400, json=errors("bad", "name")),
        httpx.Response(500, text="<html>oops</html>"),
        httpx.Response(429, headers={"X-RateLimit-Reset": str(int(NOW) + 7200)}),
        httpx.ConnectError("refused"),
        httpx.Response(200, content=b"{not json"),
    ]
    texts: list[str] = []
    for index, failure in enumerate(failures):
        hook, _ = make_hook(failure, conn_id=f"sendgrid_leak_{index}")
        texts.append(repr(hook))
        for call in (lambda h: h.get_segment(SEG), lambda h: h.create_segment("Buyers", "SELECT 1")):
            with pytest.raises(SendGridError) as caught:
                call(hook)
            texts += [str(caught.value), repr(caught.value), str(caught.value.args)]
        texts.append(str(hook.test_connection()))
    log_text = "".join(capfd.readouterr())  # Airflow renders hook logs (structlog) to the console
    # The logs are really there (so their check means something) ...
    assert "SendGrid GET /v3/marketing/segments/2.0/" in log_text
    assert "retrying in" in log_text
    assert "SendGrid POST /v3/marketing/segments/2.0 -> 500" in log_text
    # ... and nothing anywhere holds the key.
    assert all(KEY not in text for text in texts)
    assert KEY not in log_text
    assert "***" not in log_text  # not even masked by Airflow's secrets masker: it is never logged


# --------------------------------------------------------------------------------- async


async def test_async_reads(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(200, json=segment()), host="api.eu.sendgrid.com")
    assert await hook.aget_segment(SEG, contacts_sample=False) == segment()
    hook2, fake2 = make_hook(
        httpx.Response(200, json={"results": [segment()]}), conn_id="sendgrid_async_list"
    )
    assert await hook2.alist_segments(ids=[SEG]) == [segment()]
    assert str(fake.requests[0].url) == f"https://api.eu.sendgrid.com{SEGMENTS}/{SEG}?contacts_sample=false"
    assert fake.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert fake2.requests[0].url.params.get_list("ids") == [SEG]


async def test_async_retries_use_the_async_sleep(make_hook: MakeHook, sleeps: Sleeps) -> None:
    hook, fake = make_hook(
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json=segment()),
    )
    assert await hook.aget_segment(SEG) == segment()
    assert len(fake.requests) == 3
    assert sleeps.async_ == [3.0, 2.0]
    assert sleeps.sync == []


async def test_async_errors_are_typed(make_hook: MakeHook) -> None:
    hook, _ = make_hook(httpx.Response(404, json=errors("resource not found")))
    with pytest.raises(SendGridNotFoundError):
        await hook.aget_segment(SEG)
    with pytest.raises(SendGridInputError):
        await hook.aget_segment("nope")


async def test_async_client_is_shared_per_loop_and_connection(
    make_hook: MakeHook, connection: Callable[..., str], policy: RetryPolicy
) -> None:
    hook_a, fake = make_hook(httpx.Response(200, json=segment()))
    hook_b = SendGridMarketingHook("sendgrid_unit", retry=policy)
    await asyncio.gather(hook_a.aget_segment(SEG), hook_b.aget_segment(SEG))
    client_a, client_b = await hook_a.aget_conn(), await hook_b.aget_conn()
    assert client_a is client_b
    assert len(fake.requests) == 2

    connection("sendgrid_other", host="api.eu.sendgrid.com")
    hook_other = SendGridMarketingHook("sendgrid_other", retry=policy)
    assert await hook_other.aget_conn() is not client_a


def test_async_clients_are_not_shared_across_loops(make_hook: MakeHook) -> None:
    hook, _ = make_hook()
    first_loop, second_loop = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        client_1 = first_loop.run_until_complete(hook.aget_conn())
        client_2 = second_loop.run_until_complete(hook.aget_conn())
        assert client_1 is not client_2
        assert first_loop.run_until_complete(hook.aget_conn()) is client_1
    finally:
        for loop in (first_loop, second_loop):
            loop.run_until_complete(marketing.aclose_shared_clients())
            loop.close()


async def test_async_path_never_uses_the_sync_connection_lookup(
    make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook, fake = make_hook(httpx.Response(200, json=segment()), httpx.Response(200, json=[segment()]))

    def sync_lookup(*args: object, **kwargs: object) -> None:
        raise AssertionError("sync connection lookup inside the event loop")

    monkeypatch.setattr(SendGridMarketingHook, "get_connection", sync_lookup)
    assert await hook.aget_segment(SEG) == segment()
    assert await hook.alist_segments() == [segment()]
    assert len(fake.requests) == 2


def test_log_lines_have_method_path_status_and_duration(
    make_hook: MakeHook, capfd: pytest.CaptureFixture[str]
) -> None:
    hook, _ = make_hook(httpx.Response(201, json=segment()))
    hook.create_segment("Buyers", "SELECT 1")
    out = capfd.readouterr().out
    # Airflow 3.1+ logs through structlog ("[info     ] ..."), 3.0 through logging ("INFO - ...").
    level = r"(\[info\s*\]|\bINFO -)"
    assert re.search(level + r" SendGrid POST /v3/marketing/segments/2\.0 -> 201 in \d+ ms", out), out


def test_hook_identity_matches_the_contract() -> None:
    assert SendGridMarketingHook.conn_type == "sendgrid_marketing"
    assert SendGridMarketingHook.conn_name_attr == "sendgrid_conn_id"
    assert SendGridMarketingHook.default_conn_name == "sendgrid_default"
    assert SendGridMarketingHook.hook_name == "SendGrid Marketing"
    assert SendGridMarketingHook().sendgrid_conn_id == "sendgrid_default"


# ------------------------------------------------------------------------- typed requests


def test_run_sends_a_built_request_as_it_is_without_checking_it_again(
    make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_sgseg.rules import requests, validation

    request = requests.CreateSegment(" Buyers ", "SELECT 1", LIST)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("validated twice")

    for name in ("segment_name", "query_dsl", "parent_list_ids"):
        monkeypatch.setattr(validation, name, fail)
    hook, fake = make_hook(httpx.Response(201, json=segment()))
    assert hook.run(request) == segment()
    assert fake.body() == {"name": "Buyers", "query_dsl": "SELECT 1", "parent_list_ids": [LIST]}
    assert len(fake.requests) == 1


async def test_arun_sends_a_built_request_on_the_shared_async_client(make_hook: MakeHook) -> None:
    from airflow_provider_sgseg.rules.requests import GetSegment

    hook, fake = make_hook(httpx.Response(200, json=segment()))
    assert await hook.arun(GetSegment(SEG, contacts_sample=False)) == segment()
    assert str(fake.requests[0].url).endswith(f"{SEGMENTS}/{SEG}?contacts_sample=false")


def test_export_without_segments_or_lists_is_sendgrids_export_of_every_contact(make_hook: MakeHook) -> None:
    hook, fake = make_hook(httpx.Response(202, json={"id": "exp-1"}))
    assert hook.start_contacts_export() == "exp-1"
    assert fake.body() == {"file_type": "csv"}


def test_segment_exists_names_the_segment_id_it_refuses(make_hook: MakeHook) -> None:
    hook, fake = make_hook()
    with pytest.raises(SendGridInputError) as raised:
        hook.segment_exists("abc")
    assert raised.value.name == "segment_id"
    assert fake.requests == []
