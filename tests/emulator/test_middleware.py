"""Auth, rate-limit headers and limits, the request log, and every kind of injected fault."""

from __future__ import annotations

import time

import httpx
import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import ALL_CONTACTS, SEGMENTS, create_segment

UNAUTHORIZED = {"errors": [{"field": None, "message": "authorization required"}]}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}])
def test_missing_or_wrong_key_is_401(sendgrid_emulator: EmulatorHandle, headers: dict[str, str]) -> None:
    for path in (SEGMENTS, "/__emulator__/clock"):
        response = httpx.get(sendgrid_emulator.base_url + path, headers=headers)
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED


def test_rate_limit_headers_on_every_response(api: httpx.Client) -> None:
    first = api.get(SEGMENTS)
    second = api.get(SEGMENTS + "/7c1f0e3a-1111-4222-8333-444455556666")
    assert second.status_code == 404
    for response in (first, second):
        assert int(response.headers["X-RateLimit-Reset"]) > 1_000_000_000
        assert int(response.headers["X-RateLimit-Limit"]) >= int(response.headers["X-RateLimit-Remaining"])
    assert int(second.headers["X-RateLimit-Remaining"]) == int(first.headers["X-RateLimit-Remaining"]) - 1


def test_general_rate_limit_answers_429_until_the_window_ends(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.configure(rate_limit=3, rate_limit_window=60)
    now = sendgrid_emulator.admin.now().timestamp()
    sendgrid_emulator.admin.advance_clock(60 - now % 60)  # start of a fresh window
    assert [api.get(SEGMENTS).status_code for _ in range(3)] == [200, 200, 200]
    limited = api.get(SEGMENTS)
    assert limited.status_code == 429
    assert limited.json() == {"errors": [{"field": None, "message": "too many requests"}]}
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["Retry-After"] == "60"
    sendgrid_emulator.admin.advance_clock(60)
    assert api.get(SEGMENTS).status_code == 200


def test_request_log_records_requests_but_never_the_key(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    create_segment(api, "logged")
    api.get(SEGMENTS, params={"ids": ["a", "b"]})
    httpx.get(sendgrid_emulator.base_url + SEGMENTS)  # unauthenticated
    log = sendgrid_emulator.admin.requests()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("POST", SEGMENTS, 201),
        ("GET", SEGMENTS, 200),
        ("GET", SEGMENTS, 401),
    ]
    assert log[0]["json"] == {"name": "logged", "query_dsl": ALL_CONTACTS}
    assert log[1]["query"] == {"ids": ["a", "b"]}
    assert sendgrid_emulator.api_key not in str(log)
    assert "authorization" not in str(log).lower()
    assert sendgrid_emulator.admin.requests(method="POST") == log[:1]
    assert sendgrid_emulator.admin.requests(path_prefix="/v3/marketing/lists") == []


def test_status_fault_for_the_next_n_matching_requests(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.add_fault(
        "status",
        method="GET",
        path_prefix=SEGMENTS,
        times=2,
        status=503,
        headers={"Retry-After": "7"},
        body={"errors": [{"field": None, "message": "down"}]},
    )
    assert (
        api.post(SEGMENTS, json={"name": "ok", "query_dsl": ALL_CONTACTS}).status_code == 201
    )  # other method
    first, second, third = (api.get(SEGMENTS) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.headers["Retry-After"] == "7"
    assert first.json()["errors"][0]["message"] == "down"
    assert [e["fault"] for e in sendgrid_emulator.admin.requests(method="GET")] == ["status", "status", None]


def test_path_regex_fault_only_hits_matching_paths(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    segment_id = create_segment(api)["id"]
    sendgrid_emulator.admin.add_fault("status", path=r"/2\.0/[0-9a-f-]{36}$", status=500)
    assert api.get(SEGMENTS).status_code == 200
    assert api.get(f"{SEGMENTS}/{segment_id}").status_code == 500
    assert api.get(f"{SEGMENTS}/{segment_id}").status_code == 200


def test_drop_fault_closes_the_connection_without_an_answer(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.add_fault("drop", method="GET", path_prefix=SEGMENTS)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.get(SEGMENTS)
    assert api.get(SEGMENTS).status_code == 200
    dropped = sendgrid_emulator.admin.requests()[0]
    assert (dropped["fault"], dropped["status"]) == ("drop", None)


def test_drop_after_processing_keeps_the_side_effect(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.add_fault("drop", method="POST", path_prefix=SEGMENTS, when="after")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.post(SEGMENTS, json={"name": "created anyway", "query_dsl": ALL_CONTACTS})
    assert [s["name"] for s in api.get(SEGMENTS).json()["results"]] == ["created anyway"]


def test_status_after_processing_replaces_the_answer(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.add_fault("status", method="POST", path_prefix=SEGMENTS, when="after", status=502)
    response = api.post(SEGMENTS, json={"name": "hidden success", "query_dsl": ALL_CONTACTS})
    assert response.status_code == 502
    assert len(api.get(SEGMENTS).json()["results"]) == 1


def test_malformed_json_fault(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.add_fault("malformed", path_prefix=SEGMENTS)
    response = api.get(SEGMENTS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        response.json()


@pytest.mark.parametrize("when", ["before", "after"])
def test_delay_fault_causes_a_client_read_timeout(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, when: str
) -> None:
    sendgrid_emulator.admin.add_fault("delay", method="POST", path_prefix=SEGMENTS, seconds=0.5, when=when)
    with pytest.raises(httpx.ReadTimeout):
        api.post(SEGMENTS, json={"name": f"slow {when}", "query_dsl": ALL_CONTACTS}, timeout=0.1)
    # The server still handles the request; wait (bounded) until it has.
    deadline = time.monotonic() + 10
    while (
        not (names := [s["name"] for s in api.get(SEGMENTS).json()["results"]])
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert names == [f"slow {when}"]


def test_delay_fault_answers_normally_after_waiting(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.add_fault("delay", method="GET", path_prefix=SEGMENTS, seconds=0.2)
    response = api.get(SEGMENTS)
    assert response.status_code == 200
    assert response.json() == {"results": []}
    assert response.elapsed.total_seconds() >= 0.2


def test_drip_fault_sends_the_real_answer_in_pieces(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    created = create_segment(api, "dripped")
    sendgrid_emulator.admin.add_fault("drip", method="GET", path_prefix=SEGMENTS, seconds=0.05)
    pieces: list[bytes] = []
    with api.stream("GET", f"{SEGMENTS}/{created['id']}") as response:
        pieces.extend(response.iter_raw())
    assert len(pieces) > 1 and all(len(piece) <= 8 for piece in pieces)
    assert httpx.Response(200, content=b"".join(pieces)).json()["id"] == created["id"]
    refused = httpx.post(
        sendgrid_emulator.base_url + "/__emulator__/faults",
        json={"kind": "drip", "seconds": 0},
        headers={"Authorization": f"Bearer {sendgrid_emulator.api_key}"},
    )
    assert refused.status_code == 400 and "drip fault needs seconds > 0" in refused.text


def test_faults_can_be_listed_and_cleared(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    admin = sendgrid_emulator.admin
    armed = admin.add_fault("status", status=500, times=3)
    assert armed[0]["times"] == 3
    admin.clear_faults()
    assert api.get(SEGMENTS).status_code == 200
    bad = httpx.post(
        sendgrid_emulator.base_url + "/__emulator__/faults",
        json={"kind": "explode"},
        headers={"Authorization": f"Bearer {sendgrid_emulator.api_key}"},
    )
    assert bad.status_code == 400
    assert "kind" in bad.json()["errors"][0]["message"]


def test_admin_requests_are_never_faulted_or_logged(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    sendgrid_emulator.admin.add_fault("status", status=500)
    assert sendgrid_emulator.admin.now()
    assert sendgrid_emulator.admin.requests() == []
    assert api.get(SEGMENTS).status_code == 500
