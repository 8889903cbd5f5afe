"""Protocol hygiene with raw Engine.IO frames over a real WebSocket.

The stock python-socketio keeps these connections open; the reference server
closes them, and so does the host (tkr_host/server.py).
"""

from __future__ import annotations

import json

import aiohttp
import pytest

from tkr_host.testing import connect_chat, frames_until_closed, raw_socket


def security_count(tkr_host, kind: str) -> float:
    return tkr_host.host.metrics.security.labels(kind)._value.get()


@pytest.mark.tkr_settings({"host": {"connect_timeout_s": 0.5}})
async def test_a_session_that_connects_no_namespace_is_closed(tkr_host):
    async with raw_socket(tkr_host.url) as ws:
        await frames_until_closed(ws)
        assert ws.closed


@pytest.mark.tkr_settings({"host": {"connect_timeout_s": 0.5}})
async def test_a_session_with_a_namespace_outlives_the_connect_timeout(tkr_host, tkr_token):
    async with raw_socket(tkr_host.url) as ws, raw_socket(tkr_host.url) as sentinel:
        await connect_chat(ws, tkr_token("alice"))
        # The sentinel opened with it and connects no namespace: once the connect timeout
        # has closed it, that timeout has passed for ws too.
        await frames_until_closed(sentinel)
        await ws.send_str('42/chat,1["session:list",{}]')
        frames = []
        while not frames or not frames[-1].startswith("43/chat,1"):
            message = await ws.receive(timeout=5)
            if message.data == "2":
                await ws.send_str("3")
            else:
                frames.append(message.data)
        assert json.loads(frames[-1][len("43/chat,1") :]) == [{"ok": True, "sessions": []}]


@pytest.mark.parametrize(
    "frame",
    [
        '42/chat,["session:list", {',  # truncated JSON
        "42/chat,not json at all",
        "47/chat,[]",  # no such packet type
        "44/chat,{}",  # CONNECT_ERROR is for servers to send
        "42/chat,[]",  # an event without a name
        '45/chat,1-["x",{"_placeholder":true,"num":0}]',  # binary event when none may follow as text
    ],
)
async def test_a_malformed_socketio_packet_closes_that_client_only(tkr_host, tkr_token, tkr_client, frame):
    bystander = await tkr_client("bob")
    before = security_count(tkr_host, "malformed_packet")
    async with raw_socket(tkr_host.url) as ws:
        await connect_chat(ws, tkr_token("alice"))
        await ws.send_str(frame)
        frames = await frames_until_closed(ws)
    errors = [json.loads(f[len("42/chat,") :]) for f in frames if f.startswith('42/chat,["error"')]
    # Every one of them, the binary event included (issue 7: refused before its attachments).
    assert errors and errors[0][1]["code"] == "protocol.malformed"
    assert security_count(tkr_host, "malformed_packet") == before + 1
    assert (await bystander.ok("session:list"))["sessions"] == []


@pytest.mark.parametrize("frame", ["9", "", "4", "6garbage", "\x00\x01\x02"])
async def test_malformed_engineio_frames_do_not_disturb_other_clients(tkr_host, tkr_client, frame):
    bystander = await tkr_client("bob")
    async with raw_socket(tkr_host.url) as ws:
        await ws.send_str(frame)
        await ws.send_bytes(b"\xff\xfe garbage")
        # Closed at once or, at the latest, when its pings go unanswered
        # (1 s + 2 s in tests): the socket does not linger.
        await frames_until_closed(ws, timeout=10, pong=False)
        assert ws.closed
    ack = await bystander.call("session:list")
    assert ack == {"ok": True, "sessions": []}
    async with aiohttp.ClientSession() as http, http.get(f"{tkr_host.url}/healthz") as response:
        assert response.status == 200
