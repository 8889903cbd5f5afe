"""Node loss, for real: three ``tkr-host serve`` nodes on the test PostgreSQL and one
Redis, users of the Python SDK spread over them (each given all three URLs, its own
node first), in one shared session, sending while an agent streams a reply.

* Node A is SIGKILLed mid-load. Its users fail over to B or C, resume with
  ``since_seq`` and drain their queues. Then: every acked message is stored, ``seq``
  is gapless, and every member holds every message exactly once. The stream A
  relayed cannot move (its chunks lived in A's memory, and the agent's socket died
  with A): a survivor finds its entry expired (``presence_ttl_s``, docs/configuration.md)
  and keeps it as ``incomplete`` with the text acked so far, and the session gets
  ``agent.stream_aborted`` (docs/protocol.md). The test checks exactly that path.
  The agent, which does not come back, is listed by every node's ``GET
  /api/v1/agents`` while A lives, and then goes ``offline`` and out of the directory.
* Redis is restarted mid-load instead. Redis here is a PRIVATE ``redis-server
  --port <free> --save ''`` started by the test (on a port below the ephemeral range), so that other tests on
  127.0.0.1:6379 are not disturbed. Local delivery goes on while it is down, and
  clients recover what a lost cross-node broadcast missed through the ``seq`` gap
  (``message:history``), once later messages reach them.

Every load loop is bounded (a fixed number of messages per user, deadlines on
every wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import socketio
from tkr_client import Backoff, ChatClient

from tkr_host.testing import TkrClient, connect_client, eventually, make_token

USERS = 6
MESSAGES_PER_USER = 12
TTL_S = 3.0  # [plugins.redis] presence_ttl_s: a dead node's stream is swept within TTL_S + TTL_S / 3
QUICK = Backoff(base=0.05, cap=0.5)
#: The deadline of a wait on the load's progress (a bound on a loaded machine, not a pause).
LOAD_S = 60.0


class User:
    """A ChatClient and everything it delivered."""

    def __init__(self, name: str, urls: list[str]) -> None:
        self.name = name
        self.client = ChatClient(urls, make_token(name), backoff=QUICK, call_timeout=10)
        self.received: list[dict[str, Any]] = []
        self.errors: list[Any] = []
        self.presence: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.client.on("message", self.received.append)
        self.client.on("error", self.errors.append)
        self.client.on("presence", self.presence.append)

    def holds(self) -> list[str]:
        return [m["id"] for m in self.received] + [s["id"] for s in self.sent]


async def send_all(user: User, session_id: str, count: int) -> None:
    for i in range(count):
        # send_text returns once acked: through a node's death it waits in the
        # queue, and is resent with its client_id after the failover.
        user.sent.append(dict(await user.client.send_text(session_id, f"{user.name} {i}")))
        await asyncio.sleep(0.02)  # pacing of a person typing, not a synchronisation


async def directory(url: str) -> list[str]:
    """``GET /api/v1/agents`` of one node: the ids it lists."""
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/v1/agents", headers={"Authorization": f"Bearer {make_token('probe')}"}) as answer:
        assert answer.status == 200
        return [agent["id"] for agent in (await answer.json())["agents"]]


async def stored_messages(dsn: str, schema: str, session_id: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        return list(await connection.fetch("SELECT id, seq, status, payload FROM messages WHERE session_id = $1 ORDER BY seq", session_id))
    finally:
        await connection.close()


async def start_users(nodes: list[Any]) -> tuple[list[User], str]:
    urls = [node.url for node in nodes]
    users = [User(f"user{i}", urls[i % 3:] + urls[: i % 3]) for i in range(USERS)]
    for user in users:
        await user.client.connect(timeout=20)
    owner = users[0]
    session = await owner.client.create_session(title="node loss", agents=["echo"])
    for user in users[1:]:
        await owner.client.invite(session["id"], user.name)
        await user.client.join(session["id"])
    return users, session["id"]


async def check_everyone_holds_everything(users: list[User], stored_ids: set[str]) -> None:
    for user in users:
        await eventually(lambda user=user: set(user.holds()) == stored_ids, timeout=60, what=f"{user.name} holds every stored message")
        holds = user.holds()
        assert len(holds) == len(set(holds)), f"{user.name} holds a message twice"


def check_gapless(stored: list[asyncpg.Record]) -> None:
    assert [row["seq"] for row in stored] == list(range(1, len(stored) + 1))


@pytest.fixture
async def users_closed() -> AsyncIterator[list[User]]:
    made: list[User] = []
    yield made
    for user in made:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(user.client.close(), 10)


async def test_sigkill_of_a_node_mid_load_loses_nothing(services, spawn_node, node_ready, users_closed):
    nodes = [spawn_node(services, name, ttl_s=TTL_S) for name in ("a", "b", "c")]
    for node in nodes:
        await node_ready(node)
    node_a = nodes[0]
    users, session_id = await start_users(nodes)
    users_closed.extend(users)
    # The agent streams through A only: a raw socket, so that it does not reconnect.
    echo = TkrClient(await connect_client(node_a.url, make_token("echo", "agent"), "/agents"), "echo", "/agents")
    stream_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    assert await directory(nodes[2].url) == ["echo"], "node C does not list the agent connected to A"
    acked_text: list[str] = []
    sent_text: list[str] = []

    async def stream() -> None:
        with contextlib.suppress(socketio.exceptions.SocketIOError, TimeoutError, asyncio.TimeoutError):
            for i in range(400):
                delta = f"[{i}]"
                sent_text.append(delta)
                ack = await echo.call("stream:chunk", {"message_id": stream_id, "delta": delta}, timeout=2)
                assert ack["ok"], ack
                acked_text.append(delta)
                await asyncio.sleep(0.02)  # an agent's token rate, not a synchronisation

    streaming = asyncio.create_task(stream())
    sending = [asyncio.create_task(send_all(user, session_id, MESSAGES_PER_USER)) for user in users]
    total = USERS * MESSAGES_PER_USER
    await eventually(lambda: sum(len(u.sent) for u in users) >= total // 3 and len(acked_text) >= 5, timeout=LOAD_S, what="a third of the load acked")
    os.killpg(node_a.process.pid, signal.SIGKILL)
    node_a.process.wait(10)

    await asyncio.wait_for(asyncio.gather(*sending), 120)
    await asyncio.wait_for(streaming, 30)
    with contextlib.suppress(Exception):
        await echo.close()
    assert sum(len(u.sent) for u in users) == total

    # The stream A relayed: swept by a survivor, stored incomplete, reported aborted.
    async def stream_kept() -> list[asyncpg.Record]:
        return [row for row in await stored_messages(services.dsn, services.schema, session_id) if row["id"] == stream_id]

    [kept] = await eventually(stream_kept, timeout=TTL_S * 4 + 10, what="the aborted stream stored")
    assert kept["status"] == "incomplete"
    text = json.loads(kept["payload"])["text"] if isinstance(kept["payload"], str) else kept["payload"]["text"]
    assert text.startswith("".join(acked_text)) and "".join(sent_text).startswith(text)
    await eventually(lambda: any(getattr(e, "code", None) == "agent.stream_aborted" and (getattr(e, "details", None) or {}).get("message_id")
                                 == stream_id for u in users for e in u.errors), timeout=LOAD_S, what="agent.stream_aborted reached the session")

    # The agent died with A and did not come back: its entries faded, so the
    # session is told it is offline and the directory no longer lists it.
    await eventually(lambda: all(any(p["member"]["id"] == "echo" and p["state"] == "offline" for p in u.presence) for u in users),
                     timeout=TTL_S * 4 + 10, what="every member told the agent went offline")
    assert await directory(nodes[1].url) == [] and await directory(nodes[2].url) == []

    stored = await stored_messages(services.dsn, services.schema, session_id)
    check_gapless(stored)
    stored_ids = {row["id"] for row in stored}
    acked_ids = {s["id"] for u in users for s in u.sent}
    assert acked_ids <= stored_ids, "an acked message is not stored"
    assert stored_ids == acked_ids | {stream_id}, "the store holds a message nobody sent"
    await check_everyone_holds_everything(users, stored_ids)


def private_port() -> int:
    """A free port BELOW the kernel's ephemeral range, for the private Redis.

    redis-server binds its port itself (it takes no descriptor), and the restart needs the same
    port again. Every other test binds port 0 and every client's connect gets an ephemeral port,
    both from ``ip_local_port_range``, so a port below it is one nothing else here is handed
    while the server is down; only a process that names that very port could take it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise AssertionError("no free port below the ephemeral range")


