from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from tkr_host.testing import eventually


@pytest.fixture
def channel(redis_prefix: str) -> str:
    """A channel of the test's own: the kit's ``redis_prefix``, whose keys (the shared view under
    ``<channel>:``) are deleted afterwards. It needs no server: the tests of a dead Redis use it too."""
    return redis_prefix


@pytest.fixture
def subscribed(redis_url: str) -> Callable[[str, int], Awaitable[None]]:
    """Wait until ``count`` listeners (one per node) are subscribed to ``channel``: only then
    does a publish reach every node."""

    async def wait(channel: str, count: int) -> None:
        client = Redis.from_url(redis_url)
        try:
            async def enough() -> bool:
                [(_, listeners)] = await client.pubsub_numsub(channel)
                return int(listeners) >= count

            await eventually(enough, timeout=10, what=f"{count} nodes subscribed to {channel}")
        finally:
            await client.aclose()

    return wait
