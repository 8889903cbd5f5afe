"""pytest plugin (entry point ``pytest11``): a real host and real clients.

Fixtures, all function-scoped:

* ``tkr_plugins``: extra plugin modules or objects to register (override it).
* ``tkr_store_url``: the store URL; a fresh SQLite file by default.
* ``tkr_settings``: the config as a dict; ``@pytest.mark.tkr_settings({...})``
  deep-merges overrides into it.
* ``tkr_host``: a real Hypercorn serving the host on a free port; ``.url``,
  ``.host`` (the Host), ``.app``.
* ``tkr_token(sub, kind="user", ttl=3600, **claims)``: an HS256 token for the
  test secret (the ``auth_jwt`` plugin is configured with it).
* ``tkr_connect(token=None, namespace="/chat", …)``: a connected
  ``socketio.AsyncClient``; a refused connect raises :class:`ConnectRefused`.
* ``tkr_client(principal_id, kind="user", …)``: a :class:`TkrClient`, a thin
  helper around a connected ``socketio.AsyncClient``.

Helpers: :func:`eventually` (wait for a condition with a deadline, never a fixed
sleep), :func:`raw_socket` (an Engine.IO WebSocket past its open packet, for
frames no client library sends), :func:`listening_socket` (a pre-bound port for a
subprocess), ``room`` (a session with a second member), and the
``postgres_dsn`` / ``redis_url`` fixtures, which ping their server first, the
``redis_prefix`` fixture (keys of the test's own, deleted afterwards) and
:func:`loop_count` (full counts in CI, smaller ones locally), from ``_testservers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import json
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from hypercorn.asyncio import serve as hypercorn_serve

from tkr_host import _testservers, lifecycle
from tkr_host._host import Host
from tkr_host.app import TkrApp, create_app
from tkr_host.config import check_read_timeout, hypercorn_setting_names, load_settings

# The test servers' fixtures and helpers (tkr_host/_testservers.py), re-exported: pytest registers
# the fixtures it finds in this module, and tests import the helpers from here.
POSTGRES_ENV, REDIS_ENV = _testservers.POSTGRES_ENV, _testservers.REDIS_ENV
postgres_dsn, redis_url, redis_prefix = _testservers.postgres_dsn, _testservers.redis_url, _testservers.redis_prefix
postgres_answers, redis_answers, server_from_env = _testservers.postgres_answers, _testservers.redis_answers, _testservers.server_from_env
delete_redis_keys, full_run, loop_count = _testservers.delete_redis_keys, _testservers.full_run, _testservers.loop_count

#: One secret per test process, never written anywhere.
TEST_JWT_SECRET = secrets.token_urlsafe(32)
DEFAULT_TIMEOUT = 5.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tkr_settings(overrides): deep-merge overrides into the test host's config")


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def installed_plugins() -> set[str]:
    return {ep.name for ep in entry_points(group="tkr_host")}


class ConnectRefused(socketio.exceptions.ConnectionError):  # type: ignore[misc]
    """A refused connect; ``error`` is the Error object the server sent."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class RunningHost:
    url: str
    host: Host
    app: TkrApp


# --- waiting ---------------------------------------------------------------------


async def eventually(condition: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT, what: str = "the condition") -> Any:
    """Poll ``condition`` (a function, sync or async) until it returns something truthy, and return that.

    For state that has no event to wait on (a gauge, a row, a file). Fails with
    ``what`` after ``timeout`` seconds: the deadline bounds the wait, it is not a pause.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s (last: {result!r})")
        await asyncio.sleep(0.02)


# --- configuration -------------------------------------------------------------


@pytest.fixture
def tkr_plugins() -> list[Any]:
    return []


@pytest.fixture
def tkr_store_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/tkr.db"


def default_settings(store_url: str) -> dict[str, Any]:
    """A test host's config: the test JWT secret, a store at ``store_url``, short heartbeats."""
    installed = installed_plugins()
    plugins: dict[str, Any] = {}
    if "auth_jwt" in installed:
        plugins["auth_jwt"] = {"secret": TEST_JWT_SECRET}
    if "store_peewee" in installed:
        plugins["store_peewee"] = {"url": store_url}
    # Short heartbeats: a polling client's disconnect is noticed within seconds.
    return {"host": {"ping_interval_s": 1.0, "ping_timeout_s": 2.0, "drain_timeout_s": 2.0}, "plugins": plugins}


