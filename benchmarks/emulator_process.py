"""The SendGrid emulator in its own process, counting the TCP connections it accepts.

A separate process keeps the client's timings and memory free of the server's work. The
server is the emulator's own ASGI app (``create_app``) under uvicorn, exactly as
``EmulatorServer`` runs it, with two benchmark-only additions that live here rather than in
the emulator: uvicorn's HTTP protocol class is subclassed to count ``connection_made``
(one per accepted TCP connection), and ``GET /__bench__/connections`` reports the count.

Child: ``python -m benchmarks.emulator_process '<EmulatorConfig fields as JSON>'`` prints
``listening <base_url>`` once its socket listens. Parent: :class:`EmulatorProcess`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from types import TracebackType
from typing import Any

import httpx
from sgseg_emulator.client import EmulatorAdmin

COUNTER_PATH = "/__bench__/connections"
CONN_ID = "sendgrid_bench"
CONN_ENV_VAR = "AIRFLOW_CONN_SENDGRID_BENCH"

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def connection_json(base_url: str, api_key: str) -> str:
    """An Airflow connection (``AIRFLOW_CONN_*`` JSON) of type ``sendgrid_marketing`` at ``base_url``."""
    return json.dumps({"conn_type": "sendgrid_marketing", "host": base_url, "password": api_key})


class EmulatorProcess:
    """``with EmulatorProcess(clock="manual") as emulator:`` a fresh emulator on a free port."""

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.base_url = ""
        self.api_key = str(config.get("api_key", "SG.emulator-demo-key"))
        self._process: subprocess.Popen[str] | None = None
        self.admin: EmulatorAdmin

    def __enter__(self) -> EmulatorProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.emulator_process", json.dumps(self.config)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            self._process.kill()
            raise RuntimeError(f"the emulator process did not start (said {line!r})")
        self.base_url = line[1]
        self.admin = EmulatorAdmin(self.base_url, self.api_key)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.admin.close()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def connections_accepted(self) -> int:
        """TCP connections the emulator has accepted since it started (this call's own included)."""
        response = httpx.get(self.base_url + COUNTER_PATH, timeout=10)
        response.raise_for_status()
        return int(response.json()["accepted"])

    def connection_json(self) -> str:
        return connection_json(self.base_url, self.api_key)

    def headers(self) -> dict[str, str]:
        """What a plain HTTP client must send (the hook sends the same key and Accept)."""
        return {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}


class _Counter:
    accepted = 0


def _with_counter_route(app: ASGIApp, counter: type[_Counter]) -> ASGIApp:
    async def asgi(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == COUNTER_PATH:
            body = json.dumps({"accepted": counter.accepted}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return asgi


def _counting_protocol(base: type[Any], counter: type[_Counter]) -> type[Any]:
    class CountingProtocol(base):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            counter.accepted += 1
            super().connection_made(transport)

    return CountingProtocol


def main(argv: list[str]) -> None:
    import uvicorn
    from sgseg_emulator.app import create_app
    from sgseg_emulator.config import EmulatorConfig
    from sgseg_emulator.state import Emulator

    app = _with_counter_route(create_app(Emulator(EmulatorConfig(**json.loads(argv[0])))), _Counter)
    # The protocol uvicorn would pick by itself ("auto": httptools when installed, else h11).
    probe = uvicorn.Config(app, log_level="warning")
    probe.load()
    config = uvicorn.Config(
        app,
        http=_counting_protocol(probe.http_protocol_class, _Counter),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(config.backlog)  # connections wait in the backlog until uvicorn accepts them
    print(f"listening http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing else may write to the parent's pipe
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])
