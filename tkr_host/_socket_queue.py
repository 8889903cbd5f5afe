"""The outgoing packet queue of each Engine.IO socket: an ``asyncio.Queue`` without its idle weight.

python-engineio gives every socket a queue (``AsyncServer.create_queue``), which
its writer drains: ``asyncio.wait_for(queue.get(), ping_interval + ping_timeout)``
on each wake-up, ``get_nowait`` for the rest, ``task_done`` after each, ``join``
when a socket closes with ``wait=True``, ``put`` / ``put_nowait`` from senders.
An ``asyncio.Queue`` holds four deques (its items, getters, putters, and its
``join`` event's waiters), 745 bytes each even when empty, and on Python 3.11
``wait_for`` wraps the coroutine ``get()`` in a Task, which an idle socket keeps
for as long as it waits: together about 4 KiB per idle socket
(docs/performance.md, "Memory per idle WebSocket").

:class:`SocketQueue` offers the same methods, unbounded as engine.io's queues
are. Its items live in a deque made on demand and dropped when it empties, and
``get()`` returns a plain Future rather than a coroutine, so ``wait_for`` makes
no Task around it. A waiting getter is handed the next item directly; one that
was cancelled (``wait_for``'s timeout) is skipped, so no item is lost to it. The
only loss is the one ``asyncio.Queue`` has too: a task cancelled after its item
was handed over (python-engineio cancels its writer only when the socket is gone).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import engineio


class SocketQueue:
    """An unbounded FIFO with ``asyncio.Queue``'s methods, for python-engineio's sockets."""

    __slots__ = ("_getters", "_items", "_joiners", "_unfinished")

    def __init__(self) -> None:
        self._items: collections.deque[Any] | None = None
        #: Futures of ``get()`` calls waiting for an item, oldest first: a list, as
        #: there is one (the writer) or none, and an idle socket always has its writer waiting.
        self._getters: list[asyncio.Future[Any]] | None = None
        #: Items put and not yet marked ``task_done`` (``join`` waits for 0).
        self._unfinished = 0
        self._joiners: list[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return False

    def put_nowait(self, item: Any) -> None:
        self._unfinished += 1
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(item)
                if not getters:
                    self._getters = None
                return
        self._getters = None
        if self._items is None:
            self._items = collections.deque()
        self._items.append(item)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        return item

    def get(self) -> asyncio.Future[Any]:
        """A Future of the next item (awaitable as ``Queue.get()`` is)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._items:
            future.set_result(self.get_nowait())
            return future
        # Getters that gave up (wait_for's timeout cancels them) are dropped here
        # too, not only at the next put, so that a queue nobody puts to does not keep them.
        self._getters = [getter for getter in self._getters or () if not getter.done()]
        self._getters.append(future)
        return future

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners:
            for joiner in self._joiners:
                if not joiner.done():
                    joiner.set_result(None)
            self._joiners = None

    async def join(self) -> None:
        if self._unfinished == 0:
            return
        joiner: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._joiners is None:
            self._joiners = []
        self._joiners.append(joiner)
        await joiner


class EngineIOServer(engineio.AsyncServer):  # type: ignore[misc]  # engineio has no stubs
    """python-engineio's server, whose sockets queue their packets in a :class:`SocketQueue`
    (the transport's ``_engineio_server_class``)."""

    def create_queue(self, *args: Any, **kwargs: Any) -> Any:
        # Each socket's queue is made with no arguments (base_socket.py); anything else keeps asyncio's.
        return SocketQueue() if not args and not kwargs else super().create_queue(*args, **kwargs)