@pytest.fixture
def tkr_settings(request: pytest.FixtureRequest, tkr_store_url: str) -> dict[str, Any]:
    settings = default_settings(tkr_store_url)
    for marker in reversed(list(request.node.iter_markers("tkr_settings"))):
        settings = deep_merge(settings, marker.args[0])
    return settings


# --- the host ------------------------------------------------------------------


async def start_host(settings: dict[str, Any], plugins: list[Any] | tuple[Any, ...] = ()) -> tuple[RunningHost, Callable[[], Awaitable[None]]]:
    """Serve a host on a free port in this loop; return it and its stop function.

    A ``"hypercorn"`` table in ``settings`` stands for the config file's top-level keys
    (Hypercorn's settings), checked as the file's are."""
    settings = dict(settings)
    hypercorn_keys = settings.pop("hypercorn", {})
    unknown = sorted(set(hypercorn_keys) - hypercorn_setting_names())
    if unknown:
        raise ValueError(f"not Hypercorn settings: {', '.join(unknown)}")
    loaded = load_settings(None, **settings)
    loaded.hypercorn = dict(hypercorn_keys)
    check_read_timeout(loaded, "<test settings>")
    app = create_app(loaded, plugins)
    # Bind first and hand Hypercorn the descriptor: no race for the port.
    # Listening now: Hypercorn only listens after the app's start-up, which is when
    # this function returns, and a connect before that would be refused.
    listener = bound_listener()
    port = listener.getsockname()[1]
    # The host's own Hypercorn settings (timeouts, the per-address cap), on this socket.
    config = app.host.settings.hypercorn_config()
    config.bind = [f"fd://{listener.detach()}"]
    config.graceful_timeout = 2.0
    config.loglevel = "WARNING"
    stop = asyncio.Event()

    async def trigger() -> None:
        await stop.wait()
        await lifecycle.drain(app.host)

    task = asyncio.create_task(hypercorn_serve(app, config, shutdown_trigger=trigger))
    deadline = time.monotonic() + 15
    while not app.host.started:
        if task.done():
            task.result()  # raises the start-up error
            raise RuntimeError("the host stopped during start-up")
        if time.monotonic() > deadline:
            task.cancel()
            raise RuntimeError("the host did not start within 15 s")
        await asyncio.sleep(0.01)

    async def stop_host() -> None:
        stop.set()
        await asyncio.wait_for(task, timeout=15)

    return RunningHost(url=f"http://127.0.0.1:{port}", host=app.host, app=app), stop_host


@pytest.fixture
async def tkr_host(tkr_settings: dict[str, Any], tkr_plugins: list[Any]) -> AsyncIterator[RunningHost]:
    running, stop = await start_host(tkr_settings, tkr_plugins)
    try:
        yield running
    finally:
        await stop()


# --- credentials and clients -----------------------------------------------------


async def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 30.0) -> None:
    """Wait until a host run as a subprocess answers ``/readyz`` with 200.

    Fails at once when the process exits, and after ``timeout`` seconds; either
    way with the end of ``log`` (its output) when given.
    """

    def tail() -> str:
        return log.read_text()[-3000:] if log is not None and log.exists() else ""

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the host exited with {process.returncode}:\n{tail()}"
            try:
                async with http.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"the host was not ready within {timeout:.0f} s:\n{tail()}")


def make_token(sub: str, kind: str = "user", ttl: float = 3600, secret: str = TEST_JWT_SECRET, **claims: Any) -> str:
    import jwt

    now = int(time.time())
    body: dict[str, Any] = {"sub": sub, "kind": kind, "iat": now, "exp": now + int(ttl), **claims}
    return jwt.encode(body, secret, algorithm="HS256")


