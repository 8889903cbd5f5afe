"""Issue 7, item 9: ``tkr_connections`` is the number of sockets open now
(docs/operations.md, metrics), after every kind of disconnect and refused connect.

It went to -1 after bans and floods: a connect refused by an ``on_connect`` hook
(the guard refuses a banned principal there) was reported to every
``on_disconnect`` observer, the metrics among them, which had never counted it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from tkr_host.errors import HostError
from tkr_host.testing import ConnectRefused, TkrClient, eventually

IDLE = {"plugins": {"guard": {"idle_timeout_s": 1.0}}}


def gauge(tkr_host, namespace: str = "/chat") -> float:
    return tkr_host.host.metrics.connections.labels(namespace)._value.get()


async def settled(tkr_host, open_now: int, namespace: str = "/chat") -> None:
    """Wait until the host knows ``open_now`` sockets in the namespace, then compare the gauge."""
    await eventually(lambda: sum(1 for ns, _ in tkr_host.host.connections if ns == namespace) == open_now, what="the host to settle")
    assert gauge(tkr_host, namespace) == open_now


@pytest.fixture
async def bystander(tkr_client) -> TkrClient:
    return await tkr_client("bystander")


async def test_a_client_that_leaves(tkr_host, tkr_client, bystander):
    alice = await tkr_client("alice")
    await settled(tkr_host, 2)
    await alice.close()
    await settled(tkr_host, 1)


async def test_a_server_disconnect(tkr_host, tkr_client, bystander):
    alice = await tkr_client("alice")
    await tkr_host.host.disconnect_client(alice.sio.get_sid("/chat"), "/chat", HostError("protocol.shutting_down"))
    await settled(tkr_host, 1)


async def test_a_ban_and_the_banned_principal_coming_back(tkr_host, tkr_client, bystander):
    from tkr_guard.guard import Guard
    from tkr_guard.scoring import Target

    alice = await tkr_client("alice")
    guard = Guard.of(tkr_host.host)
    assert guard is not None
    bans = await guard.backend.ban([Target("principal", "alice")], "a test ban", ban_s=60)
    guard.kick(bans)
    await eventually(lambda: not alice.sio.connected, what="alice to be disconnected")
    await settled(tkr_host, 1)
    for _ in range(3):  # refused by the guard's on_connect
        with pytest.raises(ConnectRefused) as refused:
            await tkr_client("alice")
        assert refused.value.error["code"] == "auth.banned"
    await settled(tkr_host, 1)


@pytest.mark.tkr_settings(IDLE)
async def test_an_idle_timeout(tkr_host, tkr_client):
    await tkr_client("alice")
    await settled(tkr_host, 1)
    await eventually(lambda: not tkr_host.host.connections, what="the idle socket to be closed")
    await settled(tkr_host, 0)


async def test_a_malformed_packet(tkr_host, tkr_client, tkr_token, bystander):
    await malformed_client(tkr_host.url, tkr_token("alice"))
    await settled(tkr_host, 1)


async def test_refused_connects(tkr_host, tkr_client, tkr_connect, tkr_token, bystander):
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: tkr_connect("not a token"),  # authenticate refuses
        lambda: tkr_connect(None),  # no credentials
        lambda: tkr_client("alice", namespace="/agents"),  # the namespace refuses the kind
    ]
    for attempt in attempts:
        with pytest.raises(ConnectRefused):
            await attempt()
    await settled(tkr_host, 1)
    assert gauge(tkr_host, "/agents") == 0


async def test_a_transport_that_closes(tkr_host, tkr_token, bystander):
    url = tkr_host.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url)
        await ws.receive(timeout=5)
        await ws.send_str("40/chat," + json.dumps({"token": tkr_token("alice")}))
        assert (await ws.receive(timeout=5)).data.startswith("40/chat,{")
        await settled(tkr_host, 2)
        await ws.close()
    await settled(tkr_host, 1)


async def test_a_mix_of_everything_never_goes_below_zero(tkr_host, tkr_client, tkr_token):
    from tkr_guard.guard import Guard
    from tkr_guard.scoring import Target

    guard = Guard.of(tkr_host.host)
    assert guard is not None
    clients = [await tkr_client(f"user{i}") for i in range(4)]
    await malformed_client(tkr_host.url, tkr_token("user0"))
    guard.kick(await guard.backend.ban([Target("principal", "user1")], "test", ban_s=60))
    for _ in range(2):
        with pytest.raises(ConnectRefused):
            await tkr_client("user1")
    await clients[2].close()
    await settled(tkr_host, 2)  # user0 and user3 are still connected on their clients
    for client in clients:
        await client.close()
    await settled(tkr_host, 0)


async def malformed_client(url: str, token: str) -> None:
    """Connect /chat over a raw WebSocket, send a packet that cannot be parsed, wait for the close."""
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        await ws.receive(timeout=5)
        await ws.send_str("40/chat," + json.dumps({"token": token}))
        assert (await ws.receive(timeout=5)).data.startswith("40/chat,{")
        await ws.send_str("42/chat,not json")
        async with asyncio.timeout(10):
            while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                pass
