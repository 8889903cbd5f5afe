"""The shared view of several nodes, kept in Redis with expiry.

Every entry a node writes carries an expiry time (``presence_ttl_s`` ahead);
the node rewrites its own entries every third of that, and every node sweeps
the entries that expired. So a node that dies without a word (SIGKILL) is gone
from presence, from the ``streams`` and ``agents`` of a join and from the agent
directory within ``presence_ttl_s`` plus one sweep: the survivor that removes a
member's last entry announces it ``offline``, and the one that removes a dead
node's stream keeps its text as incomplete and reports ``agent.stream_aborted``.

Requests meant for a socket on another node (``stream:stop``, a disconnect)
travel on a pub/sub channel of their own; a stop is answered by the node that
relays the stream, whose id the stream's entry names.

Redis failures never fail the local operation: they are logged, counted in
``tkr_redis_failures_total{operation="cluster"}``, and the answer falls back
to what this node knows; the refresh restores this node's entries once Redis
is back (a restarted Redis that kept nothing is refilled within a third of the TTL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from prometheus_client import Counter

from tkr_host import AgentStatus, ClusterHandlers, ClusterState, HostError, Member, OpenStream, Principal, stream_record

log = logging.getLogger("tkr_redis.cluster")
T = TypeVar("T")

#: How long a ``stream:stop`` waits for the node that relays the stream.
STOP_TIMEOUT_S = 3.0


def _raise_if_cancelled() -> None:
    """Raise the cancellation of this task that an await below it swallowed.

    With ``socket_timeout`` set, redis-py sends every command through
    ``asyncio.wait_for``, which on Python 3.11 drops a cancel that arrives in
    the loop iteration where the send completes (CPython gh-86296; rewritten
    in 3.12). The call then returns as if nothing happened, the task is left
    ``cancelling()`` and a ``while True`` loop runs on: ``close()`` awaited
    the control listener forever when a host stopped while it was still
    subscribing, right after start-up. A loop that checks here after its
    Redis calls ends at the next turn instead.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass
class _Written:
    """A stream as this node last wrote it: how many chunks Redis has."""

    stream: OpenStream
    chunks: int = 0


