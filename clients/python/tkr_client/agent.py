"""``Agent``: an agent in a few lines.

    agent = Agent(url, token)

    @agent.on_message
    async def handle(message, reply):
        await reply.text("hello")

    agent.run()

The agent connects to ``/agents`` and runs a handler for each message addressed
to it, at most ``max_concurrency`` at once. It acks a message (``message:ack``)
only after its handler returned, and drops an id it has already handled
(remembered across restarts with ``state_path``), so at-least-once delivery
becomes exactly-once handling. On SIGTERM it stops taking messages and lets
running handlers finish, for up to ``shutdown_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from tkr_client.connection import Backoff, Link, State, StateChange, TokenSource, Urls
from tkr_client.errors import TkrError, client_error
from tkr_client.outbox import Outbox, new_client_id
from tkr_client.queue import HandledIds, MemoryQueue, Outgoing, open_queue
from tkr_client.replies import Reply, ReplyStream
from tkr_client.tasks import Task, TaskWatcher
from tkr_client.types import AgentState, Message, SentMessage

log = logging.getLogger("tkr_client")

MessageHandler = Callable[[Message, Reply], Awaitable[None]]
TaskHandler = Callable[[Task, Reply], Awaitable[None]]
HandlerT = TypeVar("HandlerT", bound=Callable[..., Awaitable[None]])


class Agent:
    """An agent: handlers for the messages addressed to it, and what they answer with."""

    def __init__(
        self,
        url: Urls | None = None,
        token: TokenSource | None = None,
        *,
        max_concurrency: int = 8,
        state_path: str | Path | None = None,
        queue_path: str | Path | None = None,
        shutdown_timeout: float = 30.0,
        backoff: Backoff | None = None,
        transports: list[str] | None = None,
        on_state: Callable[[StateChange], None] | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.url = url
        self.token = token
        self.max_concurrency = max_concurrency
        self.state_path = state_path
        self.queue_path = queue_path
        self.shutdown_timeout = shutdown_timeout
        self.backoff = backoff or Backoff()
        self.transports = transports
        self._on_state = on_state
        self._message_handler: MessageHandler | None = None
        self._task_handler: TaskHandler | None = None
        #: Streams this agent has open, by message id (a ``stream:stop`` names one).
        self.streams: dict[str, ReplyStream] = {}
        self._link: Link | None = None
        self._outbox: Outbox | None = None
        self._handled: HandledIds | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: TaskWatcher | None = None
        self._closed = asyncio.Event()
        self._gave_up = asyncio.Event()  # the link stopped for good (a refused credential)

    # --- registration ---------------------------------------------------------------

    def on_message(self, handler: HandlerT) -> HandlerT:
        """Decorator: ``async def handle(message, reply)`` for each message addressed to the agent."""
        self._message_handler = cast(MessageHandler, handler)
        return handler

    def on_task(self, handler: HandlerT) -> HandlerT:
        """Decorator: ``async def handle(task, reply)`` for each task assigned to the agent."""
        self._task_handler = cast(TaskHandler, handler)
        return handler

    def configure(self, url: Urls | None = None, token: TokenSource | None = None) -> None:
        """Set the URL and credential after construction (``tkr-agent run`` does)."""
        if url is not None:
            self.url = url
        if token is not None:
            self.token = token

    # --- state ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        """``connecting``, ``connected``, ``reconnecting`` or ``closed``, as for ChatClient."""
        return self._link.state if self._link is not None else "closed"

    @property
    def queued(self) -> int:
        """Answers sent but not yet acked by the host."""
        return len(self._outbox) if self._outbox is not None else 0

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, wait: bool = True) -> None:
        """Connect to ``/agents`` and start handling; with ``wait``, return once connected."""
        url = self.url or os.environ.get("TKR_URL")
        token = self.token or os.environ.get("TKR_TOKEN")
        if not url or not token:
            raise client_error("not_configured", "The agent needs a URL and a token.",
                               "Pass Agent(url, token), or set TKR_URL and TKR_TOKEN.")
        self._closed.clear()
        self._gave_up.clear()
        self._inbox = asyncio.Queue()  # nothing left over from an earlier run: the host delivers it again
        self._handled = HandledIds(self.state_path)
        self._slots = asyncio.Semaphore(self.max_concurrency)
        link = Link(url, "/agents", token, backoff=self.backoff, on_connected=self._resumed, on_state=self._state_changed,
                    transports=self.transports)
        link.on("message", self._received)
        link.on("stream:stop", self._stream_stopped)
        self._link = link
        self._outbox = Outbox(open_queue(self.queue_path), lambda body: link.call("message:send", body), self.backoff,
                              on_refused=self._refused)
        self._outbox.start()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="tkr-agent-dispatch")
        self._tasks = TaskWatcher(url, token, self.backoff, self.transports)
        try:
            await link.start(wait=wait)
        except BaseException:
            await self.close(timeout=0)
            raise

    async def close(self, timeout: float | None = None) -> None:
        """Stop taking messages, let running handlers finish (up to ``timeout``,
        default ``shutdown_timeout``), then disconnect. A handler still running
        is cancelled and its message not acked, so the host delivers it again."""
        if self._link is None:
            return
        timeout = self.shutdown_timeout if timeout is None else timeout
        # One deadline for the handlers and the answers they queued: SIGTERM must
        # not take the timeout twice (a supervisor's kill would come first).
        deadline = asyncio.get_running_loop().time() + timeout
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        running = list(self._running.values())
        if running:
            log.info("waiting up to %.0f s for %d running handler(s)", timeout, len(running))
            _, late = await asyncio.wait(running, timeout=timeout) if timeout > 0 else (set(), set(running))
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._outbox is not None:
            await self._drain_outbox(max(0.0, deadline - asyncio.get_running_loop().time()))
            await self._outbox.stop()
            self._outbox.fail_waiters(client_error("closed", "The agent closed before the host acked this send.",
                                                   "With queue_path set it is sent on the next start."))
            self._outbox.queue.close()
        if self._tasks is not None:
            await self._tasks.close()
        await self._link.close()
        if self._handled is not None:
            self._handled.close()
        self._link = None
        self._closed.set()

    async def _drain_outbox(self, timeout: float) -> None:
        """Give answers still queued a chance to reach the host before disconnecting."""
        if self._outbox is not None and self._link is not None and self._link.connected and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.wait_empty(), timeout)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def serve(self) -> None:
        """Start, run until SIGTERM or SIGINT, then shut down gracefully."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        await self.start(wait=False)
        log.info("agent running against %s", self.url or os.environ.get("TKR_URL"))
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._closed.wait()), asyncio.ensure_future(self._gave_up.wait())}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signum)
        fatal = self._link.fatal if self._link is not None else None
        await self.close()
        if fatal is not None:
            raise fatal

    def run(self) -> None:
        """``serve()`` in a fresh event loop: the blocking way to run an agent."""
        asyncio.run(self.serve())

    # --- sending ----------------------------------------------------------------------

    async def call(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Emit ``event`` on ``/agents`` and return the ack's fields (raises TkrError)."""
        if self._link is None:
            raise client_error("closed", "The agent is not started.", "Call start() or run() first.")
        return await self._link.call(event, data)

    async def send_entry(self, entry: Outgoing) -> SentMessage:
        if self._outbox is None:
            raise client_error("closed", "The agent is not started.", "Call start() or run() first.")
        if self._link is not None and self._link.fatal is not None:
            raise self._link.fatal  # reconnecting gave up: nothing would send it
        result = await asyncio.shield(self._outbox.enqueue(entry))  # shared by callers that reuse a client_id
        return cast(SentMessage, result)

    async def send(self, session_id: str, type: str, payload: dict[str, Any], *, to: str | None = None,
                   in_reply_to: str | None = None) -> SentMessage:
        """Send a message of any type to a session the agent belongs to."""
        return await self.send_entry(Outgoing(new_client_id(), session_id, type, payload, to, in_reply_to))

    async def send_text(self, session_id: str, text: str, *, to: str | None = None, in_reply_to: str | None = None) -> SentMessage:
        return await self.send(session_id, "text", {"text": text}, to=to, in_reply_to=in_reply_to)

    async def set_status(self, session_id: str, state: AgentState, detail: str | None = None) -> None:
        """``agent:status``. It is shown, not stored: while disconnected it is skipped."""
        body: dict[str, Any] = {"session_id": session_id, "state": state}
        if detail is not None:
            body["detail"] = detail
        try:
            await self.call("agent:status", body)
        except TkrError as error:
            if error.category != "client":
                raise
            log.debug("agent:status skipped: %s", error)

    async def contexts(self, session_id: str) -> list[dict[str, Any]]:
        """The session's live contexts visible to this agent (``context:list``)."""
        return list((await self.call("context:list", {"session_id": session_id}))["contexts"])

    @property
    def tasks(self) -> TaskWatcher:
        """Following tasks on ``/tasks`` (connected on first use)."""
        if self._tasks is None:
            raise client_error("closed", "The agent is not started.", "Call start() or run() first.")
        return self._tasks

    async def create_task(self, session_id: str, *, assignee: str, title: str, description: str | None = None,
                          task_id: str | None = None, reference_task_ids: list[str] | None = None) -> Task:
        """Hand a task to another agent of the session; returns it, to follow or change."""
        task = Task.new(self, session_id, assignee=assignee, title=title, description=description, task_id=task_id,
                        reference_task_ids=reference_task_ids)
        await task.create()
        return task

    # --- receiving ---------------------------------------------------------------------

    async def _resumed(self) -> None:
        if self._outbox is not None:
            self._outbox.ready()

    def _state_changed(self, change: StateChange) -> None:
        if change.state != "connected" and self._outbox is not None:
            self._outbox.pause()
        if change.state == "connected":
            log.info("connected to %s/agents", self.url)
        elif change.state == "closed" and change.error is not None:
            log.error("the agent stopped: %s", change.error)
            if self._outbox is not None:
                self._outbox.fail_waiters(change.error, forget=isinstance(self._outbox.queue, MemoryQueue))
            self._gave_up.set()
        elif change.delay is not None:
            log.info("%s: attempt %d in %.1f s (%s)", change.state, change.attempt, change.delay,
                     change.error.code if change.error else "connection lost")
        if self._on_state is not None:
            self._on_state(change)

    async def _received(self, data: Any) -> None:
        # No await before the put: python-socketio runs each event in a task of
        # its own, and the inbox keeps them in the order they arrived.
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            self._inbox.put_nowait(cast(Message, data))

    async def _stream_stopped(self, data: Any) -> None:
        if isinstance(data, dict):
            stream = self.streams.get(str(data.get("message_id")))
            if stream is not None:
                stream.stop(data.get("by") if isinstance(data.get("by"), str) else None)

    async def _refused(self, entry: Outgoing, error: TkrError) -> None:
        log.warning("the host refused a message to session %s: %s", entry.session_id, error)

    async def _dispatch(self) -> None:
        assert self._slots is not None and self._handled is not None
        while True:
            message = await self._inbox.get()
            if message["id"] in self._running:
                continue  # delivered again while its handler runs
            if message["id"] in self._handled:
                await self._ack(message)  # the first ack may have been lost
                continue
            await self._slots.acquire()
            task = asyncio.create_task(self._handle(message), name=f"tkr-handle-{message['id']}")
            self._running[message["id"]] = task

    async def _handle(self, message: Message) -> None:
        assert self._slots is not None and self._handled is not None
        acked = False
        try:
            reply = Reply(self, message)
            run: Awaitable[None] | None = None
            if message["type"] == "task" and self._task_handler is not None:
                run = self._task_handler(Task.from_message(self, message), reply)
            elif message["type"] != "context" and self._message_handler is not None:
                run = self._message_handler(message, reply)
            # A context is kept by the host (contexts() lists it): acked at once.
            if run is not None:
                try:
                    await run
                except TkrError as error:
                    if error.code in ("client.disconnected", "client.closed"):
                        log.warning("handler for %s lost the connection; it runs again on redelivery", message["id"])
                        return
                    log.exception("handler for message %s failed", message["id"])
                except Exception:
                    # Acked anyway: a message that always fails must not come back forever.
                    log.exception("handler for message %s failed", message["id"])
            self._handled.add(message["id"])
            acked = await self._ack(message)
        finally:
            self._running.pop(message["id"], None)
            self._slots.release()
            if not acked:
                log.debug("message %s not acked", message["id"])

    async def _ack(self, message: Message) -> bool:
        try:
            await self.call("message:ack", {"message_id": message["id"]})
            return True
        except TkrError as error:
            log.info("ack of %s failed (%s); it is acked when the host delivers it again", message["id"], error.code)
            return False
