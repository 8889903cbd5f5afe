"""Draining the offline queue: one send at a time, in the order they were queued.

A send is written to the queue first, then the drain loop sends the oldest
entry and waits for its ack before the next, so the host stores messages in
the order they were sent. A recoverable refusal (``rate_limit.*``,
``store.*``, a dropped connection) keeps the entry at the head and tries it
again after ``retry_after`` (or a backoff delay). A refusal for good
(validation, permission) takes it out of the queue and fails its caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from tkr_client.connection import Backoff
from tkr_client.errors import TkrError
from tkr_client.queue import OfflineQueue, Outgoing

log = logging.getLogger("tkr_client")

#: Refusals that say nothing about the message: it is sent again, same client_id.
RETRIED_CODES = frozenset({"client.disconnected", "client.timeout", "protocol.not_connected", "protocol.shutting_down"})

SendCall = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def new_client_id() -> str:
    """A fresh idempotency key (the protocol allows 1-64 characters)."""
    return f"c-{uuid.uuid4().hex}"


class Outbox:
    """The queue and the loop that empties it while the connection is ready."""

    def __init__(
        self,
        queue: OfflineQueue,
        send: SendCall,
        backoff: Backoff,
        *,
        on_acked: Callable[[Outgoing, dict[str, Any]], None] = lambda entry, ack: None,
        on_refused: Callable[[Outgoing, TkrError], Awaitable[None]] | None = None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.queue = queue
        self._send = send
        self.backoff = backoff
        self._on_acked = on_acked
        self._on_refused = on_refused
        self._on_change = on_change
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._empty = asyncio.Event()
        if not len(queue):
            self._empty.set()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self.queue)

    # --- the caller's side -----------------------------------------------------------

    def enqueue(self, entry: Outgoing) -> asyncio.Future[dict[str, Any]]:
        """Queue ``entry`` now (raising ``QueueFullError`` if it does not fit); the
        future resolves with the ack's message ``{id, seq, ts}``.

        A ``client_id`` that is already queued is the same send: it is not queued
        (or counted) again, and every caller gets the one answer.
        """
        waiting = self._waiters.get(entry.client_id)
        if waiting is not None and not waiting.done():
            return waiting
        if entry.client_id not in self.queue:
            self.queue.put(entry)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[entry.client_id] = future
        self._empty.clear()
        self._wake.set()
        self._on_change()
        return future

    async def wait_empty(self) -> None:
        """Return once every queued send has been acked or refused."""
        await self._empty.wait()

    def pending_ids(self) -> set[str]:
        return {entry.client_id for entry in self.queue.entries()}

    # --- the drain loop --------------------------------------------------------------

    def use(self, queue: OfflineQueue) -> None:
        """Drain ``queue`` from now on (the same queue, opened again)."""
        self.queue = queue
        if len(queue):
            self._empty.clear()
        else:
            self._empty.set()
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="tkr-outbox")

    def ready(self) -> None:
        """The connection is up and resumed: sending may go on."""
        self._ready.set()
        self._wake.set()

    def pause(self) -> None:
        """The connection is down: hold everything in the queue."""
        self._ready.clear()

    async def stop(self) -> None:
        """Stop draining; what is left stays queued (and, with a file queue, on disk)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def fail_waiters(self, error: TkrError, *, forget: bool = False) -> None:
        """Fail every caller still waiting (the client closed, or reconnecting gave up).

        With ``forget`` their entries leave the queue too: an in-memory entry whose
        caller was told it failed must not go out on a later connect, as a
        duplicate of the send the caller may have retried. A file queue keeps them
        (documented: they go out on the next connect, with the same client_id).
        """
        for client_id, future in self._waiters.items():
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: a caller that was cancelled is not waiting any more
            if forget:
                self.queue.remove(client_id)
        self._waiters.clear()
        if forget:
            if not len(self.queue):
                self._empty.set()
            self._on_change()

    async def _drain(self) -> None:
        retries = 0
        while True:
            await self._ready.wait()
            entry = self.queue.head()
            if entry is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                ack = await self._send(entry.request())
            except TkrError as error:
                if error.code in RETRIED_CODES or (error.recoverable and error.category != "validation"):
                    delay = self.backoff.delay(retries, error.retry_after)
                    retries += 1
                    if error.code != "client.disconnected":
                        log.info("send %s refused for now (%s); again in %.2f s", entry.client_id, error.code, delay)
                        await asyncio.sleep(delay)
                    else:
                        await asyncio.sleep(min(delay, 0.05))  # the link pauses the outbox when it notices the drop
                    continue
                self._finish(entry, error=error)
                if self._on_refused is not None:
                    try:
                        await self._on_refused(entry, error)
                    except Exception:
                        log.exception("an error handler failed")
                retries = 0
                continue
            retries = 0
            message = ack.get("message")
            if not isinstance(message, dict):
                message = {}
            self._on_acked(entry, ack)
            self._finish(entry, result={key: message.get(key) for key in ("id", "seq", "ts")})

    def _finish(self, entry: Outgoing, *, result: dict[str, Any] | None = None, error: TkrError | None = None) -> None:
        self.queue.remove(entry.client_id)
        if not len(self.queue):
            self._empty.set()
        future = self._waiters.pop(entry.client_id, None)
        if future is not None and not future.done():
            if error is not None:
                future.set_exception(error)
                future.exception()  # retrieved: a cancelled caller is told by the `error` event instead
            else:
                future.set_result(result or {})
        self._on_change()
