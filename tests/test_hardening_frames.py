"""Issue 7, items 1 and 8: binary attachments, floods of frames, and Engine.IO frames
python-engineio cannot read, through a real host with raw WebSocket and polling traffic.

What the tests expect comes from docs/protocol.md and docs/operations.md ("Limits
and abuse"): such input closes that client with `protocol.malformed`, counts one
`malformed_packet` security event, is logged on one line without a traceback, and
never makes the host hold more than a bounded amount for the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os

import aiohttp
import pytest

from tkr_host import hookimpl
from tkr_host.testing import closed_by_server, connect_chat, default_settings, frames_until_closed, raw_socket, start_host

ATTACHMENT_PLACEHOLDER = '{"_placeholder":true,"num":0}'
MEGABYTE = 1_048_576


def error_codes(frames: list[str]) -> list[str]:
    return [json.loads(f[len("42/chat,") :])[1]["code"] for f in frames if f.startswith('42/chat,["error"')]


def security_count(tkr_host, kind: str = "malformed_packet") -> float:
    return tkr_host.host.metrics.security.labels(kind)._value.get()


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def assert_logged_on_one_line_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert "Traceback" not in caplog.text
    assert not [record for record in caplog.records if record.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    malformed = [record for record in caplog.records if "malformed input" in record.getMessage()]
    assert len(malformed) == 1 and "\n" not in malformed[0].getMessage(), [r.getMessage() for r in caplog.records]


# --- item 1: packets that declare binary attachments ---------------------------------


@pytest.mark.parametrize(
    "packet",
    [
        f'451-/chat,1["session:list",{ATTACHMENT_PLACEHOLDER}]',  # BINARY_EVENT, one attachment
        f'451000-/chat,1["session:list",{ATTACHMENT_PLACEHOLDER}]',  # a thousand attachments
        f"461-/chat,1[{ATTACHMENT_PLACEHOLDER}]",  # BINARY_ACK
        '45/chat,1["session:list",{}]',  # BINARY_EVENT without a count
    ],
)
async def test_a_packet_that_declares_binary_attachments_closes_the_client(tkr_host, tkr_token, tkr_client, packet, caplog):
    caplog.set_level(logging.WARNING)
    bystander = await tkr_client("bob")
    before = security_count(tkr_host)
    async with raw_socket(tkr_host.url) as ws:
        await connect_chat(ws, tkr_token("alice"))
        await ws.send_str(packet)
        frames = await frames_until_closed(ws)
    assert error_codes(frames) == ["protocol.malformed"]
    assert security_count(tkr_host) == before + 1
    assert_logged_on_one_line_without_traceback(caplog)
    assert (await bystander.ok("session:list"))["sessions"] == []


async def test_binary_frames_after_an_attachment_header_are_not_buffered(tkr_host, tkr_token):
    """The probe's case: the header, then 1 MB binary frames. The host used to keep them all."""
    frame = b"\0" * (MEGABYTE - 1024)
    before = security_count(tkr_host)
    resident_before = resident_bytes()
    sent = 0
    async with raw_socket(tkr_host.url) as ws:
        await connect_chat(ws, tkr_token("alice"))
        await ws.send_str(f'451000-/chat,1["session:list",{ATTACHMENT_PLACEHOLDER}]')
        with contextlib.suppress(ConnectionError):
            for _ in range(150):
                if ws.closed or ws.close_code is not None:
                    break
                await ws.send_bytes(frame)
                sent += 1
        frames = await frames_until_closed(ws)
    assert error_codes(frames) == ["protocol.malformed"]
    assert security_count(tkr_host) == before + 1
    # 150 MB if the frames were kept; the bound of docs/operations.md is a few MB per socket.
    grown = resident_bytes() - resident_before
    assert grown < 40 * MEGABYTE, f"resident memory grew by {grown / MEGABYTE:.0f} MB after {sent} frames"


