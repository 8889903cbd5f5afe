"""permessage-deflate under the host's control (docs/configuration.md,
``[host] websocket_compression`` and ``websocket_compression_min_bytes``).

Each test opens a raw WebSocket handshake that offers deflate, as browsers do,
and reads the response's ``Sec-WebSocket-Extensions`` header and the RSV1 bit
(compressed) of the first frame: in-process, under ``tkr-host serve`` and under
plain ``hypercorn tkr_host.asgi:app``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tkr_host.testing import TEST_JWT_SECRET, RunningHost, bound_listener, wait_ready

BIN = Path(sys.executable).parent
#: What a browser offers (Chromium's header).
BROWSER_OFFER = "permessage-deflate; client_max_window_bits"
RSV1 = 0x40


async def handshake(url: str, offer: str | None = BROWSER_OFFER) -> tuple[int, dict[str, str], int]:
    """Open an Engine.IO WebSocket by hand: the status, the response headers, and the first frame's first byte."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        lines = [
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1",
            f"Host: {parts.netloc}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {base64.b64encode(secrets.token_bytes(16)).decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        if offer is not None:
            lines.append(f"Sec-WebSocket-Extensions: {offer}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
        status = int(head.split(" ", 2)[1])
        headers = {}
        for line in head.split("\r\n")[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        first_byte = (await asyncio.wait_for(reader.readexactly(1), 10))[0] if status == 101 else 0
        return status, headers, first_byte
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


# --- in-process ------------------------------------------------------------------


async def test_compression_is_off_by_default(tkr_host: RunningHost) -> None:
    status, headers, first = await handshake(tkr_host.url)
    assert status == 101
    assert "sec-websocket-extensions" not in headers  # Hypercorn alone would accept the offer
    assert not first & RSV1


@pytest.mark.tkr_settings({"host": {"websocket_compression": True}})
async def test_compression_on_accepts_the_offer_and_leaves_small_messages_uncompressed(tkr_host: RunningHost) -> None:
    status, headers, first = await handshake(tkr_host.url)
    assert status == 101
    assert headers["sec-websocket-extensions"].startswith("permessage-deflate")
    assert not first & RSV1  # the open packet is under the default threshold (1024 bytes)


@pytest.mark.tkr_settings({"host": {"websocket_compression": True, "websocket_compression_min_bytes": 16}})
async def test_compression_on_compresses_messages_from_the_threshold(tkr_host: RunningHost) -> None:
    status, headers, first = await handshake(tkr_host.url)
    assert status == 101 and headers["sec-websocket-extensions"].startswith("permessage-deflate")
    assert first & RSV1  # the open packet (over 16 bytes), compressed


@pytest.mark.tkr_settings({"host": {"websocket_compression": True}})
async def test_a_client_that_offers_nothing_gets_nothing(tkr_host: RunningHost) -> None:
    status, headers, _ = await handshake(tkr_host.url, offer=None)
    assert status == 101 and "sec-websocket-extensions" not in headers


# --- the two ways to run the host --------------------------------------------------


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def start(args: list[str], cwd: Path, log: Path, config: Path, fd: int) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        # A session of its own, so that clean-up reaches the whole process group; the
        # pre-bound listener goes down as ``fd://N`` (both runners read the config's bind).
        return subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True, pass_fds=[fd],
                                env={**os.environ, "TKR_JWT_SECRET": TEST_JWT_SECRET, "TKR_CONFIG": str(config)})


@pytest.mark.parametrize("runner", ["serve", "hypercorn"])
@pytest.mark.parametrize("compression", [False, True], ids=["off", "on"])
async def test_the_setting_holds_under_each_runner(tmp_path: Path, processes: list[subprocess.Popen[bytes]], runner: str,
                                                   compression: bool) -> None:
    listener = bound_listener()
    port = listener.getsockname()[1]
    config = tmp_path / "config.toml"
    config.write_text(
        f'bind = ["fd://{listener.fileno()}"]\nworkers = 1\n'
        f"[host]\nwebsocket_compression = {str(compression).lower()}\n"
        '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
        f'[plugins.store_peewee]\nurl = "sqlite:///{tmp_path}/tkr.db"\n'
    )
    args = ([str(BIN / "tkr-host"), "serve", "--config", str(config)] if runner == "serve"
            else [str(BIN / "hypercorn"), "--config", str(config), "tkr_host.asgi:app"])
    log = tmp_path / "server.log"
    with listener:  # only the server holds it once started
        processes.append(start(args, tmp_path, log, config, listener.fileno()))
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url, processes[-1], log)
    status, headers, _ = await handshake(url)
    assert status == 101
    assert ("sec-websocket-extensions" in headers) is compression, headers
