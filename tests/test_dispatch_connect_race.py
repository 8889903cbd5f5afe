"""A client that leaves while its connect is still being handled is not left connected.

docs/operations.md (metrics): `tkr_connections` is the number of sockets open now;
docs/plugins.md: `on_disconnect` observes a socket that left a namespace, whatever
the cause. Here the client closes its transport while an `on_connect` hook is still
running; once the hook returns, the host knows no such socket, the observers saw it
leave, and the gauge is back where it was.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tkr_host import Principal, hookimpl
from tkr_host.testing import eventually


class Holding:
    """Holds every /chat on_connect until released; records the disconnects it is shown."""

    def __init__(self) -> None:
        self.entered: asyncio.Queue[str] = asyncio.Queue()
        self.release = asyncio.Event()
        self.disconnects: list[str] = []

    @hookimpl
    async def on_connect(self, host: Any, principal: Principal, sid: str, namespace: str, peer: str) -> None:
        if principal.id == "hasty":
            await self.entered.put(sid)
            await self.release.wait()

    @hookimpl
    def on_disconnect(self, host: Any, principal: Principal, sid: str, namespace: str, reason: str) -> None:
        self.disconnects.append(sid)


@pytest.fixture
def holding() -> Holding:
    return Holding()


@pytest.fixture
def tkr_plugins(holding: Holding) -> list[Any]:
    return [holding]


def gauge(tkr_host: Any) -> float:
    return float(tkr_host.host.metrics.connections.labels("/chat")._value.get())


async def test_a_client_that_leaves_during_its_connect_is_cleaned_up(tkr_host: Any, tkr_token: Any, holding: Holding) -> None:
    host = tkr_host.host
    url = tkr_host.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url)
        await ws.receive(timeout=5)  # the Engine.IO open packet
        await ws.send_str("40/chat," + json.dumps({"token": tkr_token("hasty")}))
        sid = await asyncio.wait_for(holding.entered.get(), 5)
        assert ("/chat", sid) in host.connections  # admitted, its hook still running
        await ws.close()
    # python-socketio forgets the socket once its transport is gone.
    await eventually(lambda: host.sio.get_environ(sid, "/chat") is None, what="the transport's close seen by the server")
    holding.release.set()
    await eventually(lambda: sid in holding.disconnects, what="the observers told")
    assert ("/chat", sid) not in host.connections
    await eventually(lambda: gauge(tkr_host) == 0, what="the gauge back at 0")
