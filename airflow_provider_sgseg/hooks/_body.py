"""The bytes of an API answer, read up to a bound (file transfers have theirs in ``_transfer.py``).

httpx would read a whole answer into memory whatever its size; the hook streams it instead and
stops after ``limit`` bytes (decoded: a gzip-encoded answer counts what it inflates to, checked
after each network chunk).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx

# SendGrid's largest JSON answers (a page of Single Sends or stats, every segment with its
# query, a segment with its 50-contact sample) stay far below this.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Body:
    """An answer's body: ``content`` is all of it when ``complete``, else its first ``limit`` bytes."""

    content: bytes
    complete: bool


class _Reader:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> bool:
        """Keep ``chunk`` (up to the limit); False once the body went past it."""
        room = self.limit - self.size
        self.chunks.append(chunk[:room])
        self.size += len(chunk)
        return self.size <= self.limit

    def body(self) -> Body:
        return Body(b"".join(self.chunks), self.size <= self.limit)


def read_body(response: httpx.Response, limit: int) -> Body:
    """Read a streamed ``response``'s body, at most ``limit`` bytes of it (then stop reading)."""
    reader = _Reader(limit)
    chunks: Iterator[bytes] = response.iter_bytes()
    for chunk in chunks:
        if not reader.add(chunk):
            break
    return reader.body()


async def aread_body(response: httpx.Response, limit: int) -> Body:
    """Async :func:`read_body`."""
    reader = _Reader(limit)
    chunks: AsyncIterator[bytes] = response.aiter_bytes()
    async for chunk in chunks:
        if not reader.add(chunk):
            break
    return reader.body()
