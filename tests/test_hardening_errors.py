"""Issue 7, item 7 (this half): error shapes for a second connect, lone surrogates and
NaN/Infinity, through a real host with raw Socket.IO frames.

docs/protocol.md: every refusal is an Error with a code; a payload with a value that
is not JSON answers `validation.payload` naming the field, and nothing is stored.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest


@asynccontextmanager
async def chat_socket(url: str, token: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A raw WebSocket connected to /chat."""
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        assert (await ws.receive(timeout=5)).data.startswith("0{")
        await ws.send_str("40/chat," + json.dumps({"token": token}))
        assert (await ws.receive(timeout=5)).data.startswith("40/chat,{")
        yield ws


async def next_frame(ws: aiohttp.ClientWebSocketResponse, prefix: str) -> str:
    """The next text frame that starts with ``prefix``, answering pings on the way."""
    while True:
        message = await ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        if message.data == "2":
            await ws.send_str("3")
        elif message.data.startswith(prefix):
            return message.data[len(prefix) :]


async def call(ws: aiohttp.ClientWebSocketResponse, ack_id: int, event: str, raw_payload: str) -> dict:
    """Send an event whose payload is written as raw JSON text (NaN, \\ud800…), return its ack."""
    await ws.send_str(f'42/chat,{ack_id}["{event}",{raw_payload}]')
    return json.loads(await next_frame(ws, f"43/chat,{ack_id}"))[0]


async def test_a_second_connect_to_the_same_namespace_answers_an_error(tkr_host, tkr_token):
    async with chat_socket(tkr_host.url, tkr_token("alice")) as ws:
        await ws.send_str("40/chat," + json.dumps({"token": tkr_token("alice")}))
        refusal = json.loads(await next_frame(ws, "44/chat,"))
        assert isinstance(refusal, dict), refusal  # not python-socketio's bare "Unable to connect"
        assert refusal["message"] == "protocol.already_connected"
        error = refusal["data"]
        assert error["code"] == "protocol.already_connected" and error["message"] and error["hint"]
        # The first connection still stands.
        assert (await call(ws, 1, "session:list", "{}")) == {"ok": True, "sessions": []}


LONE_SURROGATES = [
    ("session:create", '{"title": "a\\ud800b"}', "title"),
    ("session:create", '{"title": "x", "metadata": {"notes": ["fine", "\\udfff"]}}', "metadata.notes.1"),
    ("session:create", '{"title": "x", "metadata": {"\\ud83d": 1}}', "metadata"),
]


@pytest.mark.parametrize(("event", "payload", "field"), LONE_SURROGATES)
async def test_a_lone_surrogate_names_the_field(tkr_host, tkr_token, event, payload, field):
    async with chat_socket(tkr_host.url, tkr_token("alice")) as ws:
        ack = await call(ws, 1, event, payload)
        assert ack["ok"] is False
        assert ack["error"]["code"] == "validation.payload"
        assert [f["field"] for f in ack["error"]["details"]["fields"]] == [field]
        assert (await call(ws, 2, "session:list", "{}"))["sessions"] == []


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(("where", "field"), [('{"score": %s}', "metadata.score"), ('{"xs": [1, {"y": %s}]}', "metadata.xs.1.y")])
async def test_nan_and_infinity_are_refused_not_stored_as_null(tkr_host, tkr_token, value, where, field):
    async with chat_socket(tkr_host.url, tkr_token("alice")) as ws:
        metadata = where % value
        ack = await call(ws, 1, "session:create", f'{{"title": "x", "metadata": {metadata}}}')
        assert ack["ok"] is False
        assert ack["error"]["code"] == "validation.payload"
        assert [f["field"] for f in ack["error"]["details"]["fields"]] == [field]
        assert (await call(ws, 2, "session:list", "{}"))["sessions"] == []
