"""The hook against a hostile HTTP server on loopback: answers that drip in a byte at a time.

Each byte arrives well within the connection's read timeout, so only a total deadline per request
ends the exchange: the hook gives up at the connection's ``timeout`` with a typed, retriable
error instead of waiting for the whole answer (here, tens of seconds; in the field, forever).
The server records whether it got the whole answer out, so nothing here measures time.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from airflow_provider_sgseg.exceptions import SendGridTransportError
from airflow_provider_sgseg.hooks import marketing
from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook

from .conftest import ALL_CONTACTS, Sleeps

SEGMENT_ID = "6b2b2a0e-7e1f-4b8b-9a53-0c1c3d5e6f70"
SEGMENT = {"id": SEGMENT_ID, "name": "Buyers", "query_dsl": ALL_CONTACTS, "contacts_count": 3}
TIMEOUT = 2.0  # the connection's timeout (seconds): a connect on a loaded machine fits well within it
DRIP_INTERVAL = 0.1  # one byte every 0.1 s: each read within the timeout, the answer ~25 s long


@dataclass
class DripServer:
    """Answers every request 200 with a segment, dripping the headers or the body byte by byte."""

    part: str  # "headers" or "body"
    requests: list[str] = field(default_factory=list)
    completed: int = 0  # answers sent in full
    gone: threading.Event = field(default_factory=threading.Event)  # a client hung up mid-answer

    def answer(self, connection: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = connection.recv(65536)
            if not chunk:
                return
            head += chunk
        lines = head.split(b"\r\n")
        self.requests.append(lines[0].decode("latin-1"))
        length = next(
            (int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")), 0
        )
        received = len(head.split(b"\r\n\r\n", 1)[1])
        while received < length:
            received += len(connection.recv(65536))
        body = json.dumps(SEGMENT).encode()
        headers = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        dripped, sent_at_once = (headers, body) if self.part == "headers" else (body, b"")
        if self.part == "body":
            connection.sendall(headers)
        try:
            for index in range(len(dripped)):
                connection.sendall(dripped[index : index + 1])
                time.sleep(DRIP_INTERVAL)
            connection.sendall(sent_at_once)
        except OSError:  # the client hung up: the deadline held
            self.gone.set()
            return
        self.completed += 1


@pytest.fixture(params=["headers", "body"])
def drip_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[DripServer]:
    """The server, and ``sendgrid_default`` pointing at it with a 0.5 s timeout."""
    server = DripServer(request.param)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            server.answer(self.request)

    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    tcp.daemon_threads = True
    thread = threading.Thread(target=tcp.serve_forever, daemon=True)
    thread.start()
    conn = {
        "conn_type": "sendgrid_marketing",
        "host": f"http://127.0.0.1:{tcp.server_address[1]}",
        "password": "SG.hostile-test-key",
        "extra": {"timeout": TIMEOUT},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", json.dumps(conn))
    try:
        yield server
    finally:
        tcp.shutdown()
        tcp.server_close()
        thread.join(timeout=5)


def one_attempt(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(max_attempts=1, sleep=sleeps.sleep, async_sleep=sleeps.async_sleep)


def hung_up(server: DripServer) -> bool:
    # The client closed the connection at its deadline; the server sees it at its next byte.
    return server.gone.wait(timeout=5) and server.completed == 0


def test_a_dripping_answer_to_a_read_is_cut_off_at_the_timeout(
    drip_server: DripServer, sleeps: Sleeps
) -> None:
    hook = SendGridMarketingHook(retry=one_attempt(sleeps))
    with pytest.raises(SendGridTransportError, match="ReadTimeout"):
        hook.get_segment(SEGMENT_ID)
    assert drip_server.requests == [
        f"GET /v3/marketing/segments/2.0/{SEGMENT_ID}?contacts_sample=true HTTP/1.1"
    ]
    assert hung_up(drip_server)


def test_a_dripping_answer_is_retried_like_any_timeout(drip_server: DripServer, sleeps: Sleeps) -> None:
    policy = RetryPolicy(max_attempts=2, initial_wait=1.0, jitter=0.0, sleep=sleeps.sleep)
    with pytest.raises(SendGridTransportError):
        SendGridMarketingHook(retry=policy).list_segments()
    assert len(drip_server.requests) == 2 and sleeps.seconds == [1.0]
    assert hung_up(drip_server)


def test_a_dripping_answer_to_a_write_is_cut_off_and_not_resent(
    drip_server: DripServer, sleeps: Sleeps
) -> None:
    hook = SendGridMarketingHook(retry=RetryPolicy(max_attempts=3, sleep=sleeps.sleep))
    with pytest.raises(SendGridTransportError):
        hook.create_segment("Buyers", ALL_CONTACTS)
    assert drip_server.requests == ["POST /v3/marketing/segments/2.0 HTTP/1.1"]
    assert sleeps.seconds == []
    assert hung_up(drip_server)


def test_a_dripping_answer_to_an_async_read_is_cut_off_at_the_timeout(
    drip_server: DripServer, sleeps: Sleeps
) -> None:
    async def read() -> None:
        try:
            await SendGridMarketingHook(retry=one_attempt(sleeps)).aget_segment(SEGMENT_ID)
        finally:
            await marketing.aclose_shared_clients()

    with pytest.raises(SendGridTransportError, match="ReadTimeout"):
        asyncio.run(read())
    assert len(drip_server.requests) == 1
    assert hung_up(drip_server)


def test_a_dripping_export_file_is_cut_off_at_the_timeout(drip_server: DripServer, sleeps: Sleeps) -> None:
    # A file host is as foreign as any answer: a download that stops moving (less than a chunk of
    # 1 MiB within the connection's timeout) is cut off, as an API answer is (issue 20 part 3).
    import io

    base = json.loads(os.environ["AIRFLOW_CONN_SENDGRID_DEFAULT"])["host"]
    hook = SendGridMarketingHook(retry=one_attempt(sleeps))
    with pytest.raises(SendGridTransportError, match="ReadTimeout"):
        hook.download_export_file(f"{base}/__files__/contacts-1.csv?sig=s", io.BytesIO())
    assert len(drip_server.requests) == 1
    assert hung_up(drip_server)
