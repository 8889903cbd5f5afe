"""Issue 7, items 6 and 11: what one address can hold open, through a real host.

The bounds and their defaults are those of docs/operations.md ("Limits and abuse")
and docs/configuration.md: 16 Engine.IO sessions of one address without a
namespace, 256 TCP connections of one address, and Hypercorn's
``keep_alive_timeout`` of 5 s for a request head.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path

import aiohttp
import pytest

from tkr_host.config import ConfigError, load_settings
from tkr_host.testing import closed_by_server

DOCUMENTED_UNCONNECTED_SESSIONS = 16
DOCUMENTED_KEEP_ALIVE_TIMEOUT_S = 5.0
DOCUMENTED_CONNECTIONS_PER_ADDRESS = 256
#: The test address is not banned for flooding, so that it can go on afterwards.
GUARD_EXEMPTS_LOCALHOST = {"plugins": {"guard": {"exempt": ["127.0.0.1"]}}}


# --- item 6: Engine.IO sessions that connect no namespace ---------------------------


# The default heartbeat: with the test kit's 1 s + 2 s, sessions nobody polls would
# be dropped during the loop and free their places.
@pytest.mark.tkr_settings({**GUARD_EXEMPTS_LOCALHOST, "host": {"ping_interval_s": 25.0, "ping_timeout_s": 20.0}})
async def test_handshakes_without_a_namespace_do_not_pile_up(tkr_host, tkr_token, caplog):
    caplog.set_level(logging.WARNING)
    base = f"{tkr_host.url}/socket.io/?EIO=4&transport=polling"
    accepted: list[str] = []
    refused: list[dict] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(1500):
            async with http.get(base) as response:
                body = await response.text()
                if response.status == 200:
                    accepted.append(json.loads(body[1:])["sid"])
                else:
                    assert response.status == 401, (response.status, body)
                    refused.append(json.loads(body))
        assert len(accepted) == DOCUMENTED_UNCONNECTED_SESSIONS
        assert len(tkr_host.host.sio.eio.sockets) <= DOCUMENTED_UNCONNECTED_SESSIONS
        assert len(refused) == 1500 - DOCUMENTED_UNCONNECTED_SESSIONS
        assert refused[0]["code"] == "rate_limit.connect" and refused[0]["retry_after"]
        # 1,484 refusals, two log lines: a flood does not flood the log.
        assert len([r for r in caplog.records if "refusing Engine.IO handshakes" in r.getMessage()]) <= 2

        # A session that connects a namespace no longer counts: one more handshake is let in.
        url = f"{base}&sid={accepted[0]}"
        async with http.post(url, data=("40/chat," + json.dumps({"token": tkr_token("alice")})).encode()) as response:
            assert response.status == 200
        async with http.get(url) as response:
            assert "40/chat,{" in await response.text()
        async with http.get(base) as response:
            assert response.status == 200
        async with http.get(base) as response:
            assert response.status == 401


# --- item 11: slowloris --------------------------------------------------------------


async def open_from(url: str, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port), local_addr=(source, 0))


async def healthz_from(url: str, source: str) -> int:
    reader, writer = await open_from(url, source)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(5):
            status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_a_slowloris_from_one_address_is_capped_and_timed_out(tkr_host):
    connections = []
    for _ in range(DOCUMENTED_CONNECTIONS_PER_ADDRESS + 40):
        reader, writer = await open_from(tkr_host.url, "127.0.0.1")
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        connections.append((reader, writer))
    started = time.monotonic()

    async def trickle() -> None:
        # One header line every half second, for longer than the keep-alive timeout.
        for i in range(int(DOCUMENTED_KEEP_ALIVE_TIMEOUT_S * 2) + 6):
            for _, writer in connections:
                if not writer.is_closing():
                    with contextlib.suppress(ConnectionError):
                        writer.write(f"X-Slow-{i}: 1\r\n".encode())
            await asyncio.sleep(0.5)

    trickler = asyncio.ensure_future(trickle())
    try:
        # Past the cap, connections are closed at once.
        closed_at_once = await asyncio.gather(*(closed_by_server(reader, 1.5) for reader, _ in connections))
        assert sum(closed_at_once) == 40, sum(closed_at_once)
        assert len(tkr_host.host.sio.eio.sockets) == 0  # none of them reached the app
        # Another address is not affected.
        assert await healthz_from(tkr_host.url, "127.0.0.2") == 200
        # The ones let in never finish their head and are closed after keep_alive_timeout.
        held = [reader for (reader, _), closed in zip(connections, closed_at_once, strict=True) if not closed]
        closed_later = await asyncio.gather(*(closed_by_server(reader, DOCUMENTED_KEEP_ALIVE_TIMEOUT_S + 3) for reader in held))
        assert all(closed_later)
        assert time.monotonic() - started < DOCUMENTED_KEEP_ALIVE_TIMEOUT_S + 5
    finally:
        trickler.cancel()
        for _, writer in connections:
            writer.close()
    # Their places are given back.
    assert await healthz_from(tkr_host.url, "127.0.0.1") == 200


# --- Hypercorn's settings ------------------------------------------------------------------


def test_hypercorn_gets_the_hosts_timeouts_unless_the_file_sets_them(tmp_path: Path) -> None:
    plain = tmp_path / "plain.toml"
    plain.write_text('bind = ["127.0.0.1:9999"]\n')
    config = load_settings(plain).hypercorn_config()
    assert config.keep_alive_timeout == DOCUMENTED_KEEP_ALIVE_TIMEOUT_S
    # ping_interval_s + ping_timeout_s (25 + 20) + 15 s (docs/configuration.md)
    assert config.read_timeout == 60
    assert config.h11_max_incomplete_size == 16_384
    assert config.websocket_max_message_size == 1_048_576
    assert config.max_connections_per_address == DOCUMENTED_CONNECTIONS_PER_ADDRESS

    chosen = tmp_path / "chosen.toml"
    chosen.write_text("keep_alive_timeout = 2.5\nread_timeout = 120\n[host]\nmax_connections_per_address = 0\n")
    config = load_settings(chosen).hypercorn_config()
    assert (config.keep_alive_timeout, config.read_timeout, config.max_connections_per_address) == (2.5, 120, 0)


def test_the_example_config_sets_the_timeouts() -> None:
    example = Path(__file__).parent.parent / "config.example.toml"
    settings = load_settings(example)
    for key in ("keep_alive_timeout", "read_timeout", "h11_max_incomplete_size", "websocket_max_message_size"):
        assert key in settings.hypercorn, key


def test_a_read_timeout_that_would_drop_live_clients_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "short.toml"
    short.write_text("read_timeout = 30\n")  # the heartbeat is silent for up to 25 + 20 s
    with pytest.raises(ConfigError, match=r"read_timeout: .* more than \[host\] ping_interval_s \+ ping_timeout_s \(45 s\)"):
        load_settings(short)
