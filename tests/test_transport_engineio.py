"""Engine.IO as the reference server answers it (docs/operations.md, "The official
protocol suites"): one test per difference the suites found in python-engineio.

Raw HTTP (aiohttp) and raw WebSocket frames against a real Hypercorn, with the
suites' heartbeat: ping_interval_s = 0.3, ping_timeout_s = 0.2.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tkr_host.testing import RunningHost

pytestmark = pytest.mark.tkr_settings({"host": {"ping_interval_s": 0.3, "ping_timeout_s": 0.2}})

#: docs/configuration.md: the heartbeat, advertised to clients in milliseconds.
PING_INTERVAL_MS = 300
PING_TIMEOUT_MS = 200


async def eventually(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.005)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def eio_url(host: RunningHost, **query: str) -> str:
    params = "&".join(f"{key}={value}" for key, value in {"EIO": "4", **query}.items())
    return f"{host.url}/socket.io/?{params}"


async def open_polling(http: aiohttp.ClientSession, host: RunningHost) -> dict[str, Any]:
    async with http.get(eio_url(host, transport="polling")) as response:
        assert response.status == 200
        body = await response.text()
    assert body.startswith("0")
    handshake: dict[str, Any] = json.loads(body[1:])
    return handshake


async def poll(http: aiohttp.ClientSession, host: RunningHost, sid: str) -> tuple[int, str]:
    async with http.get(eio_url(host, transport="polling", sid=sid)) as response:
        return response.status, await response.text()


async def test_a_sub_second_ping_interval_is_advertised_in_milliseconds(tkr_host: RunningHost, http: aiohttp.ClientSession) -> None:
    handshake = await open_polling(http, tkr_host)
    assert handshake["pingInterval"] == PING_INTERVAL_MS  # python-engineio: int(0.3) * 1000 = 0
    assert handshake["pingTimeout"] == PING_TIMEOUT_MS
    async with http.ws_connect(eio_url(tkr_host, transport="websocket")) as ws:
        opened = await ws.receive_str(timeout=5)
        assert json.loads(opened[1:])["pingInterval"] == PING_INTERVAL_MS


async def test_a_request_without_a_transport_is_a_bad_request(tkr_host: RunningHost, http: aiohttp.ClientSession) -> None:
    async with http.get(eio_url(tkr_host)) as response:
        assert response.status == 400  # python-engineio takes it for polling and opens a session


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_an_unsupported_method_is_a_bad_request(tkr_host: RunningHost, http: aiohttp.ClientSession, method: str) -> None:
    async with http.request(method, eio_url(tkr_host, transport="polling")) as response:
        assert response.status == 400  # python-engineio answers 405
    assert tkr_host.host.sio.open_session_count() == 0


async def test_a_poll_after_a_missed_heartbeat_is_a_bad_request(tkr_host: RunningHost, http: aiohttp.ClientSession) -> None:
    sid = (await open_polling(http, tkr_host))["sid"]
    # The server pings after ping_interval; this client neither polls the ping nor
    # answers it. python-engineio's timer checks only now and then, and would answer
    # a poll just after the deadline 200, with the stale ping.
    await eventually(lambda: tkr_host.host.sio.heartbeat_deadline(sid) is not None)
    deadline = tkr_host.host.sio.heartbeat_deadline(sid)
    assert deadline is not None
    # Not a synchronisation: the behaviour under test is the clock passing the deadline.
    await eventually(lambda: time.time() > deadline + 0.01)
    status, _ = await poll(http, tkr_host, sid)
    assert status == 400
    assert not tkr_host.host.sio.is_open(sid)


async def test_a_second_pending_poll_closes_the_session(tkr_host: RunningHost, http: aiohttp.ClientSession) -> None:
    sid = (await open_polling(http, tkr_host))["sid"]
    first = asyncio.ensure_future(poll(http, tkr_host, sid))
    await eventually(lambda: tkr_host.host.sio.pending_polls(sid) == 1)
    status, _ = await poll(http, tkr_host, sid)
    assert status == 400
    assert await first == (200, "1")  # the pending poll carries the close packet
    assert (await poll(http, tkr_host, sid))[0] == 400


async def test_a_close_by_post_answers_the_pending_poll_with_a_noop(tkr_host: RunningHost, http: aiohttp.ClientSession) -> None:
    sid = (await open_polling(http, tkr_host))["sid"]
    pending = asyncio.ensure_future(poll(http, tkr_host, sid))
    await eventually(lambda: tkr_host.host.sio.pending_polls(sid) == 1)
    async with http.post(eio_url(tkr_host, transport="polling", sid=sid), data="1") as response:
        assert response.status == 200
    assert await pending == (200, "6")  # python-engineio leaves it to time out
    assert (await poll(http, tkr_host, sid))[0] == 400


@pytest.mark.tkr_settings({"host": {"ping_interval_s": 10, "ping_timeout_s": 10}})  # the held POST outlives 0.3 s
async def test_a_second_post_while_one_is_being_read_is_a_bad_request_and_closes_the_session(
        tkr_host: RunningHost, http: aiohttp.ClientSession) -> None:
    sid = (await open_polling(http, tkr_host))["sid"]
    address = urlsplit(tkr_host.url)
    assert address.hostname is not None and address.port is not None
    _, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        # A POST whose body is announced but not all sent: the host is still reading it.
        writer.write((f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: {address.netloc}\r\n"
                      "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 10\r\n\r\n3").encode())
        await writer.drain()
        await eventually(lambda: tkr_host.app.frame_guard.posts_in_flight(sid) == 1)
        async with http.post(eio_url(tkr_host, transport="polling", sid=sid), data="3") as response:
            assert response.status == 400  # python-engineio reads both
        # Refused as any malformed frame is (docs/operations.md): the session is closed.
        await eventually(lambda: not tkr_host.host.sio.is_open(sid))
        assert (await poll(http, tkr_host, sid))[0] == 400
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_post_is_answered_ok_as_the_protocol_spells_it(tkr_host: RunningHost, http: aiohttp.ClientSession) -> None:
    sid = (await open_polling(http, tkr_host))["sid"]
    async with http.post(eio_url(tkr_host, transport="polling", sid=sid), data="3") as response:
        assert (response.status, await response.text()) == (200, "ok")  # python-engineio: OK


async def upgrade(http: aiohttp.ClientSession, host: RunningHost, sid: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(eio_url(host, transport="websocket", sid=sid))
    await ws.send_str("2probe")
    assert await ws.receive_str(timeout=5) == "3probe"
    return ws


async def test_a_poll_right_after_the_upgrade_is_refused(tkr_host: RunningHost, http: aiohttp.ClientSession) -> None:
    sid = (await open_polling(http, tkr_host))["sid"]
    ws = await upgrade(http, tkr_host, sid)
    await ws.send_str("5")
    # At once, as a client may: the UPGRADE packet was sent before this request.
    status, _ = await poll(http, tkr_host, sid)
    assert status == 400
    assert tkr_host.host.sio.is_upgraded(sid)
    await ws.close()


async def test_a_poll_during_the_upgrade_is_answered_with_a_noop(tkr_host: RunningHost, http: aiohttp.ClientSession) -> None:
    sid = (await open_polling(http, tkr_host))["sid"]
    ws = await upgrade(http, tkr_host, sid)
    assert await poll(http, tkr_host, sid) == (200, "6")  # ends the long-poll; the client then sends 5
    await ws.send_str("5")
    await eventually(lambda: tkr_host.host.sio.is_upgraded(sid))
    await ws.close()


@pytest.mark.parametrize("complete", [True, False], ids=["upgraded", "upgrading"])
async def test_a_second_websocket_for_an_upgraded_session_is_closed(tkr_host: RunningHost, http: aiohttp.ClientSession,
                                                                   complete: bool) -> None:
    sid = (await open_polling(http, tkr_host))["sid"]
    ws = await upgrade(http, tkr_host, sid)
    if complete:
        await ws.send_str("5")
        await eventually(lambda: tkr_host.host.sio.is_upgraded(sid))
    # python-engineio starts a second upgrade that waits for its probe for ever.
    async with http.ws_connect(eio_url(tkr_host, transport="websocket", sid=sid)) as second:
        message = await second.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.CLOSE
    assert tkr_host.host.sio.is_open(sid)  # the first WebSocket keeps its session
    await ws.close()