class PrivateRedis:
    """A redis-server of this test's own, with no persistence: a restart starts empty."""

    def __init__(self, directory: Any) -> None:
        self.port = private_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed: the Redis-restart test runs a private one")
        self.process = self._spawn(binary)
        from redis.asyncio import Redis

        client = Redis.from_url(self.url)
        try:
            async def answers() -> bool:
                try:
                    return bool(await client.ping())
                except Exception:
                    return False

            await eventually(answers, timeout=20, what="the private Redis answers")
        finally:
            await client.aclose()

    def _spawn(self, binary: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


async def test_a_redis_restart_mid_load_loses_nothing(services, spawn_node, node_ready, users_closed, tmp_path):
    redis = PrivateRedis(tmp_path)
    await redis.start()
    watcher: TkrClient | None = None
    try:
        nodes = [spawn_node(services, name, ttl_s=TTL_S, redis_url=redis.url) for name in ("a", "b", "c")]
        for node in nodes:
            await node_ready(node)
        users, session_id = await start_users(nodes)
        users_closed.extend(users)
        watcher = TkrClient(await connect_client(nodes[0].url, make_token("watcher")), "watcher", "/chat")
        await users[0].client.invite(session_id, "watcher")
        await watcher.ok("session:join", {"session_id": session_id})
        sending = [asyncio.create_task(send_all(user, session_id, MESSAGES_PER_USER)) for user in users]
        total = USERS * MESSAGES_PER_USER
        await eventually(lambda: sum(len(u.sent) for u in users) >= total // 4, timeout=LOAD_S, what="a quarter of the load acked")
        redis.kill()
        down_at = sum(len(u.sent) for u in users)
        sent_before_outage = [len(u.sent) for u in users]
        # Local delivery goes on: sends are acked while Redis is down...
        await eventually(lambda: sum(len(u.sent) for u in users) >= down_at + USERS, timeout=LOAD_S, what="sends acked while Redis is down")

        # ...and reach the members on the sender's own node, live. The watcher is a
        # bare client on node A (no SDK, so no gap fill from history: what it holds
        # came through A's own delivery); users 0 and 3 have node A first in their URLs.
        def delivered_on_node_a() -> bool:
            sent_on_a = {s["id"] for i in (0, 3) for s in users[i].sent[sent_before_outage[i]:]}
            return bool(sent_on_a & {m["id"] for m in watcher.received("message")})

        await eventually(delivered_on_node_a, timeout=LOAD_S, what="a message sent on node A while Redis is down reached node A's watcher")
        await redis.start()
        await asyncio.wait_for(asyncio.gather(*sending), 120)
        assert sum(len(u.sent) for u in users) == total
        # A gap shows only when a later message arrives: once every node listens
        # again, one more message lets every client notice what it missed.
        from redis.asyncio import Redis

        client = Redis.from_url(redis.url)
        try:
            async def all_listening() -> bool:
                [(_, listeners)] = await client.pubsub_numsub(services.channel)
                return int(listeners) >= 3

            await eventually(all_listening, timeout=LOAD_S, what="every node subscribed again after the restart")
        finally:
            await client.aclose()
        users[0].sent.append(dict(await users[0].client.send_text(session_id, "after the restart")))

        stored = await stored_messages(services.dsn, services.schema, session_id)
        check_gapless(stored)
        stored_ids = {row["id"] for row in stored}
        acked_ids = {s["id"] for u in users for s in u.sent}
        assert stored_ids == acked_ids, "acked and stored differ"
        await check_everyone_holds_everything(users, stored_ids)
    finally:
        if watcher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(watcher.sio.disconnect(), 10)
        redis.kill()
