"""The load generator: one worker process owning a share of the Socket.IO clients.

``bench.run`` starts the workers with ``multiprocessing`` (spawn) and steers them
in steps over a pipe, so that every worker is at the same step at the same time:

==============  ===============================================================
command         what the worker does, then answers
==============  ===============================================================
``idle_open``   opens N more connections to ``/chat`` that then do nothing
``idle_close``  closes them
``connect``     connects its load clients (``/chat``, websocket, token in ``auth``)
``create``      each room's first client: ``session:create``, then
                ``session:invite`` for every other client of the room
``join``        every other client: ``session:join`` (room → session id given)
``send``        every client sends its M text messages, at most W without an ack
``settle``      waits (bounded) until each client has the deliveries it should
``replay``      :func:`bench.scenarios.replay` (the host only)
``stream``      :func:`bench.scenarios.stream`: its share of the streaming agents
``close``       disconnects everything and exits
==============  ===============================================================

A worker answers each command with ``("ok", result)`` or ``("error", text)``;
it exits by itself on ``close``, when the pipe closes, or at its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import socketio

from bench.scenarios import replay, stream
from bench.tokens import make_token

NAMESPACE = "/chat"
#: Connects opened at once by one worker.
CONNECT_CONCURRENCY = 8
CONNECT_TIMEOUT_S = 15.0
#: Seconds a worker waits on its pipe before looking at its deadline again.
POLL_S = 0.25


@dataclass(frozen=True)
class ClientPlan:
    """One load client: its principal id, its room, and whom it invites."""

    name: str
    room: int
    #: The room's first client: it creates the session and invites the others.
    creator: bool = False
    #: The principal ids the creator invites.
    invites: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkerPlan:
    index: int
    url: str
    jwt_secret: str
    clients: tuple[ClientPlan, ...]
    messages: int
    window: int
    text: str
    ack_timeout_s: float
    #: ``time.monotonic()`` after which the worker gives up and exits (the clock is system-wide on Linux).
    deadline: float


@dataclass
class LoadClient:
    """A connected client and what it saw."""

    plan: ClientPlan
    sio: socketio.AsyncClient
    session_id: str = ""
    acked: int = 0
    received: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    foreign: int = 0
    last_seq: int = 0
    last_delivery: float = 0.0
    seen: set[str] = field(default_factory=set)
    #: Set on every delivery, for whoever waits for them.
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def on_message(self, data: Any) -> None:
        self.last_delivery = time.monotonic()
        self.arrived.set()
        if not isinstance(data, dict) or data.get("session_id") != self.session_id:
            self.foreign += 1
            return
        message_id = str(data.get("id"))
        if message_id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(message_id)
        self.received += 1
        seq = data.get("seq")
        if isinstance(seq, int):
            if seq <= self.last_seq:
                self.out_of_order += 1
            self.last_seq = max(self.last_seq, seq)


class Worker:
    def __init__(self, pipe: Connection, plan: WorkerPlan) -> None:
        self.pipe = pipe
        self.plan = plan
        self.clients: list[LoadClient] = []
        self.idle: list[socketio.AsyncClient] = []
        self.idle_count = 0

    # --- the command loop -------------------------------------------------------

    async def serve(self) -> None:
        commands: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "idle_open": self.idle_open,
            "idle_close": self.idle_close,
            "connect": self.connect,
            "create": self.create,
            "join": self.join,
            "send": self.send,
            "settle": self.settle,
            # The host-only scenarios of bench.scenarios, each self-contained.
            "replay": lambda argument: replay(self.plan.url, self.plan.jwt_secret, **argument),
            "stream": lambda argument: stream(self.plan.url, self.plan.jwt_secret, self.plan.index, **argument),
        }
        try:
            while time.monotonic() < self.plan.deadline:
                if not await asyncio.to_thread(self.pipe.poll, POLL_S):
                    continue
                command, argument = self.pipe.recv()
                if command == "close":
                    break
                try:
                    async with asyncio.timeout(max(0.0, self.plan.deadline - time.monotonic())):
                        result = await commands[command](argument)
                except Exception:
                    self.pipe.send(("error", traceback.format_exc(limit=5)))
                else:
                    self.pipe.send(("ok", result))
        except (EOFError, BrokenPipeError):
            pass  # the orchestrator is gone
        finally:
            await self.disconnect_all()
            with contextlib.suppress(OSError):
                self.pipe.send(("ok", "closed"))

    async def disconnect_all(self) -> None:
        sockets = [client.sio for client in self.clients] + self.idle
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await asyncio.gather(*(sio.disconnect() for sio in sockets), return_exceptions=True)
        self.clients.clear()
        self.idle.clear()

    # --- connections ------------------------------------------------------------

    async def open(self, name: str, sio: socketio.AsyncClient | None = None) -> socketio.AsyncClient:
        sio = sio or socketio.AsyncClient(reconnection=False, handle_sigint=False)
        try:
            await sio.connect(self.plan.url, namespaces=[NAMESPACE], auth={"token": make_token(name, self.plan.jwt_secret)},
                              transports=["websocket"], wait_timeout=CONNECT_TIMEOUT_S)
        except BaseException:
            with contextlib.suppress(Exception):
                await sio.disconnect()
            raise
        return sio

    async def open_many(self, names: list[str], connect: Callable[[str], Awaitable[Any]]) -> list[str]:
        """Connect ``names`` a few at a time; return the errors of those that failed."""
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(name: str) -> str | None:
            async with gate:
                try:
                    await connect(name)
                except Exception as exc:
                    return f"{name}: {type(exc).__name__}: {exc}"
                return None

        return [error for error in await asyncio.gather(*(one(name) for name in names)) if error is not None]

    async def idle_open(self, count: int) -> dict[str, Any]:
        names = [f"idle-{self.plan.index}-{self.idle_count + i}" for i in range(count)]
        self.idle_count += count

        async def connect(name: str) -> None:
            self.idle.append(await self.open(name))

        errors = await self.open_many(names, connect)
        return {"opened": count - len(errors), "errors": errors[:5]}

    async def idle_close(self, _: Any) -> dict[str, Any]:
        closing, self.idle = self.idle, []
        async with asyncio.timeout(30):
            await asyncio.gather(*(sio.disconnect() for sio in closing), return_exceptions=True)
        return {"closed": len(closing)}

    async def connect(self, _: Any) -> dict[str, Any]:
        async def connect(name: str) -> None:
            plan = next(c for c in self.plan.clients if c.name == name)
            client = LoadClient(plan=plan, sio=socketio.AsyncClient(reconnection=False, handle_sigint=False))
            client.sio.on("message", client.on_message, namespace=NAMESPACE)
            await self.open(name, client.sio)
            self.clients.append(client)

        errors = await self.open_many([c.name for c in self.plan.clients], connect)
        return {"connected": len(self.clients), "errors": errors[:5]}

    # --- sessions -----------------------------------------------------------------

    async def create(self, _: Any) -> dict[int, str]:
        """Each creator opens its room's session and invites the room's other clients."""

        async def create_one(client: LoadClient) -> tuple[int, str]:
            ack = await self.call(client, "session:create", {"title": f"bench room {client.plan.room}"})
            client.session_id = str(ack["session"]["id"])
            for name in client.plan.invites:
                await self.call(client, "session:invite", {"session_id": client.session_id, "member": {"id": name, "kind": "user"}})
            return client.plan.room, client.session_id

        creators = [client for client in self.clients if client.plan.creator]
        return dict(await asyncio.gather(*(create_one(client) for client in creators)))

    async def join(self, sessions: dict[int, str]) -> dict[str, Any]:
        async def join_one(client: LoadClient) -> None:
            client.session_id = sessions[client.plan.room]
            await self.call(client, "session:join", {"session_id": client.session_id})

        joiners = [client for client in self.clients if not client.plan.creator]
        await asyncio.gather(*(join_one(client) for client in joiners))
        return {"joined": len(joiners)}

    async def call(self, client: LoadClient, event: str, data: dict[str, Any]) -> dict[str, Any]:
        ack = await client.sio.call(event, data, namespace=NAMESPACE, timeout=self.plan.ack_timeout_s)
        if not isinstance(ack, dict) or ack.get("ok") is not True:
            raise RuntimeError(f"{client.plan.name}: {event} failed: {ack!r}")
        return ack

    # --- the load -------------------------------------------------------------------

    async def send(self, _: Any) -> dict[str, Any]:
        """Every client sends ``messages`` texts with at most ``window`` unacknowledged."""
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        started = time.monotonic()

        async def run_client(client: LoadClient) -> None:
            next_index = 0

            async def lane() -> None:
                nonlocal next_index
                while next_index < self.plan.messages and time.monotonic() < self.plan.deadline:
                    index = next_index
                    next_index += 1
                    data = {"session_id": client.session_id, "client_id": f"{client.plan.name}-{index}", "type": "text",
                            "payload": {"text": self.plan.text}}
                    sent = time.perf_counter()
                    try:
                        ack = await client.sio.call("message:send", data, namespace=NAMESPACE, timeout=self.plan.ack_timeout_s)
                    except Exception as exc:
                        errors[type(exc).__name__] += 1
                        continue
                    if isinstance(ack, dict) and ack.get("ok") is True:
                        latencies.append((time.perf_counter() - sent) * 1000)
                        client.acked += 1
                    else:
                        code = ack.get("error", {}).get("code") if isinstance(ack, dict) else None
                        errors[str(code or "bad_ack")] += 1

            await asyncio.gather(*(lane() for _ in range(max(1, min(self.plan.window, self.plan.messages)))))

        await asyncio.gather(*(run_client(client) for client in self.clients))
        return {
            "started": started,
            "finished": time.monotonic(),
            "acked": {client.plan.name: client.acked for client in self.clients},
            "latencies_ms": latencies,
            "errors": dict(errors),
        }

    async def settle(self, argument: dict[str, Any]) -> dict[str, Any]:
        """Wait until every client has ``expected[name]`` deliveries, or ``timeout_s`` passes."""
        expected: dict[str, int] = argument["expected"]
        deadline = time.monotonic() + float(argument["timeout_s"])
        for client in self.clients:
            while client.received < expected.get(client.plan.name, 0) and (left := deadline - time.monotonic()) > 0:
                client.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.arrived.wait(), left)
        return {
            "received": sum(c.received for c in self.clients),
            "expected": sum(expected.get(c.plan.name, 0) for c in self.clients),
            "missing": sum(max(0, expected.get(c.plan.name, 0) - c.received) for c in self.clients),
            "extra": sum(max(0, c.received - expected.get(c.plan.name, 0)) for c in self.clients),
            "duplicates": sum(c.duplicates for c in self.clients),
            "out_of_order": sum(c.out_of_order for c in self.clients),
            "foreign": sum(c.foreign for c in self.clients),
            "last_delivery": max((c.last_delivery for c in self.clients), default=0.0),
        }


def worker_main(pipe: Connection, plan: WorkerPlan) -> None:
    """The worker process's entry point."""
    # Ctrl-C reaches the whole process group: the orchestrator stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(Worker(pipe, plan).serve())