class RedisCluster:
    """:class:`tkr_host.cluster.ClusterState` on Redis."""

    def __init__(self, local: ClusterState, url: str, prefix: str, ttl_s: float, failures: Counter) -> None:
        self._local = local  # this node's own view: the answer while Redis cannot be reached
        # Any: redis-py's types do not express that decode_responses=True answers str.
        self._redis: Any = aioredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2, decode_responses=True)
        self._prefix = prefix
        self._ttl = ttl_s
        self._failures = failures
        # Text outlives its stream's entry, so that the sweep that finds the entry expired still finds the text.
        self._text_ttl = int(ttl_s * 3) + 1
        self.node = uuid.uuid4().hex[:12]
        self._handlers: ClusterHandlers | None = None
        # What this node wrote, so that it can write it again before it expires.
        self._presence: dict[str, set[str]] = {}  # session id -> entries
        self._statuses: dict[tuple[str, str], AgentStatus] = {}
        self._streams: dict[str, _Written] = {}
        self._agents: dict[str, str] = {}  # sid -> agent entry
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._answering: set[asyncio.Task[None]] = set()

    # --- keys -------------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    @property
    def _control(self) -> str:
        return self._key("control")

    def _expiry(self) -> float:
        return time.time() + self._ttl

    @staticmethod
    def _entry(member: Member, node: str, sid: str) -> str:
        return json.dumps([member.id, member.kind, node, sid])

    async def _guarded(self, what: str, operation: Callable[[], Awaitable[T]], fallback: T) -> T:
        try:
            return await operation()
        except Exception as exc:
            self._failures.labels("cluster").inc()
            log.warning("redis cluster state: %s failed (%s: %s)", what, type(exc).__name__, exc)
            return fallback

    # --- lifecycle --------------------------------------------------------------

    async def start(self, handlers: ClusterHandlers) -> None:
        self._handlers = handlers
        self._tasks = [asyncio.ensure_future(self._listen()), asyncio.ensure_future(self._maintain())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # A clean stop takes this node's entries with it, rather than letting them fade.
        await self._guarded("removing this node's entries", self._remove_own, None)
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    async def _remove_own(self) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id, entries in self._presence.items():
                for entry in entries:
                    pipe.zrem(self._key("presence", session_id), entry)
            for written in self._streams.values():
                self._drop_stream(pipe, written.stream)
            for entry in self._agents.values():
                pipe.zrem(self._key("agents"), entry)
            await pipe.execute()

    # --- presence ---------------------------------------------------------------

    async def arrive(self, session_id: str, member: Member, sid: str, first_here: bool) -> bool:
        entry = self._entry(member, self.node, sid)
        self._presence.setdefault(session_id, set()).add(entry)

        async def write() -> bool:
            key = self._key("presence", session_id)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {entry: self._expiry()})
                pipe.zrangebyscore(key, time.time(), "+inf")
                pipe.zadd(self._key("sessions"), {session_id: self._expiry()})
                _, live, _ = await pipe.execute()
            return [e for e in live if json.loads(e)[0] == member.id] == [entry]

        return await self._guarded("arrive", write, first_here)

    async def depart(self, session_id: str, member: Member, sid: str, last_here: bool) -> bool:
        entry = self._entry(member, self.node, sid)
        mine = self._presence.get(session_id, set())
        mine.discard(entry)
        if not mine:
            self._presence.pop(session_id, None)

        async def write() -> bool:
            key = self._key("presence", session_id)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(key, entry)
                pipe.zrangebyscore(key, time.time(), "+inf")
                removed, live = await pipe.execute()
            last = not any(json.loads(e)[0] == member.id for e in live) and (bool(removed) or last_here)
            if last:
                await self._redis.hdel(self._key("status", session_id), member.id)  # a status lapses with its agent
            return last

        if last_here:
            self._statuses.pop((session_id, member.id), None)
        return await self._guarded("depart", write, last_here)

    # --- agent status -----------------------------------------------------------

    async def set_status(self, session_id: str, status: AgentStatus) -> None:
        self._statuses[(session_id, status.agent.id)] = status

        async def write() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                self._write_status(pipe, session_id, status)
                pipe.hset(self._key("agent_state"), status.agent.id, json.dumps({"state": status.state, "ts": status.ts}))
                await pipe.execute()

        await self._guarded("set_status", write, None)

    def _write_status(self, pipe: Any, session_id: str, status: AgentStatus) -> None:
        pipe.hset(self._key("status", session_id), status.agent.id, json.dumps({"wire": status.to_wire(), "expires": self._expiry()}))

    async def statuses(self, session_id: str) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            now = time.time()
            rows = [json.loads(raw) for raw in (await self._redis.hgetall(self._key("status", session_id))).values()]
            return sorted((row["wire"] for row in rows if row["expires"] > now), key=lambda wire: wire["id"])

        return await self._guarded("statuses", read, await self._local.statuses(session_id))

    # --- streams ----------------------------------------------------------------

    async def stream_changed(self, stream: OpenStream) -> None:
        written = self._streams.setdefault(stream.message_id, _Written(stream))
        written.stream = stream

        async def write() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                if written.chunks == 0:
                    self._write_stream_meta(pipe, stream)
                    pipe.zadd(self._key("sessions"), {stream.session_id: self._expiry()})
                new = stream.chunks[written.chunks:]
                if new:
                    pipe.append(self._key("stream_text", stream.message_id), "".join(new))
                pipe.set(self._key("stream_index", stream.message_id), len(stream.chunks) - 1, ex=self._text_ttl)
                pipe.expire(self._key("stream_text", stream.message_id), self._text_ttl)
                await pipe.execute()
            written.chunks = len(stream.chunks)

        await self._guarded("stream_changed", write, None)

    def _write_stream_meta(self, pipe: Any, stream: OpenStream) -> None:
        meta = {**stream_record(stream), "node": self.node, "expires": self._expiry()}
        pipe.hset(self._key("streams", stream.session_id), stream.message_id, json.dumps(meta))

    def _drop_stream(self, pipe: Any, stream: OpenStream) -> None:
        pipe.hdel(self._key("streams", stream.session_id), stream.message_id)
        pipe.delete(self._key("stream_text", stream.message_id), self._key("stream_index", stream.message_id))

    async def stream_closed(self, stream: OpenStream) -> None:
        self._streams.pop(stream.message_id, None)

        async def write() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                self._drop_stream(pipe, stream)
                await pipe.execute()

        await self._guarded("stream_closed", write, None)

    async def _stream_meta(self, session_id: str) -> dict[str, dict[str, Any]]:
        now = time.time()
        raw = await self._redis.hgetall(self._key("streams", session_id))
        return {message_id: meta for message_id, meta in ((k, json.loads(v)) for k, v in raw.items()) if meta["expires"] > now}

    async def streams(self, session_id: str) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            metas = await self._stream_meta(session_id)
            keys = [self._key(kind, message_id) for message_id in metas for kind in ("stream_text", "stream_index")]
            values = await self._redis.mget(keys) if keys else []
            found = []
            for position, (message_id, meta) in enumerate(metas.items()):
                text, index = values[2 * position], values[2 * position + 1]
                sender = Principal.model_validate(meta["principal"]).member()
                found.append({"message_id": message_id, "sender": sender.model_dump(), "index": int(index) if index is not None else -1,
                              "text": text or ""})
            return found

        return await self._guarded("streams", read, await self._local.streams(session_id))

    # --- the agent directory ----------------------------------------------------

    async def agent_connected(self, agent: Principal, sid: str) -> None:
        entry = self._agents[sid] = json.dumps([agent.id, agent.name or agent.id, self.node, sid])
        await self._guarded("agent_connected", lambda: self._redis.zadd(self._key("agents"), {entry: self._expiry()}), 0)

    async def agent_disconnected(self, agent: Principal, sid: str) -> None:
        entry = self._agents.pop(sid, None)
        if entry is None:
            return

        async def write() -> None:
            key = self._key("agents")
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(key, entry)
                pipe.zrangebyscore(key, time.time(), "+inf")
                _, live = await pipe.execute()
            if not any(json.loads(e)[0] == agent.id for e in live):
                # Its statuses lapsed with its presence: the directory says `idle` when it is back.
                await self._redis.hdel(self._key("agent_state"), agent.id)

        await self._guarded("agent_disconnected", write, None)

    async def agents(self) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            names: dict[str, str] = {}
            for entry in await self._redis.zrangebyscore(self._key("agents"), time.time(), "+inf"):
                agent_id, name, _, _ = json.loads(entry)
                names.setdefault(agent_id, name)
            ids = sorted(names)
            states = await self._redis.hmget(self._key("agent_state"), ids) if ids else []
            return [{"id": agent_id, "name": names[agent_id], "online": True, "state": json.loads(state)["state"] if state else "idle"}
                    for agent_id, state in zip(ids, states, strict=True)]

        return await self._guarded("agents", read, await self._local.agents())

    # --- requests for other nodes -----------------------------------------------

    async def stop_stream(self, session_id: str, message_id: str, by: Principal) -> dict[str, Any] | None:
        nothing: dict[str, dict[str, Any]] = {}
        metas = await self._guarded("stop_stream", lambda: self._stream_meta(session_id), nothing)
        meta = metas.get(message_id)
        if meta is None or meta["node"] == self.node:
            return None
        request_id = uuid.uuid4().hex
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = reply
        try:
            await self._publish({"op": "stop", "id": request_id, "node": meta["node"], "reply_to": self.node,
                                 "session_id": session_id, "message_id": message_id, "by": by.model_dump(mode="json")})
            answer = await asyncio.wait_for(reply, STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("stream:stop for %s: node %s did not answer", message_id, meta["node"])
            return None  # that node is gone: the sweep keeps the stream as incomplete
        finally:
            self._replies.pop(request_id, None)
        if "error" in answer:
            wire = answer["error"]
            raise HostError(wire["code"], message=wire.get("message"), hint=wire.get("hint"), details=wire.get("details") or {})
        result: dict[str, Any] | None = answer.get("result")
        return result

    async def disconnect(self, sid: str, namespace: str, error: HostError) -> None:
        await self._guarded("disconnect", lambda: self._publish(
            {"op": "disconnect", "sid": sid, "namespace": namespace, "error": error.to_wire()}), None)

    async def _publish(self, message: dict[str, Any]) -> None:
        await self._redis.publish(self._control, json.dumps(message))

    async def _listen(self) -> None:
        """Answer the control channel; after a Redis failure, subscribe again."""
        while True:
            _raise_if_cancelled()  # each turn: a Redis call may have swallowed the cancel (see there)
            pubsub: Any = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._control)
                while True:
                    _raise_if_cancelled()
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        await self._handle(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failures.labels("cluster").inc()
                log.warning("redis cluster control channel lost (%s); subscribing again", type(exc).__name__)
                await asyncio.sleep(0.5)  # a pause before retrying a server that is down
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _handle(self, message: dict[str, Any]) -> None:
        assert self._handlers is not None
        op = message.get("op")
        try:
            if op == "disconnect":
                wire = message["error"]
                await self._handlers.disconnect(message["sid"], message["namespace"],
                                                HostError(wire["code"], message=wire.get("message"), hint=wire.get("hint"),
                                                          details=wire.get("details") or {}))
            elif op == "stop" and message.get("node") == self.node:
                # The store write must not hold up the channel.
                task = asyncio.ensure_future(self._answer_stop(message))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)
            elif op == "reply" and message.get("node") == self.node:
                reply = self._replies.get(message["id"])
                if reply is not None and not reply.done():
                    reply.set_result(message)
        except Exception:
            log.exception("redis cluster: handling %s failed", op)

    async def _answer_stop(self, message: dict[str, Any]) -> None:
        assert self._handlers is not None
        answer: dict[str, Any] = {"op": "reply", "id": message["id"], "node": message["reply_to"]}
        try:
            answer["result"] = await self._handlers.stop_stream(message["session_id"], message["message_id"],
                                                                Principal.model_validate(message["by"]))
        except HostError as error:
            answer["error"] = error.to_wire()
        except Exception:
            log.exception("redis cluster: stopping %s failed", message["message_id"])
            answer["error"] = HostError("internal.error").to_wire()
        await self._guarded("answering a stop", lambda: self._publish(answer), None)

    # --- refresh and sweep ------------------------------------------------------

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)  # the refresh period, not a synchronisation
            await self._guarded("refresh", self._refresh, None)
            await self._guarded("sweep", self._sweep, None)
            _raise_if_cancelled()

    async def _refresh(self) -> None:
        expiry = self._expiry()
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id, entries in self._presence.items():
                pipe.zadd(self._key("presence", session_id), dict.fromkeys(entries, expiry))
                pipe.zadd(self._key("sessions"), {session_id: expiry})
            for (session_id, _), status in self._statuses.items():
                self._write_status(pipe, session_id, status)
            for written in self._streams.values():
                self._write_stream_meta(pipe, written.stream)
                pipe.zadd(self._key("sessions"), {written.stream.session_id: expiry})
                for kind in ("stream_text", "stream_index"):
                    pipe.expire(self._key(kind, written.stream.message_id), self._text_ttl)
            if self._agents:
                pipe.zadd(self._key("agents"), dict.fromkeys(self._agents.values(), expiry))
            await pipe.execute()
        # A Redis that restarted empty lost the text: write whole streams again next time.
        for written in self._streams.values():
            if not await self._redis.exists(self._key("stream_text", written.stream.message_id)) and written.stream.chunks:
                written.chunks = 0
                await self.stream_changed(written.stream)

    async def _sweep(self) -> None:
        """Remove what dead nodes left, and say so where a client would wait for it."""
        assert self._handlers is not None
        now = time.time()
        await self._redis.zremrangebyscore(self._key("agents"), "-inf", now)
        for session_id, score in await self._redis.zrange(self._key("sessions"), 0, -1, withscores=True):
            await self._sweep_presence(session_id, now)
            await self._sweep_streams(session_id, now)
            if score < now:
                await self._redis.zrem(self._key("sessions"), session_id)

    async def _sweep_presence(self, session_id: str, now: float) -> None:
        assert self._handlers is not None
        key = self._key("presence", session_id)
        expired = await self._redis.zrangebyscore(key, "-inf", now)
        for entry in expired:
            if not await self._redis.zrem(key, entry):
                continue  # another node swept it first
            member_id, kind, _, _ = json.loads(entry)
            live = await self._redis.zrangebyscore(key, now, "+inf")
            if not any(json.loads(e)[0] == member_id for e in live):
                await self._redis.hdel(self._key("status", session_id), member_id)
                await self._handlers.member_gone(session_id, Member(id=member_id, kind=kind))

    async def _sweep_streams(self, session_id: str, now: float) -> None:
        assert self._handlers is not None
        key = self._key("streams", session_id)
        for message_id, raw in (await self._redis.hgetall(key)).items():
            meta = json.loads(raw)
            if meta["expires"] > now or not await self._redis.hdel(key, message_id):
                continue
            text = await self._redis.get(self._key("stream_text", message_id))
            await self._redis.delete(self._key("stream_text", message_id), self._key("stream_index", message_id))
            log.warning("stream %s of node %s expired: keeping it as incomplete", message_id, meta["node"])
            await self._handlers.stream_orphaned({**meta, "text": text or ""})
