"""Top-level (Hypercorn) keys of docs/configuration.md that had no test (issue 13, item 5):
``certfile`` + ``keyfile``, ``accesslog``, ``errorlog``, ``loglevel``, ``max_app_queue_size``.

Each runs ``tkr-host serve`` as a subprocess on a pre-bound port, as an operator would,
and stops it with SIGTERM. Expected values are quoted from docs/configuration.md.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tkr_host.config import load_settings
from tkr_host.testing import TEST_JWT_SECRET, connect_chat, eventually, listening_socket, make_token, wait_ready

BIN = Path(sys.executable).parent


def config_text(fd: int, tmp_path: Path, top: str) -> str:
    return (f'bind = ["fd://{fd}"]\nworkers = 1\n{top}'
            '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
            f'[plugins.store_peewee]\nurl = "sqlite:///{tmp_path}/tkr.db"\n')


@asynccontextmanager
async def serving(tmp_path: Path, top: str, ready_url: str | None = None,
                  ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[tuple[str, Path]]:
    """``tkr-host serve`` with ``top`` as the file's top-level keys; yields (port, its output).
    On leaving, SIGTERM, and the process must exit 0."""
    with listening_socket() as listener:
        port = listener.getsockname()[1]
        config = tmp_path / "config.toml"
        config.write_text(config_text(listener.fileno(), tmp_path, top))
        output = tmp_path / "server.out"
        with output.open("wb") as out:
            server = subprocess.Popen([str(BIN / "tkr-host"), "serve", "--config", str(config)], stdout=out,  # noqa: ASYNC220
                                      stderr=subprocess.STDOUT, pass_fds=[listener.fileno()], start_new_session=True,
                                      env={**os.environ, "TKR_JWT_SECRET": TEST_JWT_SECRET})
        try:
            if ssl_context is None:
                await wait_ready(f"http://127.0.0.1:{port}", server, output)
            else:
                await eventually(lambda: ready_over_tls(f"https://127.0.0.1:{port}", ssl_context, server, output),
                                 timeout=30, what="/readyz 200 over https")
            yield str(port), output
            server.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(server.wait, 20) == 0, tail(output)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)


def tail(output: Path) -> str:
    return output.read_text()[-3000:]


async def ready_over_tls(url: str, context: ssl.SSLContext, server: subprocess.Popen[bytes], output: Path) -> bool:
    assert server.poll() is None, f"the host exited with {server.returncode}:\n{tail(output)}"
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz", ssl=context) as response:
            return response.status == 200
    except aiohttp.ClientConnectionError:
        return False


async def get(url: str, context: ssl.SSLContext | None = None) -> int:
    async with aiohttp.ClientSession() as http, http.get(url, ssl=context if context is not None else True) as response:
        return response.status


# --- certfile, keyfile --------------------------------------------------------------
# configuration.md: certfile, keyfile "TLS certificate and key".


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


async def test_certfile_and_keyfile_serve_https_and_wss(tmp_path: Path):
    cert, key = await asyncio.to_thread(self_signed, tmp_path)
    # The client trusts exactly this certificate, and checks the host name against it.
    context = ssl.create_default_context(cafile=str(cert))
    async with serving(tmp_path, f'certfile = "{cert}"\nkeyfile = "{key}"\n', ssl_context=context) as (port, _):
        assert await get(f"https://127.0.0.1:{port}/healthz", context) == 200
        ws_url = f"wss://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, ssl=context) as ws:
            opening = await ws.receive(timeout=10)
            assert opening.data.startswith("0{"), opening
            await connect_chat(ws, make_token("alice"))
        # Plain http on the TLS port is not served.
        try:
            plain = await get(f"http://127.0.0.1:{port}/healthz")
        except aiohttp.ClientError:
            plain = None
        assert plain != 200


# --- accesslog, errorlog, loglevel --------------------------------------------------
# configuration.md: accesslog, errorlog: default none, "-"; "where Hypercorn logs; "-" is
# stderr". loglevel: "INFO", "Hypercorn's own log level".


async def test_accesslog_and_errorlog_are_the_files_hypercorn_writes_to(tmp_path: Path):
    access, error = tmp_path / "access.log", tmp_path / "error.log"
    async with serving(tmp_path, f'accesslog = "{access}"\nerrorlog = "{error}"\n') as (port, _):
        assert await get(f"http://127.0.0.1:{port}/healthz") == 200
        await eventually(lambda: access.exists() and "GET /healthz" in access.read_text(), what="the access log line of /healthz")
    # INFO, the default loglevel, lets Hypercorn's own start line through.
    assert "Running on" in error.read_text()
    assert "Running on" not in access.read_text() and "/healthz" not in error.read_text()


async def test_without_accesslog_no_request_is_logged(tmp_path: Path):
    # The default accesslog is none: the requests are not logged anywhere.
    async with serving(tmp_path, "") as (port, output):
        assert await get(f"http://127.0.0.1:{port}/healthz") == 200
    text = output.read_text()
    assert "Running on" in text  # errorlog "-": stderr, where the output goes
    assert "GET /healthz" not in text


async def test_loglevel_is_hypercorns_own_level(tmp_path: Path):
    error = tmp_path / "error.log"
    async with serving(tmp_path, f'errorlog = "{error}"\nloglevel = "WARNING"\n') as (port, output):
        assert await get(f"http://127.0.0.1:{port}/healthz") == 200
    # The process has exited: everything it wrote is in the files. Hypercorn's INFO start
    # line is below WARNING, so it is in neither; the host's own INFO lines are unaffected.
    assert "Running on" not in error.read_text()
    assert "Running on" not in output.read_text()
    assert "tkr-host serving on" in output.read_text()


# --- max_app_queue_size ---------------------------------------------------------------
# configuration.md: "`4` (Hypercorn's own is 10)"; "received messages Hypercorn queues per
# connection while the host is busy with earlier ones".


def test_max_app_queue_size_is_4_unless_the_file_sets_it(tmp_path: Path):
    plain = tmp_path / "plain.toml"
    plain.write_text('bind = ["127.0.0.1:9999"]\n')
    assert load_settings(plain).hypercorn_config().max_app_queue_size == 4
    chosen = tmp_path / "chosen.toml"
    chosen.write_text('bind = ["127.0.0.1:9999"]\nmax_app_queue_size = 7\n')
    assert load_settings(chosen).hypercorn_config().max_app_queue_size == 7
