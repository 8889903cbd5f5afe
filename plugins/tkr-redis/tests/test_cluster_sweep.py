"""What a node's sweep does with a dead node's entries: tkr_redis.cluster through two real hosts
on one SQLite store and the test Redis.

Expected values come from plugins/tkr-redis/README.md and docs/protocol.md: every node sweeps
what expired, announces ``offline`` for a member whose last entry faded, and keeps a dead
node's open stream as ``incomplete`` with ``agent.stream_aborted`` (``details: {message_id,
agent_id}`` and ``session_id``; the hint ``Ask the agent again.`` when no chunk had arrived,
and then nothing is stored).

Node B "dies" by losing its refresh task: its entries in Redis fade exactly as a killed
node's do, while the test process keeps it (and its sockets) to stop cleanly afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tkr_host.testing import RunningHost, deep_merge

TTL_S = 3.0  # [plugins.redis] presence_ttl_s: short, yet three refreshes long, so a busy loop never lets a live entry lapse
DEAD_WITHIN = 20.0  # generous: the TTL, one sweep, and a loaded machine


@pytest.fixture
async def nodes(tkr_settings, two_nodes, redis_url, channel) -> AsyncIterator[tuple[RunningHost, RunningHost, Any]]:
    settings = deep_merge(tkr_settings, {"plugins": {"redis": {"url": redis_url, "channel": channel, "presence_ttl_s": TTL_S}}})
    async with two_nodes(settings) as nodes:
        yield nodes


def stop_refreshing(node: RunningHost) -> None:
    """The node's entries in Redis are no longer refreshed (nor does it sweep): a dead node, to the others."""
    tasks: list[asyncio.Task[Any]] = node.host.cluster._tasks  # type: ignore[attr-defined]
    maintain = [task for task in tasks if task.get_coro().__name__ == "_maintain"]  # type: ignore[union-attr]
    assert len(maintain) == 1
    maintain[0].cancel()


def aborted(message_id: str) -> Callable[[dict[str, Any]], bool]:
    """The ``agent.stream_aborted`` error of one stream."""
    return lambda e: e.get("code") == "agent.stream_aborted" and e.get("details", {}).get("message_id") == message_id


async def test_a_member_whose_node_died_goes_offline(nodes):
    node_a, node_b, client = nodes
    alice = await client(node_a, "alice")
    session_id = await alice.create_session(agents=["echo"])
    await client(node_b, "echo", "agent", "/agents")
    await alice.wait_for("presence", lambda p: p["member"]["id"] == "echo" and p["state"] == "online")
    stop_refreshing(node_b)
    gone = await alice.wait_for("presence", lambda p: p["member"]["id"] == "echo" and p["state"] != "online",
                                timeout=DEAD_WITHIN)
    assert gone == {"session_id": session_id, "member": {"id": "echo", "kind": "agent"}, "state": "offline"}


async def test_a_dead_nodes_stream_is_kept_as_incomplete_and_reported(nodes):
    node_a, node_b, client = nodes
    alice = await client(node_a, "alice")
    session_id = await alice.create_session(agents=["echo", "helper"])
    echo = await client(node_b, "echo", "agent", "/agents")
    await alice.wait_for("presence", lambda p: p["member"]["id"] == "echo" and p["state"] == "online")
    asked = await alice.send_text(session_id, "tell me", to="echo")
    assert asked["ok"] is True, asked
    question = asked["message"]["id"]
    kept_id = (await echo.ok("stream:start", {"session_id": session_id, "in_reply_to": question, "to": "helper"}))["message_id"]
    await echo.ok("stream:chunk", {"message_id": kept_id, "delta": "half "})
    await echo.ok("stream:chunk", {"message_id": kept_id, "delta": "a reply"})
    empty_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    stop_refreshing(node_b)

    kept = await alice.wait_for("message", lambda m: m["id"] == kept_id, timeout=DEAD_WITHIN)
    assert kept["session_id"] == session_id and kept["type"] == "text" and kept["status"] == "incomplete"
    assert kept["sender"] == {"id": "echo", "kind": "agent"}
    assert kept["payload"]["text"] == "half a reply"
    assert kept["in_reply_to"] == question and kept["to"] == "helper"

    told = await alice.wait_for("error", aborted(kept_id), timeout=DEAD_WITHIN)
    assert told["session_id"] == session_id and told["details"] == {"message_id": kept_id, "agent_id": "echo"}
    assert told["hint"] == "The partial reply was kept; ask again if you need the rest."
    # The stream no chunk reached: reported, nothing stored.
    told = await alice.wait_for("error", aborted(empty_id), timeout=DEAD_WITHIN)
    assert told["session_id"] == session_id and told["details"] == {"message_id": empty_id, "agent_id": "echo"}
    assert told["hint"] == "Ask the agent again."
    assert [m["id"] for m in await alice.history(session_id)] == [question, kept_id]
