"""``ChatClient``: tkr-host for people and scripts.

    async with ChatClient(url, token) as client:
        session = await client.create_session(title="Plans", agents=["echo"])
        await client.send_text(session["id"], "hello", to="echo")
        async for event in client.events():
            ...

It reconnects by itself (full-jitter backoff), joins each followed session
again with ``since_seq``, and delivers ``message`` events in ``seq`` order per
session, each ``seq`` once, filling gaps from ``message:history``. Sends wait
in the offline queue (in memory, or an SQLite file with ``queue_path``) until
the host acks them, and are sent again with the same ``client_id`` after a drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from tkr_client.connection import Backoff, ClientState, Link, State, StateChange, TokenSource, Urls, url_list
from tkr_client.errors import TkrError, client_error
from tkr_client.events import DEFAULT_MAX_BUFFERED, EventHub, EventStream, Handler
from tkr_client.feeds import Feed, StreamTracker
from tkr_client.outbox import Outbox, new_client_id
from tkr_client.queue import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, MemoryQueue, Outgoing, open_queue
from tkr_client.types import Chunk, Message, SentMessage, Session

log = logging.getLogger("tkr_client")

#: How many of its own client_ids the client remembers, to know its messages when history returns them.
OWN_IDS = 10_000
HISTORY_PAGE = 200


class ChatClient:
    """A ``/chat`` client that survives drops: queue, resume, order, dedupe."""

    def __init__(
        self,
        url: Urls,
        token: TokenSource,
        *,
        queue_path: str | Path | None = None,
        max_queue_entries: int = DEFAULT_MAX_ENTRIES,
        max_queue_bytes: int = DEFAULT_MAX_BYTES,
        backoff: Backoff | None = None,
        transports: list[str] | None = None,
        call_timeout: float = 30.0,
        gap_grace: float = 0.25,
        on_state: Callable[[ClientState], Any] | None = None,
    ) -> None:
        #: Every node's URL; ``url`` is the first (the one named in messages).
        self.urls = url_list(url)
        self.url = self.urls[0]
        self.backoff = backoff or Backoff()
        self.call_timeout = call_timeout
        self.gap_grace = gap_grace
        self._hub = EventHub()
        if on_state is not None:
            self._hub.on("state", on_state)
        self._link = Link(self.urls, "/chat", token, backoff=self.backoff, on_connected=self._resume, on_state=self._link_changed,
                          transports=transports, call_timeout=call_timeout)
        for event, name in (("message", "message"), ("message:chunk", "chunk"), ("presence", "presence"), ("receipt", "receipt"),
                            ("agent:status", "agent_status"), ("error", "error")):
            self._link.on(event, self._receiver(name))
        self._queue_options = (queue_path, max_queue_entries, max_queue_bytes)
        self._queue = open_queue(queue_path, max_queue_entries, max_queue_bytes)
        self._queue_open = True
        self._outbox = Outbox(self._queue, self._send_now, self.backoff, on_acked=self._acked, on_refused=self._refused,
                              on_change=self._queue_changed)
        self._own: OrderedDict[str, None] = OrderedDict((entry.client_id, None) for entry in self._queue.entries())
        self._feeds: dict[str, Feed] = {}
        self._streams = StreamTracker()
        self._inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None
        self._gap_timers: dict[str, asyncio.Task[None]] = {}
        self._rejoins: dict[str, asyncio.Task[None]] = {}
        self._last_change = StateChange("closed")
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        """``connecting``, ``connected``, ``reconnecting`` or ``closed``."""
        return self._link.state

    @property
    def queued(self) -> int:
        """Sends not yet acked by the host."""
        return len(self._queue)

    async def connect(self, wait: bool = True, timeout: float | None = None) -> None:
        """Connect, and keep reconnecting until :meth:`close`.

        With ``wait``, return once connected: a host that is down is tried again
        (with backoff) until ``timeout`` (``client.timeout``; default: no limit),
        and a refused credential raises :class:`~tkr_client.AuthError`.
        """
        self._closed = False
        if not self._queue_open:  # closed by close(): a file queue is read again from disk
            self._queue = open_queue(*self._queue_options)
            self._queue_open = True
            self._outbox.use(self._queue)
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="tkr-chat-dispatch")
        self._outbox.start()
        try:
            await asyncio.wait_for(self._link.start(wait=wait), timeout)
        except (TkrError, TimeoutError) as failure:
            # Stopped, not closed: the queue stays usable for another connect().
            await self._link.close()
            await self._outbox.stop()
            if isinstance(failure, TimeoutError):
                raise client_error("timeout", f"Could not connect to {self.url} within {timeout} s.",
                                   "Check the URL and that the host runs.") from None
            raise

    async def close(self) -> None:
        """Disconnect. Sends still queued fail with ``client.closed`` (with a file
        queue they stay on disk and go out on the next connect)."""
        self._closed = True
        await self._link.close()
        await self._outbox.stop()
        for task in [*self._gap_timers.values(), *self._rejoins.values()]:
            task.cancel()
        if self._dispatcher is not None:
            self._inbox.put_nowait(("closed",))
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        # The in-memory queue forgets sends whose callers are told they failed: sent
        # on a later connect, they would double a send the caller retried.
        self._outbox.fail_waiters(client_error("closed", "The client closed before the host acked this send.",
                                               "With queue_path set, it is sent on the next connect."),
                                  forget=isinstance(self._queue, MemoryQueue))
        self._queue.close()
        self._queue_open = False
        self._hub.close()

    async def __aenter__(self) -> ChatClient:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # --- events -------------------------------------------------------------------------

    def on(self, name: str, handler: Handler | None = None) -> Any:
        """``client.on("message", handler)``, or as a decorator ``@client.on("message")``."""
        if handler is not None:
            self._hub.on(name, handler)
            return handler

        def register(function: Handler) -> Handler:
            self._hub.on(name, function)
            return function

        return register

    def events(self, *names: str, max_buffered: int = DEFAULT_MAX_BUFFERED) -> EventStream:
        """``async for event in client.events("message", "chunk")``: every event (or those
        named) from now until the client closes, or the iterator is closed or dropped."""
        return self._hub.iterate(frozenset(names) if names else None, max_buffered)

    def __aiter__(self) -> EventStream:
        return self.events()

    # --- requests -----------------------------------------------------------------------

    async def request(self, event: str, data: dict[str, Any], *, retry: bool = True) -> dict[str, Any]:
        """Emit ``event`` on ``/chat`` and return the ack's fields. Waits while the
        connection is down; with ``retry`` (reads), a drop mid-call tries again."""
        if self._closed:
            raise client_error("closed", "The client is closed.", "Call connect() first.")
        while True:
            await self._connected(event)
            try:
                return await self._link.call(event, data)
            except TkrError as error:
                if not (retry and error.code == "client.disconnected"):
                    raise

    async def _connected(self, event: str) -> None:
        """Wait (up to ``call_timeout``) until connected, before sending ``event``."""
        if self._closed:
            raise client_error("closed", "The client is closed.", "Call connect() first.")
        try:
            await asyncio.wait_for(self._link.wait_connected(), self.call_timeout)
        except TimeoutError:
            raise client_error("timeout", f"Not connected within {self.call_timeout:.0f} s, so {event} was not sent.",
                               "Check that the host runs; the client keeps trying to connect.") from None

    async def create_session(self, title: str = "", agents: list[str] | None = None,
                             metadata: dict[str, Any] | None = None) -> Session:
        """A new session with this principal and ``agents`` as members; the client follows it."""
        body: dict[str, Any] = {"title": title, "agents": list(agents or [])}
        if metadata is not None:
            body["metadata"] = metadata
        session = cast(Session, (await self.request("session:create", body, retry=False))["session"])
        # The host put this socket in the session's room: follow it from its first seq.
        self._feeds.setdefault(session["id"], Feed(session["id"]))
        self._inbox.put_nowait(("start", session["id"], session.get("last_seq", 0)))
        return session

    async def list_sessions(self) -> list[Session]:
        return cast(list[Session], (await self.request("session:list", {}))["sessions"])

    async def join(self, session_id: str, since_seq: int | None = None) -> dict[str, Any]:
        """Follow a session. Returns ``{session, messages, streams, agents}``: the messages
        after ``since_seq`` (all of them: a truncated answer is followed), or the latest
        ones. Later messages arrive as ``message`` events, in seq order."""
        new = session_id not in self._feeds
        self._feeds.setdefault(session_id, Feed(session_id))
        try:
            await self._connected("session:join")
            ack, messages = await self._join(session_id, since_seq)
        except BaseException:
            if new:
                self._feeds.pop(session_id, None)  # a refused join follows nothing
            raise
        last = messages[-1]["seq"] if messages else (since_seq or 0)
        self._inbox.put_nowait(("start", session_id, last))
        self._inbox.put_nowait(("streams", session_id, ack.get("streams") or [], False))
        return {"session": ack["session"], "messages": messages, "streams": ack.get("streams") or [], "agents": ack.get("agents") or []}

    async def _join(self, session_id: str, since_seq: int | None) -> tuple[dict[str, Any], list[Message]]:
        """``session:join``, again with the last seq while the answer is truncated."""
        feed = self._feeds.get(session_id)
        if feed is not None:
            feed.joining = True
        messages: list[Message] = []
        try:
            while True:
                body: dict[str, Any] = {"session_id": session_id}
                if since_seq is not None:
                    body["since_seq"] = since_seq
                ack = await self._link.call("session:join", body)
                page = cast(list[Message], ack.get("messages") or [])
                messages.extend(page)
                if not ack.get("truncated") or not page:
                    return ack, messages
                since_seq = page[-1]["seq"]
        except BaseException:
            if feed is not None:
                feed.joining, feed.early_chunks = False, []
            raise

    async def leave(self, session_id: str) -> None:
        """Stop following a session (the principal stays a member)."""
        self._feeds.pop(session_id, None)
        await self.request("session:leave", {"session_id": session_id})

    async def invite(self, session_id: str, member_id: str, kind: str = "user") -> Session:
        """Add a member (only the session's creator may)."""
        ack = await self.request("session:invite", {"session_id": session_id, "member": {"id": member_id, "kind": kind}}, retry=False)
        return cast(Session, ack["session"])

    async def history(self, session_id: str, before_seq: int | None = None, limit: int = 50) -> list[Message]:
        """The ``limit`` messages before ``before_seq`` (or the latest), oldest first."""
        body: dict[str, Any] = {"session_id": session_id, "limit": limit}
        if before_seq is not None:
            body["before_seq"] = before_seq
        return cast(list[Message], (await self.request("message:history", body))["messages"])

    async def receipt(self, session_id: str, seq: int, status: str = "read") -> None:
        """Tell the sender its message was ``delivered`` or ``read``."""
        await self.request("message:receipt", {"session_id": session_id, "seq": seq, "status": status})

    async def stop_stream(self, session_id: str, message_id: str) -> SentMessage | None:
        """Stop an agent's reply being streamed; returns the stored (``stopped``) message, if any text arrived."""
        ack = await self.request("stream:stop", {"session_id": session_id, "message_id": message_id}, retry=False)
        return cast(SentMessage | None, ack.get("message"))

    # --- sending ------------------------------------------------------------------------

    async def send(self, session_id: str, type: str, payload: dict[str, Any], *, to: str | None = None,
                   in_reply_to: str | None = None, client_id: str | None = None) -> SentMessage:
        """Queue a message and wait for the host's ack; return its ``{id, seq, ts}``.

        The message is queued at once (a full queue raises ``QueueFullError``) with
        its ``client_id``, and stays queued across drops. A refusal for good
        (validation, permission) raises its TkrError and takes it out of the queue.
        """
        if self._closed:
            raise client_error("closed", "The client is closed.", "Call connect() first.")
        if self._link.fatal is not None:
            raise self._link.fatal  # reconnecting gave up: nothing would send it
        entry = Outgoing(client_id or new_client_id(), session_id, type, payload, to, in_reply_to)
        future = self._outbox.enqueue(entry)
        self._own[entry.client_id] = None
        while len(self._own) > OWN_IDS:
            self._own.popitem(last=False)
        # Shielded: the future may be shared by callers that reused the client_id,
        # and one caller's cancellation must not cancel it for the others.
        return cast(SentMessage, await asyncio.shield(future))

    async def send_text(self, session_id: str, text: str, *, to: str | None = None, in_reply_to: str | None = None,
                        format: str | None = None) -> SentMessage:
        """Send a text message; ``to`` names an agent of the session."""
        payload: dict[str, Any] = {"text": text}
        if format is not None:
            payload["format"] = format
        return await self.send(session_id, "text", payload, to=to, in_reply_to=in_reply_to)

    async def _send_now(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._link.call("message:send", body)

    def _acked(self, entry: Outgoing, ack: dict[str, Any]) -> None:
        message = ack.get("message")
        if isinstance(message, dict) and isinstance(message.get("seq"), int):
            self._inbox.put_nowait(("held", entry.session_id, message["seq"]))

    async def _refused(self, entry: Outgoing, error: TkrError) -> None:
        await self._hub.emit("error", error)

    # --- connection -------------------------------------------------------------------

    def _link_changed(self, change: StateChange) -> None:
        self._last_change = change
        if change.state != "connected":
            self._outbox.pause()
        self._inbox.put_nowait(("state", self._client_state()))
        if change.state == "closed" and change.error is not None:
            # Reconnecting gave up: no waiting send can go out any more.
            self._outbox.fail_waiters(change.error, forget=isinstance(self._queue, MemoryQueue))
            self._inbox.put_nowait(("gave_up", change.error))  # reported as an `error` event too

    def _queue_changed(self) -> None:
        self._inbox.put_nowait(("state", self._client_state()))

    def _client_state(self) -> ClientState:
        change = self._last_change
        return ClientState(change.state, len(self._queue), change.attempt, change.delay, change.error)

    async def _resume(self) -> None:
        """After every (re)connect: join each followed session from its last seq, then drain the queue."""
        for session_id, feed in list(self._feeds.items()):
            try:
                ack, messages = await self._join(session_id, feed.last)
            except TkrError as error:
                if error.category not in ("permission", "not_found"):
                    raise
                self._feeds.pop(session_id, None)  # removed from it: stop following
                await self._hub.emit("error", error)
                continue
            if feed.last is None:
                self._inbox.put_nowait(("start", session_id, messages[-1]["seq"] if messages else 0))
            else:
                self._inbox.put_nowait(("batch", session_id, messages))
            self._inbox.put_nowait(("streams", session_id, ack.get("streams") or [], True))
            for status in ack.get("agents") or []:
                self._inbox.put_nowait(("agent_status", {"session_id": session_id, "agent": {"id": status.get("id"), "kind": "agent"},
                                                         "state": status.get("state"), "detail": status.get("detail"),
                                                         "ts": status.get("ts")}))
        self._outbox.ready()

    def _receiver(self, name: str) -> Callable[[Any], Any]:
        async def receive(data: Any = None) -> None:
            # No await before the put: python-socketio runs each event in a task of
            # its own, and the inbox keeps them in the order they arrived.
            self._inbox.put_nowait((name, data))

        return receive

    # --- the dispatcher: every state change of the feeds happens here, in order -----------

    async def _dispatch(self) -> None:
        while True:
            item = await self._inbox.get()
            kind = item[0]
            try:
                if kind == "closed":
                    return
                await self._handle(kind, item)
            except Exception:
                log.exception("delivering %s failed", kind)

    async def _handle(self, kind: str, item: tuple[Any, ...]) -> None:
        if kind == "message":
            await self._offer(cast(Message, item[1]))
        elif kind == "batch":
            for message in item[2]:
                await self._offer(message)
        elif kind == "held":
            feed = self._feeds.get(item[1])
            if feed is not None:
                await self._deliver(feed, feed.hold(item[2]))
        elif kind == "start":
            feed = self._feeds.get(item[1])
            if feed is not None:
                await self._deliver(feed, feed.start_at(item[2]))
        elif kind == "streams":
            await self._pick_up(item[1], item[2], item[3])
        elif kind == "chunk":
            await self._chunk(cast(Chunk, item[1]))
        elif kind == "gapcheck":
            await self._fill_gap(item[1])
        elif kind == "error":
            error = TkrError.from_wire(item[1])
            if isinstance(item[1], dict) and isinstance(item[1].get("session_id"), str):
                error.session_id = item[1]["session_id"]
            await self._hub.emit("error", error)
        elif kind == "gave_up":
            await self._hub.emit("error", item[1])
        elif kind in ("presence", "receipt", "agent_status", "state"):
            await self._hub.emit(kind, item[1])

    async def _offer(self, message: Message) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("seq"), int):
            return
        feed = self._feeds.get(message["session_id"])
        own = message.get("client_id") in self._own
        if feed is None:
            if not own:
                await self._emit_message(message)
            return
        await self._deliver(feed, feed.offer(message, deliver=not own))

    async def _deliver(self, feed: Feed, ready: list[Message]) -> None:
        for message in ready:
            await self._emit_message(message)
        gap = feed.gap()
        if gap is not None and feed.session_id not in self._gap_timers:
            self._gap_timers[feed.session_id] = asyncio.create_task(self._gap_timer(feed.session_id))

    async def _emit_message(self, message: Message) -> None:
        self._streams.message_done(self._feeds.get(message["session_id"]), message["id"])
        await self._hub.emit("message", message)

    async def _gap_timer(self, session_id: str) -> None:
        # A gap is often only an ack or a broadcast still on its way: wait a moment.
        try:
            await asyncio.sleep(self.gap_grace)
            self._inbox.put_nowait(("gapcheck", session_id))
        finally:
            self._gap_timers.pop(session_id, None)

    async def _fill_gap(self, session_id: str) -> None:
        feed = self._feeds.get(session_id)
        gap = feed.gap() if feed is not None else None
        if feed is None or gap is None:
            return
        first, last = gap
        before = min(last + 1, first + HISTORY_PAGE)
        try:
            ack = await self._link.call("message:history", {"session_id": session_id, "before_seq": before,
                                                             "limit": min(HISTORY_PAGE, before - first)})
        except TkrError as error:
            log.info("could not fill the gap %d-%d in %s (%s); the next resume will", first, last, session_id, error.code)
            return
        for message in ack.get("messages") or []:
            if isinstance(message, dict) and first <= message.get("seq", 0) <= last:
                await self._deliver(feed, feed.offer(cast(Message, message), deliver=message.get("client_id") not in self._own))

    async def _chunk(self, chunk: Chunk) -> None:
        if not isinstance(chunk, dict) or not isinstance(chunk.get("index"), int):
            return
        feed = self._feeds.get(chunk.get("session_id", ""))
        ready, rejoin = self._streams.live(feed, chunk)
        if rejoin and feed is not None:
            self._rejoin(feed.session_id)
        for fresh in ready:
            await self._hub.emit("chunk", fresh)

    def _rejoin(self, session_id: str) -> None:
        if session_id not in self._rejoins:
            self._rejoins[session_id] = asyncio.create_task(self._rejoin_session(session_id), name="tkr-chat-rejoin")

    async def _rejoin_session(self, session_id: str) -> None:
        """Join a followed session again, live, to pick a stream up from its ``streams``."""
        try:
            feed = self._feeds.get(session_id)
            if feed is None:
                return
            try:
                ack, messages = await self._join(session_id, feed.last)
            except TkrError as error:
                # The buffered chunks are dropped; the next resume's join has their text.
                log.info("could not join %s again to pick a stream up (%s)", session_id, error.code)
                return
            self._inbox.put_nowait(("batch", session_id, messages))
            self._inbox.put_nowait(("streams", session_id, ack.get("streams") or [], True))
        finally:
            self._rejoins.pop(session_id, None)

    async def _pick_up(self, session_id: str, streams: list[dict[str, Any]], deliver: bool) -> None:
        for chunk in self._streams.joined(self._feeds.get(session_id), session_id, streams, deliver):
            await self._hub.emit("chunk", chunk)
