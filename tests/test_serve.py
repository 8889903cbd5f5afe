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
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tkr_host.testing import TEST_JWT_SECRET, TkrClient, connect_client, listening_socket, make_token, wait_ready

BIN = Path(sys.executable).parent


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A pre-bound, listening socket that every host of the test serves on (``fd://N``),
    kept by the test so that a restarted host gets the same port, which nobody can take between."""
    with listening_socket() as bound:
        yield bound


def url_of(listener: socket.socket) -> str:
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def write_config(tmp_path: Path, listener: socket.socket) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'bind = ["fd://{listener.fileno()}"]\nworkers = 1\ngraceful_timeout = 5\n'
        # A slow heartbeat: no test here is about it, and on a loaded machine (the suite runs on
        # several workers) a live client must not miss a 2 s ping timeout mid-test.
        "[host]\nping_interval_s = 5\nping_timeout_s = 10\ndrain_timeout_s = 5\n"
        '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
        f'[plugins.store_peewee]\nurl = "sqlite:///{tmp_path}/tkr.db"\n'
    )
    return config


async def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    await wait_ready(url, process)


def start(args: list[str], tmp_path: Path, listener: socket.socket, **env: str) -> subprocess.Popen[bytes]:
    with (tmp_path / "server.log").open("ab") as log:  # the child keeps its own copy of the descriptor
        # A session of its own, so that clean-up reaches Hypercorn's workers too.
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
                                pass_fds=[listener.fileno()], env={**os.environ, "TKR_JWT_SECRET": TEST_JWT_SECRET, **env})


@pytest.fixture
def stop_processes():
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


async def test_sigterm_drains_and_exits_zero(tmp_path, stop_processes, listener):
    url = url_of(listener)
    server = start([str(BIN / "tkr-host"), "serve", "--config", str(write_config(tmp_path, listener))], tmp_path, listener)
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
    server = start([str(BIN / "tkr-host"), "serve", "--config", str(tmp_path / "config.toml")], tmp_path, listener)
    stop_processes.append(server)
    await wait_healthy(url, server)
    again = TkrClient(await connect_client(url, make_token("alice")), "alice", "/chat")
    stored = await again.history(session_id)
    assert {m["id"] for m in stored} == {ack["message"]["id"] for ack in acks}
    await again.close()


async def test_hypercorn_serves_the_same_app_from_tkr_config(tmp_path, stop_processes, listener):
    url = url_of(listener)
    config = write_config(tmp_path, listener)
    server = start([str(BIN / "hypercorn"), "--config", str(config), "tkr_host.asgi:app"], tmp_path, listener, TKR_CONFIG=str(config))
    stop_processes.append(server)
    await wait_healthy(url, server)
    alice = TkrClient(await connect_client(url, make_token("alice"), transports=["polling"]), "alice", "/chat")
    session_id = await alice.create_session()
    assert (await alice.send_text(session_id, "through hypercorn"))["ok"]
    await alice.close()


async def test_sigterm_with_calls_in_flight_acks_them_refuses_new_connects_and_exits_zero(tmp_path, stop_processes, listener):
    """docs/protocol.md, Shutdown: events already running finish and are acked, new
    connects get `protocol.shutting_down`, `/readyz` answers 503, and the process exits 0.

    The calls are held in flight for real: the test holds the session's row lock
    in PostgreSQL, so every append waits on it until the test lets go.
    """
    import uuid

    import asyncpg

    from tkr_host.testing import ConnectRefused

    dsn = os.environ.get("TKR_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip("TKR_TEST_POSTGRES_DSN is not set: this drain test holds a PostgreSQL row lock")
    schema = f"tkr_drain_{uuid.uuid4().hex[:12]}"
    url = url_of(listener)
    config = tmp_path / "config.toml"
    config.write_text(
        f'bind = ["fd://{listener.fileno()}"]\nworkers = 1\ngraceful_timeout = 5\n'
        # drain_timeout_s is a bound, not a wait: the drain ends when the held calls do. It must
        # outlast the test's steps between SIGTERM and the rollback even on a loaded machine, or
        # the host would close alice with her calls unanswered (the suspected cause of its flaky runs).
        "[host]\nping_interval_s = 5\nping_timeout_s = 10\ndrain_timeout_s = 60\n"
        '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
        f'[plugins.store_peewee]\nurl = "{dsn}"\npg_schema = "{schema}"\n'
    )
    server = start([str(BIN / "tkr-host"), "serve", "--config", str(config)], tmp_path, listener)
    stop_processes.append(server)
    blocker = None
    try:
        await wait_healthy(url, server)
        alice = TkrClient(await connect_client(url, make_token("alice")), "alice", "/chat")
        session_id = await alice.create_session()
        blocker = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        held = blocker.transaction()
        await held.start()
        await blocker.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", session_id)
        in_flight = [asyncio.create_task(alice.call("message:send", {"session_id": session_id, "client_id": f"c-{i}", "type": "text",
                                                                      "payload": {"text": f"in flight {i}"}}, timeout=30))
                     for i in range(3)]
        deadline = time.monotonic() + 20
        # The host appends one message of a session at a time: the first waits
        # on the row lock, the others behind it in the host.
        while not await blocker.fetch("SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"):
            assert time.monotonic() < deadline, "the sends never reached the store"
            await asyncio.sleep(0.02)

        server.send_signal(signal.SIGTERM)
        async with aiohttp.ClientSession() as http:
            # Until the signal is handled /readyz may answer 200 (or, on a loaded machine, 503 for a
            # slow check): wait for the answer the drain gives, with a deadline.
            while True:
                async with http.get(f"{url}/readyz") as response:
                    status, body = response.status, await response.json()
                if status == 503 and body["checks"]["host"] == "draining":
                    break
                assert time.monotonic() < deadline, f"/readyz never answered 503 with the host draining; last: {status} {body}"
                await asyncio.sleep(0.02)
        with pytest.raises(ConnectRefused) as refused:
            await connect_client(url, make_token("bob"))
        assert refused.value.error["code"] == "protocol.shutting_down"
        assert not any(task.done() for task in in_flight), "a call finished while its append was held"

        await held.rollback()
        acks = await asyncio.gather(*in_flight)
        assert all(ack["ok"] for ack in acks), acks
        error = await alice.wait_for("error", timeout=15)
        assert error["code"] == "protocol.shutting_down"
        assert await asyncio.to_thread(server.wait, 30) == 0, (tmp_path / "server.log").read_text()
        stored = await blocker.fetch("SELECT id FROM messages WHERE session_id = $1", session_id)
        assert {row["id"] for row in stored} == {ack["message"]["id"] for ack in acks}
        await alice.close()
    finally:
        if blocker is not None:
            if blocker.is_in_transaction():
                await blocker.execute("ROLLBACK")
            await blocker.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await blocker.close()
