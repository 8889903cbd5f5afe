"""Two nodes that behave as one: the shared view of tkr_redis.cluster, through real hosts,
real Socket.IO clients, one SQLite store and the test Redis.

Expected values come from docs/protocol.md: presence per member (not per socket
or node), the ``streams``/``agents`` of a ``session:join``, ``GET /api/v1/agents``
and ``stream:stop`` answer alike on every node.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tkr_host import HostError
from tkr_host.testing import RunningHost, TkrClient, deep_merge, eventually, make_token


@pytest.fixture
async def nodes(tkr_settings, two_nodes, redis_url, channel, subscribed) -> AsyncIterator[tuple[RunningHost, RunningHost, Any]]:
    settings = deep_merge(tkr_settings, {"plugins": {"redis": {"url": redis_url, "channel": channel}}})
    async with two_nodes(settings) as nodes:
        yield nodes


async def listening(subscribed, channel: str) -> None:
    """Both nodes' manager listeners and control-channel listeners are subscribed."""
    await subscribed(channel, 2)
    await subscribed(f"{channel}:cluster:control", 2)


async def invite(creator: TkrClient, session_id: str, *members: str) -> None:
    for member in members:
        await creator.ok("session:invite", {"session_id": session_id, "member": {"id": member, "kind": "user"}})


def presence_of(client: TkrClient, member_id: str) -> list[str]:
    return [event["state"] for event in client.received("presence") if event["member"]["id"] == member_id]


async def test_presence_counts_a_members_sockets_on_every_node_once(nodes, channel, subscribed):
    node_a, node_b, client = nodes
    carol = await client(node_a, "carol")
    session_id = await carol.create_session()
    await invite(carol, session_id, "alice", "bob")
    bob = await client(node_a, "bob")
    await bob.join(session_id)
    alice_on_b = await client(node_b, "alice")
    alice_on_a = await client(node_a, "alice")
    await listening(subscribed, channel)
    await alice_on_b.join(session_id)
    await bob.wait_for("presence", lambda e: e["member"]["id"] == "alice" and e["state"] == "online")
    await alice_on_a.join(session_id)  # a second tab, on the other node: no second `online`
    await alice_on_b.ok("session:leave", {"session_id": session_id})  # not her last socket: no `offline`
    await alice_on_a.ok("session:leave", {"session_id": session_id})
    await bob.wait_for("presence", lambda e: e["member"]["id"] == "alice" and e["state"] == "offline")
    assert presence_of(bob, "alice") == ["online", "offline"]


async def test_a_join_on_either_node_lists_the_streams_statuses_and_agents_of_the_other(nodes, channel, subscribed):
    node_a, node_b, client = nodes
    alice = await client(node_a, "alice")
    session_id = await alice.create_session(agents=["echo"])
    await invite(alice, session_id, "bob")
    echo = await client(node_a, "echo", "agent", "/agents")
    await echo.ok("agent:status", {"session_id": session_id, "state": "thinking", "detail": "reading"})
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "Hel"})
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "lo"})
    bob = await client(node_b, "bob")
    joined = await bob.join(session_id)
    assert joined["streams"] == [{"message_id": message_id, "sender": {"id": "echo", "kind": "agent"}, "index": 1, "text": "Hello"}]
    [status] = joined["agents"]
    assert (status["id"], status["state"], status["detail"]) == ("echo", "thinking", "reading")
    async with aiohttp.ClientSession() as http, http.get(f"{node_b.url}/api/v1/agents",
                                                        headers={"Authorization": f"Bearer {make_token('bob')}"}) as response:
        assert response.status == 200
        assert (await response.json())["agents"] == [{"id": "echo", "name": "echo", "online": True, "state": "thinking"}]
    await echo.ok("stream:end", {"message_id": message_id})
    await listening(subscribed, channel)
    assert (await bob.join(session_id))["streams"] == []


async def test_stream_stop_on_one_node_stops_the_stream_the_other_relays(nodes, channel, subscribed):
    node_a, node_b, client = nodes
    alice = await client(node_a, "alice")
    session_id = await alice.create_session(agents=["echo"])
    await invite(alice, session_id, "bob")
    echo = await client(node_a, "echo", "agent", "/agents")
    bob = await client(node_b, "bob")
    await bob.join(session_id)
    await listening(subscribed, channel)
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "half a th"})
    ack = await bob.ok("stream:stop", {"session_id": session_id, "message_id": message_id})
    assert ack["message"]["id"] == message_id
    told = await echo.wait_for("stream:stop")
    assert told == {"session_id": session_id, "message_id": message_id, "by": "bob"}
    stored = await bob.wait_for("message", lambda m: m["id"] == message_id)
    assert stored["status"] == "stopped" and stored["payload"]["text"] == "half a th"
    late = await echo.call("stream:chunk", {"message_id": message_id, "delta": "more"})
    assert late["ok"] is False and late["error"]["code"] == "conflict.stream_closed"
    gone = await bob.call("stream:stop", {"session_id": session_id, "message_id": message_id})
    assert gone["ok"] is False and gone["error"]["code"] == "not_found.stream"


async def test_disconnect_client_reaches_a_socket_on_the_other_node(nodes, channel, subscribed):
    node_a, node_b, client = nodes
    alice = await client(node_a, "alice")
    await client(node_b, "bob")  # node B's listeners start with its first socket
    await listening(subscribed, channel)
    sid = alice.sio.get_sid("/chat")
    await node_b.host.disconnect_client(sid, "/chat", HostError("protocol.shutting_down"))
    told = await alice.wait_for("error")
    assert told["code"] == "protocol.shutting_down"

    async def closed() -> bool:
        return not alice.sio.connected and node_a.host.connection(sid, "/chat") is None

    await eventually(closed, timeout=10, what="alice's connection closed")
