"""``tkr-host serve`` with ``workers = 2`` and Redis: WebSocket clients are served on
every worker, and SIGTERM drains every worker as one worker drains (docs/operations.md,
"Two workers" and "SIGTERM: the drain").

The worker that holds a socket is named by the ``x-tkr-worker`` header of its
WebSocket handshake, so the test speaks Engine.IO 4 / Socket.IO 5 itself over an
aiohttp WebSocket: that is the only client that shows handshake headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from typing import Any

import aiohttp
import asyncpg

from tkr_host.testing import make_token

BATCH = 8  # connections opened at once
LIFTED_CONNECT_LIMIT = "[plugins.ratelimit]\nconnects_per_minute = 6000000\nconnect_burst = 100000\n"


class RawSocket:
    """One Socket.IO connection to ``/chat`` over a plain WebSocket."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, worker: str) -> None:
        self.http, self.ws, self.worker = http, ws, worker
        self.events: list[tuple[str, Any]] = []
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.next_id = 0
        self.changed = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None
        self.principal = ""

    @classmethod
    async def open(cls, url: str, principal: str) -> RawSocket:
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(f"{url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket")
            worker = ws._response.headers.get("x-tkr-worker", "")  # the handshake's response headers
            self = cls(http, ws, worker)
            self.principal = principal
            opened = await ws.receive_str(timeout=10)
            assert opened.startswith("0"), opened
            await ws.send_str("40/chat," + json.dumps({"token": make_token(principal)}))
            connected = await ws.receive_str(timeout=10)
            assert connected.startswith("40/chat,"), connected
        except BaseException:
            await http.close()
            raise
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            text = frame.data
            if text == "2":  # Engine.IO ping
                await self.ws.send_str("3")
            elif text.startswith("42/chat,"):
                name, *args = json.loads(text[len("42/chat,"):])
                self.events.append((name, args[0] if args else None))
            elif text.startswith("43/chat,"):
                body = text[len("43/chat,"):]
                digits = len(body) - len(body.lstrip("0123456789"))
                future = self.acks.pop(int(body[:digits]), None)
                if future is not None and not future.done():
                    future.set_result(json.loads(body[digits:])[0])
            self.changed.set()
        # Closed by the host (or the network): a call still waiting would
        # otherwise wait for its whole timeout, and hide why.
        for future in self.acks.values():
            if not future.done():
                future.set_exception(ConnectionError(f"the connection to worker {self.worker} closed while waiting for an ack"))
        self.changed.set()

    @classmethod
    async def refused(cls, url: str, principal: str, deadline: float) -> dict[str, Any]:
        """Connect until a worker refuses (it is draining); return the refusal's error."""
        while True:
            assert time.monotonic() < deadline, "no worker refused a connect while draining"
            async with aiohttp.ClientSession() as http:
                try:
                    ws = await http.ws_connect(f"{url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket")
                except aiohttp.ClientError:
                    await asyncio.sleep(0.02)
                    continue
                await ws.receive_str(timeout=10)
                await ws.send_str("40/chat," + json.dumps({"token": make_token(principal)}))
                answer = await ws.receive_str(timeout=10)
                await ws.close()
            if answer.startswith("44/chat,"):
                return dict(json.loads(answer[len("44/chat,"):]).get("data") or json.loads(answer[len("44/chat,"):]))
            await asyncio.sleep(0.02)

    async def call(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[self.next_id] = future
        await self.ws.send_str(f"42/chat,{self.next_id}" + json.dumps([event, data]))
        return dict(await asyncio.wait_for(future, 15))

    async def wait_event(self, name: str, timeout: float = 15.0) -> Any:
        async def found() -> Any:
            while True:
                match = next((data for event, data in self.events if event == name), None)
                if match is not None:
                    return match
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(found(), timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        await self.http.close()


async def test_two_workers_serve_websockets_on_both_and_sigterm_drains_both(services, spawn_node, node_ready):
    # Every connect comes from 127.0.0.1, in batches: lift the connect rate limit.
    node = await node_ready(spawn_node(services, "workers", workers=2, extra=LIFTED_CONNECT_LIMIT))
    sockets: list[RawSocket] = []
    try:
        by_worker: dict[str, RawSocket] = {}
        deadline = time.monotonic() + 60  # /readyz answered from one worker: the other may still be starting
        # Opened in concurrent batches: the workers race for the accepts, where
        # one connect at a time may keep landing on one idle worker.
        while len(by_worker) < 2:
            assert time.monotonic() < deadline, f"every connection landed on worker {list(by_worker)}"
            batch = await asyncio.gather(*(RawSocket.open(node.url, f"user{len(sockets)}-{n}") for n in range(BATCH)),
                                         return_exceptions=True)
            failed = [outcome for outcome in batch if isinstance(outcome, BaseException)]
            for opened in batch:
                if not isinstance(opened, RawSocket):
                    continue
                if failed or opened.worker in by_worker:
                    await opened.close()  # every socket is closed or kept: none is left to the garbage collector
                else:
                    by_worker[opened.worker] = opened
                    sockets.append(opened)
            if failed:
                raise failed[0]
            assert all(worker.isdigit() for worker in by_worker), "the handshake names no worker"
        alice, bob = sockets
        assert alice.worker != bob.worker and node.process.pid not in (int(alice.worker), int(bob.worker))
        created = await alice.call("session:create", {"title": "two workers", "agents": []})
        session_id = created["session"]["id"]
        assert (await alice.call("session:invite", {"session_id": session_id, "member": {"id": bob.principal, "kind": "user"}}))["ok"]
        assert (await bob.call("session:join", {"session_id": session_id}))["ok"]
        # Sent on alice's worker, delivered on bob's: through Redis.
        sent = await alice.call("message:send", {"session_id": session_id, "client_id": "c-0", "type": "text", "payload": {"text": "hi"}})
        assert sent["ok"], sent
        got = await bob.wait_event("message")
        assert got["id"] == sent["message"]["id"]

        # Held in flight for real: the test locks the messages table, so every
        # send waits in PostgreSQL at its first read of it, on both workers.
        blocker = await asyncpg.connect(services.dsn, server_settings={"search_path": services.schema})
        try:
            held = blocker.transaction()
            await held.start()
            await blocker.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
            in_flight = [asyncio.create_task(client.call("message:send", {"session_id": session_id, "client_id": f"c-{client.worker}-{i}",
                                                                           "type": "text", "payload": {"text": f"in flight {i}"}}))
                         for client in (alice, bob) for i in range(3)]
            deadline = time.monotonic() + 20
            blocked = "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
            # Two waiting backends: a send of each worker has reached the store
            # (in runs so far each worker had one waiting, its other sends queued behind it).
            while await blocker.fetchval(blocked) < 2:
                assert time.monotonic() < deadline, "the sends never reached the store"
                await asyncio.sleep(0.02)
            node.process.send_signal(signal.SIGTERM)
            refused = await RawSocket.refused(node.url, "carol", deadline)
            assert refused["code"] == "protocol.shutting_down"
            assert not any(task.done() for task in in_flight), "a call finished while its append was held"
            await held.rollback()
            acks = await asyncio.gather(*in_flight)
            assert all(ack["ok"] for ack in acks), acks
            stored = {row["id"] for row in await blocker.fetch("SELECT id FROM messages WHERE session_id = $1", session_id)}
            assert stored == {sent["message"]["id"], *(ack["message"]["id"] for ack in acks)}
        finally:
            if blocker.is_in_transaction():
                await blocker.execute("ROLLBACK")
            await blocker.close()
        for client in (alice, bob):
            error = await client.wait_event("error")
            assert error["code"] == "protocol.shutting_down"
        assert await asyncio.to_thread(node.process.wait, 30) == 0, node.tail()
        log = node.tail()
        assert log.count("tkr-host stopped") == 2, log  # each worker ran its drain to the end and closed its store
    finally:
        for opened in sockets:
            await opened.close()
