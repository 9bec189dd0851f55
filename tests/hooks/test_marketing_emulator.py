"""Every SendGridMarketingHook method against the offline emulator, over loopback HTTP."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.exceptions import (
    SendGridAuthError,
    SendGridConfigError,
    SendGridError,
    SendGridInputError,
    SendGridNotFoundError,
    SendGridRateLimitError,
    SendGridServerError,
    SendGridTransportError,
    SendGridValidationError,
)
from airflow_provider_sgseg.hooks import marketing
from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook
from tests.conftest import AIRFLOW_BIN
from tests.helpers import not_sendgrid_server

SEGMENTS = "/v3/marketing/segments/2.0"
SINGLE_SENDS = "/v3/marketing/singlesends"
ALL_CONTACTS = "SELECT contact_id, updated_at FROM contact_data"
# Real sleeps, kept tiny: these tests check what is sent, not how long it takes.
FAST_RETRIES = RetryPolicy(max_attempts=4, initial_wait=0.01, max_wait=5.0, jitter=0.0)
UNKNOWN_ID = "6b2b2a0e-7e1f-4b8b-9a53-0c1c3d5e6f70"


@pytest.fixture
def hook(sendgrid_emulator: EmulatorHandle) -> Iterator[SendGridMarketingHook]:
    hook = SendGridMarketingHook(retry=FAST_RETRIES)
    yield hook
    hook.close()


@pytest.fixture(autouse=True)
async def _close_shared_async_clients() -> AsyncIterator[None]:
    yield
    await marketing.aclose_shared_clients()


def api_requests(
    emulator: EmulatorHandle, method: str | None = None, path_prefix: str = "/v3/"
) -> list[dict[str, Any]]:
    return emulator.admin.requests(method=method, path_prefix=path_prefix)


def test_segment_lifecycle(hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle) -> None:
    created = hook.create_segment("Everyone", ALL_CONTACTS)
    segment_id = created["id"]
    assert created["name"] == "Everyone"
    assert created["query_dsl"] == ALL_CONTACTS

    fetched = hook.get_segment(segment_id)
    assert fetched["id"] == segment_id
    hook.get_segment(segment_id, contacts_sample=False)
    sample_flags = [r["query"].get("contacts_sample") for r in api_requests(sendgrid_emulator, "GET")]
    assert [str(flag).strip("[]'") for flag in sample_flags] == ["true", "false"]

    assert [s["id"] for s in hook.list_segments()] == [segment_id]
    assert [s["id"] for s in hook.list_segments(ids=[segment_id])] == [segment_id]
    assert [s["id"] for s in hook.find_segments_by_name("Everyone")] == [segment_id]
    assert hook.find_segments_by_name("Nobody") == []

    updated = hook.update_segment(segment_id, name="Everyone (renamed)")
    assert updated["name"] == "Everyone (renamed)"
    assert hook.find_segments_by_name("Everyone") == []

    refresh = hook.refresh_segment(segment_id, "America/Chicago")
    assert isinstance(refresh.get("job_id"), str)
    assert hook.get_segment(segment_id)["refreshes_used"] == 1

    hook.delete_segment(segment_id)
    with pytest.raises(SendGridNotFoundError):
        hook.get_segment(segment_id)
    assert hook.list_segments() == []

    logged = [(r["method"], r["path"]) for r in api_requests(sendgrid_emulator)]
    assert ("POST", f"{SEGMENTS}/refresh/{segment_id}") in logged
    assert ("PATCH", f"{SEGMENTS}/{segment_id}") in logged
    assert ("DELETE", f"{SEGMENTS}/{segment_id}") in logged


def test_list_filters_by_parent_list(hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle) -> None:
    created = httpx.post(
        f"{sendgrid_emulator.base_url}/v3/marketing/lists",
        json={"name": "Parent"},
        headers={"Authorization": f"Bearer {sendgrid_emulator.api_key}"},
    )
    parent = created.raise_for_status().json()["id"]
    with_parent = hook.create_segment("In list", ALL_CONTACTS, parent_list_ids=[parent])
    orphan = hook.create_segment("No list", ALL_CONTACTS)
    assert [s["id"] for s in hook.list_segments(parent_list_ids=[parent])] == [with_parent["id"]]
    assert [s["id"] for s in hook.list_segments(no_parent_list_id=True)] == [orphan["id"]]
    query = api_requests(sendgrid_emulator, "GET")[-1]["query"]
    assert query.get("no_parent_list_id") in ("true", ["true"])


def test_single_send_lifecycle(hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle) -> None:
    segment = hook.create_segment("Audience", ALL_CONTACTS)
    email = {
        "subject": "Hello",
        "html_content": "<p>Hi {{{unsubscribe}}}</p>",
        "sender_id": 1,
        "suppression_group_id": 1,
    }
    draft = hook.create_single_send(
        "Digest", segment_ids=[segment["id"]], email_config=email, categories=["news"]
    )
    assert draft["status"] == "draft"
    assert hook.get_single_send(draft["id"])["name"] == "Digest"
    assert [s["id"] for s in hook.find_single_sends_by_name("Digest")] == [draft["id"]]

    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)
    scheduled = hook.schedule_single_send(draft["id"], later)
    assert scheduled["status"] == "scheduled"
    (put,) = api_requests(sendgrid_emulator, "PUT")
    assert put["json"] == {"send_at": later.strftime("%Y-%m-%dT%H:%M:%SZ")}

    assert hook.schedule_single_send(draft["id"], "now")["status"] == "scheduled"


def test_find_single_sends_by_name_reads_every_page(
    hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle
) -> None:
    for number in range(101):
        hook.create_single_send("Wanted" if number in (0, 100) else f"Other {number}")
    found = hook.find_single_sends_by_name("Wanted")
    assert len(found) == 2
    pages = api_requests(sendgrid_emulator, "GET", SINGLE_SENDS)
    assert len(pages) == 2
    assert pages[1]["query"].get("page_token") in ("100", ["100"])


def test_test_connection(hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle) -> None:
    ok, message = hook.test_connection()
    assert ok is True
    assert sendgrid_emulator.base_url in message


def _hook_for_host(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, host: str, api_key: str, retry: RetryPolicy = FAST_RETRIES
) -> SendGridMarketingHook:
    conn = {"conn_type": "sendgrid_marketing", "host": host, "password": api_key}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return SendGridMarketingHook(conn_id, retry=retry)


@pytest.mark.parametrize("suffix", ["/v3", "/v3/", "/"])
async def test_host_copied_with_the_api_prefix_reaches_the_api(
    sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    host = sendgrid_emulator.base_url + suffix
    hook = _hook_for_host(monkeypatch, "sendgrid_v3_host", host, sendgrid_emulator.api_key)
    assert hook.test_connection() == (
        True,
        f"Connected to SendGrid at {sendgrid_emulator.base_url}: the API key and the base URL work",
    )
    created = hook.create_segment("Prefixed", ALL_CONTACTS)
    assert hook.get_segment(created["id"])["name"] == "Prefixed"
    assert [s["id"] for s in await hook.alist_segments()] == [created["id"]]
    assert hook.segment_exists(created["id"]) is True
    hook.delete_segment(created["id"])
    assert hook.segment_exists(created["id"]) is False
    paths = [r["path"] for r in api_requests(sendgrid_emulator, path_prefix="/")]
    assert paths and all(p.startswith("/v3/marketing/") for p in paths), paths
    hook.close()


def test_a_host_that_is_not_sendgrid_fails_the_connection_test_and_the_existence_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with not_sendgrid_server() as base_url:
        hook = _hook_for_host(monkeypatch, "sendgrid_elsewhere", base_url, "SG.elsewhere-key-0123")
        ok, message = hook.test_connection()
        assert ok is False
        assert "The base URL is wrong" in message
        assert f"Tried GET {base_url}{SEGMENTS}?ids=00000000-0000-0000-0000-000000000000" in message
        assert "HTTP 404" in message
        with pytest.raises(SendGridConfigError, match="the host is not a SendGrid API base URL"):
            hook.segment_exists(UNKNOWN_ID)
        with pytest.raises(SendGridNotFoundError):  # a plain read cannot tell; it says 404
            hook.get_segment(UNKNOWN_ID)
        assert "SG.elsewhere-key-0123" not in message
        hook.close()


@pytest.mark.parametrize("scheme", ["", "https://"], ids=["no scheme", "https"])
async def test_tls_to_a_plain_http_server_is_a_config_error_without_retries(
    sendgrid_emulator: EmulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    scheme: str,
) -> None:
    host = sendgrid_emulator.base_url.removeprefix("http://")  # the emulator serves plain HTTP
    sleeps: list[float] = []

    async def asleep(seconds: float) -> None:
        sleeps.append(seconds)

    retry = dataclasses.replace(FAST_RETRIES, sleep=sleeps.append, async_sleep=asleep)
    key = sendgrid_emulator.api_key
    hook = _hook_for_host(monkeypatch, "sendgrid_no_tls", scheme + host, key, retry)
    with pytest.raises(SendGridConfigError) as sync_error:
        hook.list_segments()
    with pytest.raises(SendGridConfigError) as async_error:
        await hook.alist_segments()
    ok, message = hook.test_connection()
    assert ok is False
    assert not message.startswith("No answer")  # the cause comes first, not a network guess
    for text in (str(sync_error.value), repr(sync_error.value), str(async_error.value), message):
        assert "'sendgrid_no_tls'" in text and f"https://{host}" in text
        assert (
            "the server does not speak TLS: if it serves plain HTTP (e.g. the emulator), write http://"
            in text
        )
        assert key not in text
    assert sleeps == [] and "retrying in" not in capfd.readouterr().out  # one attempt each, no retry
    assert api_requests(sendgrid_emulator, path_prefix="/") == []  # no HTTP request got through
    hook.close()


def test_wrong_key_is_an_auth_error_without_the_key(
    sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_key = "SG.wrong-key-a1b2c3d4e5f6"
    conn = {"conn_type": "sendgrid_marketing", "host": sendgrid_emulator.base_url, "password": wrong_key}
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_WRONG", json.dumps(conn))
    hook = SendGridMarketingHook("sendgrid_wrong", retry=FAST_RETRIES)
    ok, message = hook.test_connection()
    assert ok is False
    assert "HTTP 401" in message
    with pytest.raises(SendGridAuthError) as caught:
        hook.list_segments()
    for text in (message, str(caught.value), repr(caught.value)):
        assert wrong_key not in text
        assert sendgrid_emulator.api_key not in text
    assert len(api_requests(sendgrid_emulator)) == 2  # one each: a 401 is never retried


def _hook_with_key(
    emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, conn_id: str, api_key: str
) -> SendGridMarketingHook:
    conn = {"conn_type": "sendgrid_marketing", "host": emulator.base_url, "password": api_key}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return SendGridMarketingHook(conn_id, retry=FAST_RETRIES)


@pytest.mark.parametrize("padding", ["\n", "\r\n", " ", "\t \n"])
def test_key_with_surrounding_whitespace_works(
    sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, padding: str
) -> None:
    # e.g. a key read from a secret store file with its trailing newline
    hook = _hook_with_key(
        sendgrid_emulator, monkeypatch, "sendgrid_padded", f"{padding}{sendgrid_emulator.api_key}{padding}"
    )
    assert hook.test_connection()[0] is True
    assert hook.list_segments() == []
    hook.close()


@pytest.mark.parametrize("bad_char", [" ", "\n", "\x00", "é", "\u200b"])
async def test_key_with_inner_whitespace_or_non_ascii_is_a_clear_error_without_the_key(
    sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, bad_char: str
) -> None:
    real = sendgrid_emulator.api_key
    bad_key = f"{real[:6]}{bad_char}{real[6:]}"
    hook = _hook_with_key(sendgrid_emulator, monkeypatch, "sendgrid_bad_key", bad_key)
    ok, message = hook.test_connection()
    assert ok is False
    with pytest.raises(SendGridAuthError) as sync_error:
        hook.list_segments()
    with pytest.raises(SendGridAuthError) as async_error:
        await hook.alist_segments()
    for text in (message, str(sync_error.value), repr(sync_error.value), str(async_error.value)):
        assert "'sendgrid_bad_key'" in text
        assert "printable ASCII without spaces or control characters" in text
        for secret in (bad_key, real, real[:6], real[6:], repr(bad_key.encode())):
            assert secret not in text
    assert api_requests(sendgrid_emulator) == []  # refused before any request
    hook.close()


def test_duplicate_name_is_a_validation_error(hook: SendGridMarketingHook) -> None:
    hook.create_segment("Twice", ALL_CONTACTS)
    with pytest.raises(SendGridValidationError) as caught:
        hook.create_segment("Twice", ALL_CONTACTS)
    assert caught.value.status_code == 400
    assert caught.value.details


def test_unknown_segment_is_not_found(hook: SendGridMarketingHook) -> None:
    with pytest.raises(SendGridNotFoundError):
        hook.get_segment(UNKNOWN_ID)
    with pytest.raises(SendGridNotFoundError):
        hook.refresh_segment(UNKNOWN_ID, "UTC")


def test_bad_input_sends_nothing(hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle) -> None:
    for call in (
        lambda: hook.get_segment("42"),
        lambda: hook.create_segment("", ALL_CONTACTS),
        lambda: hook.refresh_segment(UNKNOWN_ID, "Mars/Base"),
        lambda: hook.create_single_send(
            "S", segment_ids=[UNKNOWN_ID] * 1 + [f"00000000-0000-4000-8000-{n:012d}" for n in range(10)]
        ),
        lambda: hook.schedule_single_send(UNKNOWN_ID, "tomorrow"),
    ):
        with pytest.raises(SendGridInputError):
            call()
    assert api_requests(sendgrid_emulator) == []


# ---------------------------------------------------------------------- faults and retries


def test_get_retries_through_server_errors(
    hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle
) -> None:
    segment_id = hook.create_segment("Flaky", ALL_CONTACTS)["id"]
    sendgrid_emulator.admin.add_fault("status", method="GET", path_prefix=SEGMENTS, status=503, times=2)
    assert hook.get_segment(segment_id)["id"] == segment_id
    assert [r["status"] for r in api_requests(sendgrid_emulator, "GET")] == [503, 503, 200]


def test_get_retries_a_dropped_connection_and_malformed_json(
    hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.add_fault("drop", method="GET", path_prefix=SEGMENTS)
    sendgrid_emulator.admin.add_fault("malformed", method="GET", path_prefix=SEGMENTS)
    assert hook.list_segments() == []
    assert len(api_requests(sendgrid_emulator, "GET")) == 3


def test_server_errors_exhaust_attempts_with_a_typed_error(
    hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.add_fault(
        "status", method="GET", status=500, times=10, body={"errors": [{"field": None, "message": "boom"}]}
    )
    with pytest.raises(SendGridServerError, match="boom"):
        hook.list_segments()
    assert len(api_requests(sendgrid_emulator, "GET")) == FAST_RETRIES.max_attempts


def test_post_dropped_after_taking_effect_is_sent_once_and_found_by_name(
    hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.add_fault("drop", method="POST", path=f"^{SEGMENTS}$", when="after")
    with pytest.raises(SendGridTransportError):
        hook.create_segment("Created in the dark", ALL_CONTACTS)
    assert len(api_requests(sendgrid_emulator, "POST")) == 1
    # The caller's recovery path: the segment exists, so it must not be created again.
    assert len(hook.find_segments_by_name("Created in the dark")) == 1


@pytest.mark.parametrize("status", [500, 503, 429])
def test_refresh_is_never_retried(
    hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle, status: int
) -> None:
    segment_id = hook.create_segment("Refresh once", ALL_CONTACTS)["id"]
    sendgrid_emulator.admin.add_fault(
        "status", method="POST", path="/refresh/", status=status, headers={"Retry-After": "0"}
    )
    with pytest.raises(SendGridError) as caught:
        hook.refresh_segment(segment_id, "UTC")
    assert caught.value.status_code == status
    assert len(api_requests(sendgrid_emulator, "POST", f"{SEGMENTS}/refresh/")) == 1
    assert hook.get_segment(segment_id).get("refreshes_used", 0) == 0


def test_schedule_is_not_retried_after_a_server_error(
    hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle
) -> None:
    draft = hook.create_single_send("Once", send_to_all=True)
    sendgrid_emulator.admin.add_fault("status", method="PUT", status=502)
    with pytest.raises(SendGridServerError):
        hook.schedule_single_send(draft["id"])
    assert len(api_requests(sendgrid_emulator, "PUT")) == 1
    assert sendgrid_emulator.admin.sends() == []  # the faulted PUT never reached the send logic


def test_rate_limit_beyond_the_cap_fails_fast_with_reset_time(
    hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.configure(rate_limit=1, rate_limit_window=3600)
    hook.list_segments()
    with pytest.raises(SendGridRateLimitError) as caught:
        hook.list_segments()
    assert caught.value.reset_at is not None
    assert caught.value.reset_at > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        seconds=FAST_RETRIES.max_wait
    )
    assert [r["status"] for r in api_requests(sendgrid_emulator)] == [200, 429]


def test_short_rate_limit_wait_is_honoured(
    hook: SendGridMarketingHook, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.add_fault("status", method="GET", status=429, headers={"Retry-After": "0"})
    assert hook.list_segments() == []
    assert [r["status"] for r in api_requests(sendgrid_emulator)] == [429, 200]


# ----------------------------------------------------------------------------------- async


async def test_async_reads_share_one_client_and_retry(sendgrid_emulator: EmulatorHandle) -> None:
    sync_hook = SendGridMarketingHook(retry=FAST_RETRIES)
    segment_id = sync_hook.create_segment("Async", ALL_CONTACTS)["id"]
    sync_hook.close()
    sendgrid_emulator.admin.add_fault("status", method="GET", status=503)

    first, second = SendGridMarketingHook(retry=FAST_RETRIES), SendGridMarketingHook(retry=FAST_RETRIES)
    assert (await first.aget_segment(segment_id, contacts_sample=False))["id"] == segment_id
    assert [s["id"] for s in await second.alist_segments(ids=[segment_id])] == [segment_id]
    assert await first.aget_conn() is await second.aget_conn()
    with pytest.raises(SendGridNotFoundError):
        await second.aget_segment(UNKNOWN_ID)
    assert [r["status"] for r in api_requests(sendgrid_emulator, "GET")] == [503, 200, 200, 404]


def test_airflow_connections_test_uses_the_hook(sendgrid_emulator: EmulatorHandle) -> None:
    """Airflow's own `connections test` finds the hook through the provider and calls it."""
    env = {**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    result = subprocess.run(
        [str(AIRFLOW_BIN), "connections", "test", "sendgrid_default"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Connection success!" in result.stdout, result.stdout + result.stderr
    assert sendgrid_emulator.api_key not in result.stdout + result.stderr
    assert [(r["method"], r["path"]) for r in api_requests(sendgrid_emulator)] == [("GET", SEGMENTS)]
