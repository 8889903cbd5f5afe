"""Fixtures for the SDK's tests: real hosts from ``tkr_host.testing`` (its pytest
plugin is loaded by entry point), real SDK clients against them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from tkr_client import Agent, Backoff, ChatClient

#: Short backoff windows so reconnect tests do not wait long.
FAST = Backoff(base=0.05, cap=0.5)


async def until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Wait for ``predicate()`` to be truthy (polled), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Recorder:
    """Every event a ChatClient delivers, in order."""

    def __init__(self, client: ChatClient) -> None:
        self.events: list[tuple[str, Any]] = []
        for name in ("message", "chunk", "presence", "receipt", "agent_status", "error", "state"):
            client.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Callable[[Any], None]:
        def record(data: Any) -> None:
            self.events.append((name, data))

        return record

    def of(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    async def wait(self, name: str, predicate: Callable[[Any], bool] = lambda data: True, timeout: float = 5.0) -> Any:
        return await until(lambda: next((d for d in self.of(name) if predicate(d)), None), timeout, f"a {name} event")


@pytest.fixture(name="until")
def until_fixture() -> Callable[..., Awaitable[Any]]:
    return until


@pytest.fixture
def recorder() -> type[Recorder]:
    """``recorder(client)``: records every event the client delivers."""
    return Recorder


@pytest.fixture
def fast() -> Backoff:
    return FAST


@pytest.fixture
async def chat(tkr_host, tkr_token) -> AsyncIterator[Callable[..., Awaitable[ChatClient]]]:
    """``await chat("alice")``: a connected ChatClient for a user."""
    clients: list[ChatClient] = []

    async def make(sub: str, connect: bool = True, **options: Any) -> ChatClient:
        options.setdefault("backoff", FAST)
        client = ChatClient(tkr_host.url, options.pop("token", None) or tkr_token(sub), **options)
        clients.append(client)
        if connect:
            await client.connect()
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def agent_factory(tkr_host, tkr_token) -> AsyncIterator[Callable[..., Agent]]:
    """``agent_factory("echo")``: an Agent (not started) for the test host."""
    agents: list[Agent] = []

    def make(sub: str, **options: Any) -> Agent:
        options.setdefault("backoff", FAST)
        token = options.pop("token", None) or tkr_token(sub, kind="agent")
        agent = Agent(tkr_host.url, token, **options)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        await agent.close(timeout=1)


def run_agent(target: str, url: str, token: str, cwd: Any, *extra: str) -> Any:
    """``tkr-agent run TARGET --url URL`` in a subprocess, its output in ``cwd/agent.log``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    with (Path(cwd) / "agent.log").open("a") as log:
        return subprocess.Popen([str(Path(sys.executable).parent / "tkr-agent"), "run", target, "--url", url, *extra], cwd=cwd,
                                env={**os.environ, "TKR_TOKEN": token}, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def agent_process() -> Callable[..., Any]:
    """``agent_process(target, url, token, cwd, *extra)``: a ``tkr-agent run`` subprocess."""
    return run_agent


class Gate:
    """A token callable that waits while closed: holds a reconnect at a chosen moment."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.open = asyncio.Event()
        self.open.set()
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        await self.open.wait()
        return self.token


@pytest.fixture
def gate(tkr_token) -> Callable[[str], Gate]:
    return lambda sub: Gate(tkr_token(sub))


@pytest.fixture
def drop(tkr_host) -> Callable[[str], Awaitable[None]]:
    """``await drop("alice")``: the host closes every /chat socket of alice, as a lost network would."""
    from tkr_host.errors import HostError

    async def close_sockets(principal_id: str) -> None:
        sids = [conn.sid for conn in tkr_host.host.connections.values() if conn.principal.id == principal_id and conn.namespace == "/chat"]
        assert sids, f"{principal_id} has no /chat socket"
        for sid in sids:
            await tkr_host.host.disconnect_client(sid, "/chat", HostError("protocol.shutting_down"))

    return close_sockets


# --- a host in a subprocess, to SIGKILL and restart on the same port and store -------------


class ServedHost:
    """``tkr-host serve`` in a subprocess (SQLite store, no rate limits), restartable."""

    def __init__(self, directory: Any, ping_interval_s: float = 1.0) -> None:
        import json

        from tkr_host.testing import bound_listener

        self.directory = directory
        # Pre-bound (no race for a port) and handed to the child as ``fd://N``; only the child keeps
        # it, so a killed host's port refuses connections. A restart binds the same port again.
        self.listener: Any = bound_listener()
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = directory / "host.db"
        # Every client of these tests comes from 127.0.0.1: the per-address caps
        # (256 connections, 16 handshakes without a namespace) would refuse a herd.
        host_table = {"ping_interval_s": ping_interval_s, "ping_timeout_s": 2 * ping_interval_s, "drain_timeout_s": 2,
                      "disable_plugins": ["ratelimit", "guard"], "max_connections_per_address": 0,
                      "max_unconnected_sessions_per_address": 10_000}
        lines = ["workers = 1", "", "[host]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in host_table.items()]
        lines += ["", "[plugins.auth_jwt]", 'secret = "env:TKR_JWT_SECRET"', "", "[plugins.store_peewee]", f'url = "sqlite:///{self.db_path}"']
        #: Everything but the bind, which names the descriptor of each start.
        self.config_tail = "\n".join(lines) + "\n"
        self.config_path = directory / "host.toml"
        self.log_path = directory / "host.log"
        self.process: Any = None

    def _spawn(self) -> None:
        import os
        import socket
        import subprocess
        import sys
        from pathlib import Path

        from tkr_host.testing import TEST_JWT_SECRET

        if self.listener is None:  # a restart: the same port again, or a loud failure if it was taken
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(("127.0.0.1", self.port))
            self.listener.listen(128)
        listener, self.listener = self.listener, None
        self.config_path.write_text(f'bind = ["fd://{listener.fileno()}"]\n' + self.config_tail)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([str(Path(sys.executable).parent / "tkr-host"), "serve", "--config", str(self.config_path)],
                                            stdout=log, stderr=subprocess.STDOUT, cwd=self.directory, pass_fds=[listener.fileno()],
                                            env={**os.environ, "TKR_JWT_SECRET": TEST_JWT_SECRET})
        listener.close()

    async def start(self) -> None:
        """Start (again: the same port, config and database) and wait until /readyz answers 200."""
        from tkr_host.testing import wait_ready

        self._spawn()
        await wait_ready(self.url, self.process, self.log_path)

    async def kill(self) -> None:
        """SIGKILL: no drain, nothing closed."""
        self.process.kill()
        await asyncio.to_thread(self.process.wait, 10)

    def stored(self, session_id: str) -> list[tuple[int, str, str | None]]:
        """``(seq, text, client_id)`` of the session's messages, as the database holds them."""
        import json
        import sqlite3

        connection = sqlite3.connect(self.db_path, timeout=10)
        try:
            rows = connection.execute("SELECT seq, payload, client_id FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)).fetchall()
        finally:
            connection.close()
        return [(int(seq), json.loads(payload).get("text"), client_id) for seq, payload, client_id in rows]

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.listener is not None:
            self.listener.close()


@pytest.fixture
async def served_host(tmp_path) -> AsyncIterator[Callable[..., Awaitable[ServedHost]]]:
    hosts: list[ServedHost] = []

    async def serve(**options: Any) -> ServedHost:
        host = ServedHost(tmp_path, **options)
        hosts.append(host)
        await host.start()
        return host

    yield serve
    for host in hosts:
        await asyncio.to_thread(host.close)
