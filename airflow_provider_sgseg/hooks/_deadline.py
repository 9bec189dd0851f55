"""A total deadline for each HTTP exchange of the sync client.

httpx's timeouts bound each socket operation, not a request: a server that drips its answer a
byte at a time, each within the read timeout, holds a call for as long as it likes. Inside
:func:`deadline`, every connect, read and write of a client built by :func:`bounded_client` gets
at most the time left, and none starts once it is gone (``httpx.ReadTimeout`` and kin, which
the hook treats like any other timeout). File transfers (``hooks/_transfer.py``) :func:`renew`
the deadline per chunk moved. The async path needs none of this: it wraps each request in
``asyncio.wait_for``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

_DEADLINE: ContextVar[float | None] = ContextVar("sgseg_request_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound the exchanges of :func:`bounded_client` clients in this context to ``seconds`` in all."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def renew(seconds: float) -> None:
    """Inside :func:`deadline`: ``seconds`` from now are left again. A file transfer calls it per
    chunk it moves, so a file of any size passes while one that stops moving is cut off."""
    if _DEADLINE.get() is not None:
        _DEADLINE.set(time.monotonic() + seconds)


def _left(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` shortened to what is left of the deadline; ``error`` once nothing is left."""
    end = _DEADLINE.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the request's total deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        bounded = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        bounded = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        bounded = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def bounded_client(**options: Any) -> httpx.Client:
    """``httpx.Client(**options)`` whose transports (proxies from the environment included) honour
    :func:`deadline`. httpx has no setting for a network backend, so it is set on each transport's
    connection pool (``_pool._network_backend``, stable across httpcore 1.x; a test guards it)."""
    client = httpx.Client(**options)
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _Backend):
            pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
    return client
