"""The host-only figures: replaying missed messages, and agents streaming replies.

Neither baseline server stores messages or streams replies, so these run
against the host alone (their ratios are n/a), inside a load worker process
(:mod:`bench.load`'s ``replay`` and ``stream`` commands) with python-socketio
clients. Every wait is bounded.

- :func:`replay`: one client sends ``messages`` texts to a session, then a
  second member joins ``joins`` times with ``since_seq: 0``; the server-side
  time of those joins comes from the host's ``tkr_event_duration_seconds``
  histogram (``/metrics`` answers the loopback), before and after.
- :func:`stream`: ``agents`` agents on ``/agents``, each in a session of its own
  with ``members - 1`` users on ``/chat``, stream ``chunks`` chunks each, one
  every ``interval_s`` (about the pace of a model's tokens), all at once. Each
  chunk's text starts with the agent's ``time.monotonic()`` at sending (the
  clock is system-wide on Linux), so the receivers give each chunk's latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any

import aiohttp
import socketio

from bench.tokens import make_token

CONNECT_TIMEOUT_S = 15.0
#: Sockets one scenario opens at once.
CONNECT_CONCURRENCY = 8
JOIN_METRIC = re.compile(r'^tkr_event_duration_seconds_(sum|count)\{([^}]*)\} ([0-9.eE+-]+)$')


async def _open(url: str, secret: str, name: str, kind: str = "user", namespace: str = "/chat") -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
    await sio.connect(url, namespaces=[namespace], auth={"token": make_token(name, secret, kind=kind)}, transports=["websocket"],
                      wait_timeout=CONNECT_TIMEOUT_S)
    return sio


async def _call(sio: socketio.AsyncClient, event: str, data: dict[str, Any], namespace: str = "/chat", timeout: float = 30.0) -> dict[str, Any]:
    ack = await sio.call(event, data, namespace=namespace, timeout=timeout)
    if not isinstance(ack, dict) or ack.get("ok") is not True:
        raise RuntimeError(f"{event} failed: {ack!r}")
    return ack


async def _join_seconds(url: str) -> tuple[float, float]:
    """(sum, count) of ``session:join`` on ``/chat`` in the host's event histogram."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http, http.get(url + "/metrics") as response:
        text = await response.text()
    found = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        match = JOIN_METRIC.match(line)
        if match and 'event="session:join"' in match.group(2) and 'namespace="/chat"' in match.group(2):
            found[match.group(1)] = float(match.group(3))
    return found["sum"], found["count"]


async def replay(url: str, secret: str, messages: int = 500, joins: int = 5, window: int = 8) -> dict[str, Any]:
    """The time to answer a ``session:join`` that replays ``messages`` missed messages."""
    writer = await _open(url, secret, "replay-writer")
    reader = await _open(url, secret, "replay-reader")
    try:
        session_id = (await _call(writer, "session:create", {"title": "replay"}))["session"]["id"]
        await _call(writer, "session:invite", {"session_id": session_id, "member": {"id": "replay-reader", "kind": "user"}})
        queue = iter(range(messages))

        async def lane() -> None:
            for n in queue:
                await _call(writer, "message:send", {"session_id": session_id, "client_id": f"r-{n}", "type": "text",
                                                     "payload": {"text": f"missed message {n} " + "x" * 80}})

        await asyncio.gather(*(lane() for _ in range(window)))
        before = await _join_seconds(url)
        round_trips: list[float] = []
        replayed = 0
        for _ in range(joins):
            started = time.perf_counter()
            ack = await _call(reader, "session:join", {"session_id": session_id, "since_seq": 0})
            round_trips.append((time.perf_counter() - started) * 1000)
            replayed = len(ack["messages"])
        after = await _join_seconds(url)
    finally:
        for sio in (writer, reader):
            with contextlib.suppress(Exception):
                await sio.disconnect()
    count = after[1] - before[1]
    return {
        "replay_messages": replayed,
        "replay_server_ms": (after[0] - before[0]) / count * 1000 if count else None,
        "replay_round_trip_ms": sorted(round_trips)[len(round_trips) // 2],
    }


async def stream(url: str, secret: str, worker: int, agents: int, members: int, chunks: int, interval_s: float,
                 settle_s: float = 10.0) -> dict[str, Any]:
    """This worker's ``agents`` streaming agents and their sessions; raw latencies for the caller to pool."""
    latencies: list[float] = []
    received = 0
    expected = -1  # known once every agent has finished
    last_arrival = 0.0
    complete = asyncio.Event()
    sockets: list[socketio.AsyncClient] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    def on_chunk(data: Any) -> None:
        nonlocal received, last_arrival
        arrived = last_arrival = time.monotonic()
        received += 1
        if received == expected:
            complete.set()
        with contextlib.suppress(KeyError, TypeError, ValueError):
            latencies.append((arrived - float(str(data["delta"]).split("|", 1)[0])) * 1000)

    async def opened(name: str, kind: str = "user", namespace: str = "/chat") -> socketio.AsyncClient:
        async with gate:
            sio = await _open(url, secret, name, kind, namespace)
        sockets.append(sio)
        return sio

    async def one_session(a: int) -> tuple[socketio.AsyncClient, str]:
        agent_name = f"agent-{worker}-{a}"
        users = [await opened(f"watcher-{worker}-{a}-{u}") for u in range(members - 1)]
        agent = await opened(agent_name, "agent", "/agents")
        session_id = (await _call(users[0], "session:create", {"title": "streaming"}))["session"]["id"]
        await _call(users[0], "session:invite", {"session_id": session_id, "member": {"id": agent_name, "kind": "agent"}})
        for u, user in enumerate(users[1:], start=1):
            await _call(users[0], "session:invite", {"session_id": session_id, "member": {"id": f"watcher-{worker}-{a}-{u}", "kind": "user"}})
            await _call(user, "session:join", {"session_id": session_id})
        for user in users:
            user.on("message:chunk", on_chunk, namespace="/chat")
        return agent, session_id

    async def speak(agent: socketio.AsyncClient, session_id: str) -> int:
        message_id = (await _call(agent, "stream:start", {"session_id": session_id}, "/agents"))["message_id"]
        sent = 0
        for _ in range(chunks):
            delta = f"{time.monotonic():.6f}| token "
            await _call(agent, "stream:chunk", {"message_id": message_id, "delta": delta}, "/agents")
            sent += 1
            await asyncio.sleep(interval_s)  # the model's pace, not a synchronisation
        await _call(agent, "stream:end", {"message_id": message_id}, "/agents")
        return sent

    try:
        pairs = await asyncio.gather(*(one_session(a) for a in range(agents)))
        started = time.monotonic()
        sent = sum(await asyncio.gather(*(speak(agent, session_id) for agent, session_id in pairs)))
        expected = sent * (members - 1)
        if received < expected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(complete.wait(), settle_s)  # the stragglers, bounded
    finally:
        async with asyncio.timeout(10):
            await asyncio.gather(*(sio.disconnect() for sio in sockets), return_exceptions=True)
    return {"started": started, "finished": max(last_arrival, started), "chunks_sent": sent, "chunks_expected": expected, "chunks_received": received,
            "latencies_ms": latencies}
