"""Serving for real: `tkr-host serve`, `hypercorn … tkr_host.asgi:app`, and SIGTERM drain."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tkr_host.testing import TEST_JWT_SECRET, TkrClient, connect_client, make_token

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'bind = ["127.0.0.1:{port}"]\nworkers = 1\ngraceful_timeout = 5\n'
        "[host]\nping_interval_s = 1\nping_timeout_s = 2\ndrain_timeout_s = 5\n"
        '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
        f'[plugins.store_peewee]\nurl = "sqlite:///{tmp_path}/tkr.db"\n'
    )
    return config


async def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"server exited with {process.returncode}"
            try:
                async with http.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server did not become ready")


def start(args: list[str], tmp_path: Path, **env: str) -> subprocess.Popen[bytes]:
    with (tmp_path / "server.log").open("ab") as log:  # the child keeps its own copy of the descriptor
        # A session of its own, so that clean-up reaches Hypercorn's workers too.
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
                                env={**os.environ, "TKR_JWT_SECRET": TEST_JWT_SECRET, **env})


@pytest.fixture
def stop_processes():
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


async def test_sigterm_drains_and_exits_zero(tmp_path, stop_processes):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start([str(BIN / "tkr-host"), "serve", "--config", str(write_config(tmp_path, port))], tmp_path)
    stop_processes.append(server)
    await wait_healthy(url, server)
    alice = TkrClient(await connect_client(url, make_token("alice")), "alice", "/chat")
    session_id = await alice.create_session()
    acks = await asyncio.gather(*(alice.send_text(session_id, f"m{i}") for i in range(20)))
    server.send_signal(signal.SIGTERM)
    error = await alice.wait_for("error", timeout=10)
    assert error["code"] == "protocol.shutting_down"
    assert await asyncio.to_thread(server.wait, 20) == 0, (tmp_path / "server.log").read_text()
    await alice.close()
    # Every acked message is in the store once the host restarts on the same file.
    server = start([str(BIN / "tkr-host"), "serve", "--config", str(tmp_path / "config.toml")], tmp_path)
    stop_processes.append(server)
    await wait_healthy(url, server)
    again = TkrClient(await connect_client(url, make_token("alice")), "alice", "/chat")
    stored = await again.history(session_id)
    assert {m["id"] for m in stored} == {ack["message"]["id"] for ack in acks}
    await again.close()


async def test_hypercorn_serves_the_same_app_from_tkr_config(tmp_path, stop_processes):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, port)
    server = start([str(BIN / "hypercorn"), "--config", str(config), "tkr_host.asgi:app"], tmp_path, TKR_CONFIG=str(config))
    stop_processes.append(server)
    await wait_healthy(url, server)
    alice = TkrClient(await connect_client(url, make_token("alice"), transports=["polling"]), "alice", "/chat")
    session_id = await alice.create_session()
    assert (await alice.send_text(session_id, "through hypercorn"))["ok"]
    await alice.close()