@pytest.fixture
def tkr_token() -> Callable[..., str]:
    return make_token


async def connect_client(url: str, token: str | None = None, namespace: str = "/chat", headers: dict[str, str] | None = None,
                         auth: dict[str, Any] | None = None, transports: list[str] | None = None) -> socketio.AsyncClient:
    """Open a real Socket.IO connection to one namespace."""
    client = socketio.AsyncClient(reconnection=False)
    refusals: list[dict[str, Any]] = []

    async def on_connect_error(data: Any = None) -> None:
        refusals.append(data if isinstance(data, dict) else {"message": data})

    client.on("connect_error", on_connect_error, namespace=namespace)
    payload = auth if auth is not None else ({"token": token} if token else None)
    try:
        await client.connect(url, namespaces=[namespace], auth=payload, headers=headers or {},
                             transports=transports or ["websocket"], wait_timeout=DEFAULT_TIMEOUT)
    except socketio.exceptions.ConnectionError:
        await client.disconnect()
        if refusals:
            data = refusals[0]
            raise ConnectRefused(data.get("data") or {"code": data.get("message")}) from None
        raise
    return client


class TkrClient:
    """A connected client that records every server event it receives."""

    def __init__(self, sio: socketio.AsyncClient, principal_id: str, namespace: str) -> None:
        self.sio = sio
        self.principal_id = principal_id
        self.namespace = namespace
        self.events: list[tuple[str, Any]] = []
        self._arrived = asyncio.Condition()
        sio.on("*", self._record, namespace=namespace)

    async def _record(self, event: str, *args: Any) -> None:
        async with self._arrived:
            self.events.append((event, args[0] if len(args) == 1 else list(args)))
            self._arrived.notify_all()

    def received(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def wait_for(self, event: str, predicate: Callable[[Any], bool] = lambda data: True,
                       timeout: float = DEFAULT_TIMEOUT) -> Any:
        """The first ``event`` (already received or arriving) that matches."""

        def found() -> Any:
            return next((data for name, data in self.events if name == event and predicate(data)), None)

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: found() is not None), timeout)
            return found()

    async def call(self, event: str, data: Any = None, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Emit with an ack and return the ack."""
        return await self.sio.call(event, {} if data is None else data, namespace=self.namespace, timeout=timeout)

    async def ok(self, event: str, data: Any = None) -> dict[str, Any]:
        """Emit with an ack that must succeed."""
        ack = await self.call(event, data)
        assert isinstance(ack, dict) and ack.get("ok") is True, f"{event} failed: {ack}"
        return ack

    async def create_session(self, title: str = "test", agents: list[str] | None = None) -> str:
        ack = await self.ok("session:create", {"title": title, "agents": agents or []})
        return str(ack["session"]["id"])

    async def join(self, session_id: str, since_seq: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"session_id": session_id}
        if since_seq is not None:
            data["since_seq"] = since_seq
        return await self.ok("session:join", data)

    async def send_text(self, session_id: str, text: str, client_id: str | None = None, **extra: Any) -> dict[str, Any]:
        """Send a text message; the ack comes back with the ``client_id`` it used."""
        client_id = client_id or f"c-{uuid.uuid4().hex[:12]}"
        ack = await self.call("message:send", {"session_id": session_id, "client_id": client_id, "type": "text",
                                               "payload": {"text": text}, **extra})
        return {**ack, "client_id": client_id}

    async def history(self, session_id: str, limit: int = 200) -> list[dict[str, Any]]:
        ack = await self.ok("message:history", {"session_id": session_id, "limit": limit})
        return list(ack["messages"])

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest.fixture
async def tkr_connect(tkr_host: RunningHost) -> AsyncIterator[Callable[..., Awaitable[socketio.AsyncClient]]]:
    clients: list[socketio.AsyncClient] = []

    async def connect(token: str | None = None, namespace: str = "/chat", **options: Any) -> socketio.AsyncClient:
        client = await connect_client(tkr_host.url, token, namespace, **options)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.disconnect()


@pytest.fixture
async def tkr_client(tkr_host: RunningHost) -> AsyncIterator[Callable[..., Awaitable[TkrClient]]]:
    clients: list[TkrClient] = []

    async def make(principal_id: str, kind: str = "user", namespace: str = "/chat", transports: list[str] | None = None,
                   **claims: Any) -> TkrClient:
        token = make_token(principal_id, kind, **claims)
        sio = await connect_client(tkr_host.url, token, namespace, transports=transports)
        client = TkrClient(sio, principal_id, namespace)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


# --- raw sockets, ports, rooms ----------------------------------------------------


@contextlib.asynccontextmanager
async def raw_socket(url: str, max_msg_size: int = 0) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """An Engine.IO v4 WebSocket session, past its open packet: for frames no client library sends."""
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, max_msg_size=max_msg_size) as ws:
        opening = await ws.receive(timeout=DEFAULT_TIMEOUT)
        assert opening.type == aiohttp.WSMsgType.TEXT and opening.data.startswith("0{"), opening
        yield ws


async def frames_until_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10, pong: bool = True) -> list[str]:
    """Every text frame of a raw socket until the server closes it, answering Engine.IO pings
    (unless ``pong`` is False: a client that stopped answering)."""
    frames: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return frames
            if message.type == aiohttp.WSMsgType.TEXT:
                if message.data == "2" and pong:
                    with contextlib.suppress(ConnectionError):  # the server may close meanwhile
                        await ws.send_str("3")
                    continue
                frames.append(message.data)


@contextlib.asynccontextmanager
async def held_calls(owner: Any, name: str) -> AsyncIterator[asyncio.Event]:
    """Hold every call of the async method ``owner.name`` until the block ends, then let them
    run; the Event yielded is set when the first call arrives. The method is put back after."""
    real = getattr(owner, name)
    arrived, release = asyncio.Event(), asyncio.Event()

    async def held(*args: Any, **kwargs: Any) -> Any:
        arrived.set()
        await release.wait()
        return await real(*args, **kwargs)

    setattr(owner, name, held)
    try:
        yield arrived
    finally:
        release.set()
        setattr(owner, name, real)


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closes (or resets) a raw TCP connection within ``within`` seconds;
    what it sends meanwhile is read and dropped."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def connect_chat(ws: aiohttp.ClientWebSocketResponse, token: str) -> None:
    """Connect a raw socket to ``/chat`` with ``token``; fails unless the connect is accepted."""
    await ws.send_str("40/chat," + json.dumps({"token": token}))
    reply = await ws.receive(timeout=DEFAULT_TIMEOUT)
    assert reply.data.startswith("40/chat,{"), reply.data


def bound_listener() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1, listening; the caller closes it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener


@contextlib.contextmanager
def listening_socket() -> Iterator[socket.socket]:
    """A socket bound to a free port of 127.0.0.1 and listening: hand it to a subprocess with
    ``pass_fds`` and ``bind = ["fd://N"]``. Nothing else can take the port meanwhile, as it
    could between closing a probe socket and the subprocess binding its number."""
    listener = bound_listener()
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def room(tkr_client: Callable[..., Awaitable[TkrClient]]) -> Callable[..., Awaitable[tuple[TkrClient, TkrClient, str]]]:
    """``await room(title="room")``: alice and bob, both members of a new session (alice made it and
    invited bob), both joined; ``joined=False`` leaves both sockets out of the session's room."""

    async def make(title: str = "room", joined: bool = True) -> tuple[TkrClient, TkrClient, str]:
        alice, bob = await tkr_client("alice"), await tkr_client("bob")
        session_id = await alice.create_session(title)
        await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
        if joined:
            await alice.join(session_id)
            await bob.join(session_id)
        return alice, bob, session_id

    return make
