"""A node with tkr-redis stops when asked, through real hosts and the test Redis.

The README ("Shutdown") says what a stop does: the node leaves
``<channel>:cluster:control`` and closes its Redis connections, then exits.
A node stopped right after start-up, while its control listener was still
subscribing, used to wait for that listener forever (2 runs in 10 hung).
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tkr_host.testing import deep_merge, eventually, start_host

#: Start-stop cycles in a row. Without the fix a stop hung within 30 cycles in
#: 24 runs of 26 (most often within the first three); 40 leave less to luck.
CYCLES = 40
#: A bound for a stop that never ends (the kit's own is 15 s), not a measure of one.
STOP_DEADLINE_S = 10.0


async def test_a_node_started_and_stopped_with_no_client_stops_every_time(tkr_settings, tkr_plugins, redis_url, channel):
    settings = deep_merge(tkr_settings, {"plugins": {"redis": {"url": redis_url, "channel": channel}}})
    control = f"{channel}:cluster:control"
    redis = Redis.from_url(redis_url)
    try:
        for cycle in range(CYCLES):
            _, stop = await start_host(settings, tkr_plugins)
            try:
                await asyncio.wait_for(stop(), STOP_DEADLINE_S)
            except TimeoutError:
                pytest.fail(f"cycle {cycle + 1} of {CYCLES}: the node did not stop within {STOP_DEADLINE_S} s")

            async def left() -> bool:
                [(_, listeners)] = await redis.pubsub_numsub(control)
                return int(listeners) == 0

            # Redis notices the closed connection on its own time: a condition, not a sleep.
            await eventually(left, timeout=10, what=f"cycle {cycle + 1}: the stopped node left {control}")
    finally:
        await redis.aclose()
