from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from tkr_host.testing import RunningHost, TkrClient, connect_client, eventually, make_token, start_host

#: ``client(node, principal_id, kind="user", namespace="/chat")``: a client connected to one node.
NodeClient = Callable[..., Awaitable[TkrClient]]


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


@pytest.fixture
def two_nodes(tkr_plugins: list[Any]) -> Callable[[dict[str, Any]], contextlib.AbstractAsyncContextManager[tuple[RunningHost, RunningHost, NodeClient]]]:
    """Two hosts on ``settings`` (one store, one Redis) and a ``client`` maker whose clients are
    closed, then both hosts stopped, when the block ends."""

    @contextlib.asynccontextmanager
    async def run(settings: dict[str, Any]) -> AsyncIterator[tuple[RunningHost, RunningHost, NodeClient]]:
        node_a, stop_a = await start_host(settings, tkr_plugins)
        node_b, stop_b = await start_host(settings, tkr_plugins)
        clients: list[TkrClient] = []

        async def client(node: RunningHost, principal_id: str, kind: str = "user", namespace: str = "/chat") -> TkrClient:
            made = TkrClient(await connect_client(node.url, make_token(principal_id, kind), namespace), principal_id, namespace)
            clients.append(made)
            return made

        try:
            yield node_a, node_b, client
        finally:
            for made in clients:
                await made.close()
            await stop_a()
            await stop_b()

    return run
