"""With ``[host] websocket_compression`` on, no received message inflates past Engine.IO's limit.

docs/operations.md ("Limits and abuse", "WebSocket compression"): a WebSocket message is at most
1 MiB (maxPayload of PROTOCOL.md 1.1). A compressed message is stopped while it inflates, one byte
past that, and the connection is ended: deflate's ratio reaches about 1 000:1, so one 64 KiB read of
zeros would otherwise become some 64 MiB in the host before the size check.

The client side is wsproto's own (Hypercorn's WebSocket library), which compresses what it sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Event, Message, Ping, Request, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, Opcode, RsvBits

from tkr_host._transport import CompressionPolicy, HostDeflate, _compression_policy
from tkr_host.testing import RunningHost, make_token

#: maxPayload of docs/protocol.md (PROTOCOL.md 1.1).
MAX_PAYLOAD = 1_048_576
MiB = 1 << 20


class DeflatingClient:
    """A WebSocket client that offers permessage-deflate and compresses every message it sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.accepted: AcceptConnection | None = None

    async def _flush(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def open(self, netloc: str) -> None:
        await self._flush(self.ws.send(Request(host=netloc, target="/socket.io/?EIO=4&transport=websocket",
                                               extensions=[PerMessageDeflate()])))
        while self.accepted is None:
            event = await self.next_event()
            assert isinstance(event, AcceptConnection), event
            self.accepted = event

    async def send_text(self, text: str) -> None:
        await self._flush(self.ws.send(Message(data=text)))

    async def next_event(self, timeout: float = 10) -> Event:
        while self.events.empty():
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, Ping):
                    await self._flush(self.ws.send(event.response()))
                else:
                    self.events.put_nowait(event)
            if not data and self.events.empty():
                raise ConnectionError("closed with no close frame")
        return self.events.get_nowait()

    async def next_text(self) -> str:
        event = await self.next_event()
        assert isinstance(event, TextMessage), event
        return event.data


@contextlib.asynccontextmanager
async def deflating_client(url: str) -> AsyncIterator[DeflatingClient]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    client = DeflatingClient(reader, writer)
    try:
        await client.open(parts.netloc)
        yield client
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.tkr_settings({"host": {"websocket_compression": True}})
async def test_a_compressed_socket_connects_and_a_message_inflating_past_max_payload_ends_it(tkr_host: RunningHost) -> None:
    async with deflating_client(tkr_host.url) as client:
        assert client.accepted is not None and client.accepted.extensions  # deflate was agreed
        assert (await client.next_text()).startswith("0")  # Engine.IO open
        # A compressed message of the ordinary size is taken: the namespace connect is answered.
        await client.send_text("40/chat," + json.dumps({"token": make_token("alice")}))
        assert (await client.next_text()).startswith("40/chat,")
        # 2 MiB of one character compresses to about 2 KiB: over maxPayload once inflated.
        await client.send_text("42/chat," + json.dumps(["message:send", {"text": "a" * (2 * MiB)}]))
        while not isinstance(event := await client.next_event(), CloseConnection):
            pass
        # Ended with no close frame (wsproto's 1006, "abnormal closure"): Hypercorn's way with a
        # frame its protocol layer refused. The socket is gone either way, and nothing was inflated.
        assert event.code == CloseReason.ABNORMAL_CLOSURE


def server_deflate(policy: CompressionPolicy | None) -> tuple[HostDeflate, object]:
    """A HostDeflate as Hypercorn builds it for an accepted offer, and a stand-in for its server-side frame decoder."""
    token = _compression_policy.set(policy)
    try:
        extension = HostDeflate()
    finally:
        _compression_policy.reset(token)
    assert extension.accept("permessage-deflate") is not None  # "" is an acceptance with no parameters

    class ServerSide:
        client = False  # wsproto's extensions read only this of the protocol object

    return extension, ServerSide()


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]


def test_one_read_of_a_zip_bomb_is_not_inflated_past_the_limit() -> None:
    bomb = deflate(bytes(64 * MiB))  # 64 MiB of zeros: about 64 KiB, one read of Hypercorn's
    assert len(bomb) < 128 * 1024
    extension, proto = server_deflate(CompressionPolicy(enabled=True))
    assert extension.frame_inbound_header(proto, Opcode.TEXT, RsvBits(True, False, False), len(bomb)) == RsvBits(True, False, False)
    tracemalloc.start()
    try:
        result = extension.frame_inbound_payload_data(proto, bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == CloseReason.MESSAGE_TOO_BIG
    # The input's copy and at most the limit plus a byte of output, not 64 MiB.
    assert peak < 4 * MiB


def test_a_message_up_to_the_limit_inflates_whole_over_several_frames() -> None:
    text = (b"0123456789abcdef" * (MAX_PAYLOAD // 16))[:MAX_PAYLOAD]  # exactly maxPayload
    wire = deflate(text)
    extension, proto = server_deflate(CompressionPolicy(enabled=True))
    halves = wire[: len(wire) // 2], wire[len(wire) // 2 :]
    extension.frame_inbound_header(proto, Opcode.TEXT, RsvBits(True, False, False), len(halves[0]))
    first = extension.frame_inbound_payload_data(proto, halves[0])
    assert extension.frame_inbound_complete(proto, fin=False) is None
    extension.frame_inbound_header(proto, Opcode.CONTINUATION, RsvBits(False, False, False), len(halves[1]))
    second = extension.frame_inbound_payload_data(proto, halves[1])
    tail = extension.frame_inbound_complete(proto, fin=True)
    assert isinstance(first, bytes) and isinstance(second, bytes) and isinstance(tail, bytes)
    assert first + second + tail == text
    # The next message starts from nothing: another one of the same size is taken too.
    extension.frame_inbound_header(proto, Opcode.TEXT, RsvBits(True, False, False), len(wire))
    assert isinstance(extension.frame_inbound_payload_data(proto, deflate(text)), bytes)


def test_one_byte_past_the_limit_is_too_big() -> None:
    extension, proto = server_deflate(CompressionPolicy(enabled=True))
    wire = deflate(bytes(MAX_PAYLOAD + 1))
    extension.frame_inbound_header(proto, Opcode.TEXT, RsvBits(True, False, False), len(wire))
    assert extension.frame_inbound_payload_data(proto, wire) == CloseReason.MESSAGE_TOO_BIG
