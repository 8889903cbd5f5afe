from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("TKR_TEST_REDIS_URL")
    if not url:
        pytest.skip("TKR_TEST_REDIS_URL is not set: these tests need a Redis server such as redis://127.0.0.1:6379/0")
    return url


@pytest.fixture
async def channel() -> AsyncIterator[str]:
    """A channel of the test's own; the shared-view keys under it are deleted afterwards."""
    name = f"tkr-test-{uuid.uuid4().hex[:12]}"
    yield name
    url = os.environ.get("TKR_TEST_REDIS_URL")
    if url:
        client = Redis.from_url(url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{name}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    """Wait, with a deadline, until ``probe()`` returns something truthy; return it."""

    async def wait(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await probe()
            if value:
                return value
            assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
            await asyncio.sleep(0.02)

    return wait


@pytest.fixture
def subscribed(redis_url: str, eventually: Callable[..., Awaitable[Any]]) -> Callable[[str, int], Awaitable[None]]:
    """Wait until ``count`` listeners (one per node) are subscribed to ``channel``: only then
    does a publish reach every node."""

    async def wait(channel: str, count: int) -> None:
        client = Redis.from_url(redis_url)
        try:
            async def enough() -> bool:
                [(_, listeners)] = await client.pubsub_numsub(channel)
                return int(listeners) >= count

            await eventually(enough, f"{count} nodes subscribed to {channel}")
        finally:
            await client.aclose()

    return wait