class Gate:
    """Holds every message in before_store until opened, counting how many wait at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.peak = 0
        self.opened = asyncio.Event()
        self.arrived = asyncio.Condition()

    @hookimpl
    async def before_store(self, host, draft, principal) -> None:
        async with self.arrived:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
            self.arrived.notify_all()
        try:
            await self.opened.wait()
        finally:
            self.inside -= 1


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def tkr_plugins(gate):
    return [gate]


@pytest.mark.tkr_settings({"host": {"max_inflight_events": 4, "disable_plugins": ["ratelimit", "guard"]}})
async def test_a_flood_of_events_waits_its_turn_and_loses_nothing(tkr_host, tkr_client, gate):
    alice = await tkr_client("alice")
    bystander = await tkr_client("bob")
    session_id = await alice.create_session()
    sends = [asyncio.ensure_future(alice.send_text(session_id, f"m{i}", client_id=f"c{i}")) for i in range(40)]
    async with gate.arrived:
        await asyncio.wait_for(gate.arrived.wait_for(lambda: gate.inside >= 4), 10)
    # A sentinel through the same host: it has had time to read more of alice's packets.
    assert (await bystander.ok("session:list"))["ok"]
    await asyncio.sleep(0)  # let any further handler that was started reach the gate
    assert gate.inside == 4 and gate.peak == 4
    gate.opened.set()
    acks = await asyncio.wait_for(asyncio.gather(*sends), 30)
    assert all(ack["ok"] for ack in acks), [ack for ack in acks if not ack["ok"]][:3]
    assert sorted(m["payload"]["text"] for m in await alice.history(session_id)) == sorted(f"m{i}" for i in range(40))


# --- item 8: Engine.IO frames python-engineio cannot read ----------------------------------


@pytest.mark.parametrize("frame", ["9", "", "0", "7x", "\x00\x01\x02", "bAAEC", b"\x01\x02"])
async def test_a_bad_websocket_frame_is_refused_on_one_line(tkr_host, tkr_token, tkr_client, frame, caplog):
    caplog.set_level(logging.WARNING)
    bystander = await tkr_client("bob")
    before = security_count(tkr_host)
    async with raw_socket(tkr_host.url) as ws:
        await connect_chat(ws, tkr_token("alice"))
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)
        frames = await frames_until_closed(ws)
        assert ws.close_code != 1011  # not "Error in ASGI Framework"
    assert error_codes(frames) == ["protocol.malformed"]
    assert security_count(tkr_host) == before + 1
    assert_logged_on_one_line_without_traceback(caplog)
    assert (await bystander.ok("session:list"))["sessions"] == []


@pytest.mark.parametrize("body", ["\x1e\x1e\x1e", "Zgarbage", "9", "4hello\x1e", "\x1e".join(["3"] * 17), "\xff"])
async def test_a_bad_polling_body_is_refused_on_one_line(tkr_host, body, caplog):
    caplog.set_level(logging.WARNING)
    before = security_count(tkr_host)
    base = f"{tkr_host.url}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(base) as response:
            opening = await response.text()
        sid = json.loads(opening[1:])["sid"]
        data = body.encode("latin-1") if body == "\xff" else body.encode()
        async with http.post(f"{base}&sid={sid}", data=data, headers={"Content-Type": "text/plain"}) as response:
            assert response.status == 400
        async with http.get(f"{base}&sid={sid}") as response:
            assert response.status == 400  # the session is gone
    assert security_count(tkr_host) == before + 1
    assert_logged_on_one_line_without_traceback(caplog)


async def test_packets_over_one_mebibyte_close_the_connection(tkr_host, tkr_token):
    """docs/operations.md: a WebSocket message over 1 MiB is closed with 1009; a polling
    body over 1 MiB is answered 400 and its session closed (it used to hang the request)."""
    async with raw_socket(tkr_host.url) as ws:
        await connect_chat(ws, tkr_token("alice"))
        await ws.send_str('42/chat,["session:list",{"pad":"' + "x" * MEGABYTE + '"}]')
        await frames_until_closed(ws)
        assert ws.close_code == 1009
    base = f"{tkr_host.url}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(base) as response:
            sid = json.loads((await response.text())[1:])["sid"]
        body = b'42/chat,["session:list",{"pad":"' + b"x" * MEGABYTE + b'"}]'
        async with http.post(f"{base}&sid={sid}", data=io.BytesIO(body), timeout=aiohttp.ClientTimeout(total=10)) as response:
            assert response.status == 400
        async with http.get(f"{base}&sid={sid}") as response:
            assert response.status == 400


@pytest.mark.parametrize("read_timeout", [None, 60], ids=["hypercorn-default", "host-default"])
async def test_a_long_body_refused_unread_lets_its_connection_go(tmp_path, read_timeout):
    """A polling POST over 1 MiB is answered 400 without being read (docs/operations.md). The
    rest of its body must not hold the connection: Hypercorn queues at most ten pieces of a
    body for the app, and the refusal left that queue full, so the connection's reader and the
    response's end both waited for ever. Under plain ``hypercorn`` (no ``read_timeout``, its
    default) that was every such POST; the host's own timeout only made it rarer."""
    running, stop = await start_host({**default_settings(f"sqlite:///{tmp_path}/tkr.db"),
                                      "hypercorn": {"read_timeout": read_timeout}})
    try:
        base = f"{running.url}/socket.io/?EIO=4&transport=polling"
        async with aiohttp.ClientSession() as http, http.get(base) as response:
            sid = json.loads((await response.text())[1:])["sid"]
        address, port = running.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(address, int(port))
        try:
            # All of it at once, as a fast client sends it: far more than ten reads of body.
            writer.write(f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: test\r\n"
                         f"Content-Type: text/plain\r\nContent-Length: {2 * MEGABYTE}\r\n\r\n".encode()
                         + b"4" * (2 * MEGABYTE))
            async with asyncio.timeout(10):
                status_line = await reader.readline()
            assert status_line.startswith(b"HTTP/1.1 400"), status_line
            # The server lets the connection go (the body was not wanted), within a deadline far
            # past any machine's pace: before, it never did.
            assert await closed_by_server(reader, 15), "the refused request's connection was held"
        finally:
            writer.close()
        # The session was closed, and a poll for it is answered at once.
        async with aiohttp.ClientSession() as http, http.get(f"{base}&sid={sid}", timeout=aiohttp.ClientTimeout(total=10)) as response:
            assert response.status == 400
    finally:
        await stop()


async def test_a_good_polling_session_still_works(tkr_host, tkr_token):
    """The guard passes what a client may send: a connect and an event over long-polling."""
    base = f"{tkr_host.url}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(base) as response:
            sid = json.loads((await response.text())[1:])["sid"]
        url = f"{base}&sid={sid}"
        body = "40/chat," + json.dumps({"token": tkr_token("alice")}) + '\x1e42/chat,1["session:list",{}]'
        async with http.post(url, data=body.encode()) as response:
            assert response.status == 200
        received = ""
        async with asyncio.timeout(10):
            while "43/chat,1" not in received:
                async with http.get(url) as response:
                    received += await response.text()
    assert '43/chat,1[{"ok":true,"sessions":[]}]' in received
