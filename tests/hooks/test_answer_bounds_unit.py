"""The hook reads at most ``max_response_bytes`` of a JSON answer, sync and async (respx)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridNotFoundError, SendGridResponseError
from airflow_provider_sgseg.hooks._body import DEFAULT_MAX_RESPONSE_BYTES
from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook
from tests.hooks.test_marketing_unit import SEG, MakeHook

CHUNK = b" " * 1000  # whitespace: JSON that is valid whatever its length
TAIL = b'{"id": "%s"}' % SEG.encode()


class Dripped:
    """A body of ``chunks`` pieces of 1,000 bytes (then a segment), counting what the client pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield CHUNK
        yield TAIL


class AsyncDripped(Dripped):
    """:class:`Dripped` for the async client (an async body only)."""

    __iter__ = None  # type: ignore[assignment]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in Dripped.__iter__(self):
            yield chunk


def bounded_hook(limit: int, policy: RetryPolicy) -> SendGridMarketingHook:
    return SendGridMarketingHook("sendgrid_unit", retry=policy, max_response_bytes=limit)


def test_a_2xx_answer_past_the_limit_is_a_response_error_naming_it(
    make_hook: MakeHook, policy: RetryPolicy
) -> None:
    body = Dripped(1000)  # 1 MB
    _, fake = make_hook(lambda request: httpx.Response(200, content=body))
    hook = bounded_hook(5000, policy)
    with pytest.raises(SendGridResponseError, match=r"larger than 5000 bytes .*max_response_bytes") as caught:
        hook.get_segment(SEG)
    assert caught.value.status_code == 200
    assert body.pulled <= 6 * policy.max_attempts  # reading stopped at the limit, on every attempt
    assert len(fake.requests) == policy.max_attempts  # retried like any malformed answer, then raised


def test_an_answer_within_the_limit_is_read_whole(make_hook: MakeHook, policy: RetryPolicy) -> None:
    make_hook(lambda request: httpx.Response(200, content=Dripped(4)))
    assert bounded_hook(4000 + len(TAIL), policy).get_segment(SEG) == {"id": SEG}


def test_an_error_answer_past_the_limit_keeps_its_status_class(
    make_hook: MakeHook, policy: RetryPolicy
) -> None:
    body = Dripped(1000)
    make_hook(lambda request: httpx.Response(404, content=body))
    with pytest.raises(SendGridNotFoundError):
        bounded_hook(5000, policy).get_segment(SEG)
    assert body.pulled <= 6


async def test_the_async_path_is_bounded_too(make_hook: MakeHook, policy: RetryPolicy) -> None:
    body = AsyncDripped(1000)
    make_hook(lambda request: httpx.Response(200, content=body))
    hook = SendGridMarketingHook("sendgrid_unit", retry=RetryPolicy(max_attempts=1), max_response_bytes=5000)
    with pytest.raises(SendGridResponseError, match="larger than 5000 bytes"):
        await hook.aget_segment(SEG)
    assert body.pulled <= 6


def test_the_default_limit_holds_without_configuration(make_hook: MakeHook) -> None:
    hook, _ = make_hook(httpx.Response(200, content=b" " * DEFAULT_MAX_RESPONSE_BYTES + TAIL))
    assert hook.max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES == 32 * 1024 * 1024
    with pytest.raises(SendGridResponseError, match=f"larger than {DEFAULT_MAX_RESPONSE_BYTES} bytes"):
        hook.get_segment(SEG)


@pytest.mark.parametrize("limit", [0, -1, 1.5, "1000", True])
def test_a_bad_limit_is_an_input_error(limit: object) -> None:
    with pytest.raises(SendGridInputError, match="max_response_bytes"):
        SendGridMarketingHook("sendgrid_unit", max_response_bytes=limit)  # type: ignore[arg-type]
