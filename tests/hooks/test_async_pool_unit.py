"""The shared AsyncClient keeps at most MAX_CONCURRENT_ASYNC_REQUESTS requests in flight.

A triggerer running a thousand waits may poll all of them at once; the hook queues the burst
itself instead of letting httpx's pool open (and churn) hundreds of connections.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from airflow_provider_sgseg.hooks import marketing
from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook

SEG = "6b2b2a0e-7e1f-4b8b-9a53-0c1c3d5e6f70"


@pytest.fixture(autouse=True)
async def _close_shared_async_clients() -> AsyncIterator[None]:
    yield
    await marketing.aclose_shared_clients()


async def test_a_burst_of_async_reads_is_capped_and_every_read_is_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SENDGRID_CAP", json.dumps({"conn_type": "sendgrid_marketing", "password": "SG.cap-key"})
    )
    in_flight = peak = answered = 0

    async def slow_sendgrid(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak, answered
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        answered += 1
        return httpx.Response(200, json={"id": SEG, "contacts_count": answered})

    hooks = [SendGridMarketingHook("sendgrid_cap", retry=RetryPolicy(max_attempts=1)) for _ in range(60)]

    with respx.mock(assert_all_mocked=True) as sendgrid_api:
        sendgrid_api.route().mock(side_effect=slow_sendgrid)
        segments = await asyncio.gather(*(hook.aget_segment(SEG) for hook in hooks))

    assert answered == 60
    assert sorted(segment["contacts_count"] for segment in segments) == list(range(1, 61))
    assert peak == marketing.MAX_CONCURRENT_ASYNC_REQUESTS
