"""The async client pool: one ``httpx.AsyncClient`` per event loop and connection, shared by every
hook instance, with a cap on requests in flight."""

from __future__ import annotations

import asyncio
import weakref

import httpx

from airflow_provider_sgseg.hooks._settings import ConnectionSettings

# One AsyncClient per (event loop, connection id), shared by every hook instance
# in that loop: a triggerer running a thousand triggers keeps one connection pool, not a thousand.
_SHARED_ASYNC_CLIENTS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[ConnectionSettings, httpx.AsyncClient]]
] = weakref.WeakKeyDictionary()


def shared_async_client(settings: ConnectionSettings) -> httpx.AsyncClient:
    """The running loop's AsyncClient for ``settings.conn_id`` (a new one if the settings changed)."""
    clients = _SHARED_ASYNC_CLIENTS.setdefault(asyncio.get_running_loop(), {})
    key = settings.conn_id
    cached = clients.get(key)
    if cached is not None and cached[0] == settings and not cached[1].is_closed:
        return cached[1]
    # First use, or the connection changed (e.g. a rotated key): a fresh client for new calls.
    client = httpx.AsyncClient(**settings.client_options())
    clients[key] = (settings, client)
    return client


# Requests in flight at once per shared AsyncClient. A triggerer's thousand waits may poll in the
# same second; beyond this many they queue on a semaphore (cheap) rather than inside httpx's pool,
# which rescans every queued request on each change and, once it holds more connections than
# max_keepalive_connections, closes idle ones at once: a burst would then open hundreds of
# connections to SendGrid and time out in the pool (measured in benchmarks/triggerer_scale.py).
MAX_CONCURRENT_ASYNC_REQUESTS = 10
_REQUEST_SLOTS: weakref.WeakKeyDictionary[httpx.AsyncClient, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def request_slots(client: httpx.AsyncClient) -> asyncio.Semaphore:
    """The semaphore capping ``client``'s requests in flight at ``MAX_CONCURRENT_ASYNC_REQUESTS``."""
    slots = _REQUEST_SLOTS.get(client)
    if slots is None:
        slots = _REQUEST_SLOTS[client] = asyncio.Semaphore(MAX_CONCURRENT_ASYNC_REQUESTS)
    return slots


async def aclose_shared_clients() -> None:
    """Close the AsyncClients shared in the running event loop (call at shutdown or in tests)."""
    clients = _SHARED_ASYNC_CLIENTS.pop(asyncio.get_running_loop(), {})
    for _, client in clients.values():
        await client.aclose()
