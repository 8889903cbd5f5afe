"""Handing events to the application: handlers (``on``) and async iterators."""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from tkr_client.errors import client_error

log = logging.getLogger("tkr_client")

#: The events a ChatClient delivers.
EVENT_NAMES = frozenset({"message", "chunk", "presence", "receipt", "agent_status", "error", "state"})

Handler = Callable[[Any], Any]


@dataclass(frozen=True)
class Event:
    """One delivered event: ``name`` is one of :data:`EVENT_NAMES`."""

    name: str
    data: Any

    @property
    def session_id(self) -> str | None:
        data = self.data
        if isinstance(data, dict):
            value = data.get("session_id")
            return value if isinstance(value, str) else None
        value = getattr(data, "session_id", None)
        return value if isinstance(value, str) else None


_CLOSED = object()
#: Events an iterator holds that the application has not taken yet.
DEFAULT_MAX_BUFFERED = 10_000


class EventHub:
    """Handlers per event name, and the open iterators.

    The hub holds its iterators weakly: an ``async for`` left with ``break`` (which
    does not call ``aclose``) drops the last reference, and the iterator stops
    receiving and holding events.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {name: [] for name in EVENT_NAMES}
        self._iterators: weakref.WeakSet[EventStream] = weakref.WeakSet()

    def on(self, name: str, handler: Handler) -> None:
        if name not in EVENT_NAMES:
            raise ValueError(f"unknown event {name!r}; the events are {sorted(EVENT_NAMES)}")
        self._handlers[name].append(handler)

    def off(self, name: str, handler: Handler) -> None:
        if handler in self._handlers.get(name, []):
            self._handlers[name].remove(handler)

    async def emit(self, name: str, data: Any) -> None:
        """Run the handlers one after the other (so they see events in order)."""
        for handler in list(self._handlers[name]):
            try:
                result = handler(data)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("the %s handler %r failed", name, handler)
        if self._iterators:
            event = Event(name, data)
            for stream in list(self._iterators):
                stream._offer(event)

    @property
    def iterators(self) -> int:
        """Iterators still receiving events."""
        return len(self._iterators)

    def iterate(self, names: frozenset[str] | None = None, max_buffered: int = DEFAULT_MAX_BUFFERED) -> EventStream:
        """Every event from now on (the call, not the first ``anext``), until the client closes."""
        return EventStream(self, names, max_buffered)

    def _subscribe(self, stream: EventStream) -> None:
        self._iterators.add(stream)

    def _unsubscribe(self, stream: EventStream) -> None:
        self._iterators.discard(stream)

    def close(self) -> None:
        for stream in list(self._iterators):
            stream._offer(_CLOSED)
            self._unsubscribe(stream)


class EventStream:
    """An async iterator over a client's events; it buffers from the moment it is made.

    Only the events named are kept, at most ``max_buffered`` of them: an
    application that stops reading gets ``client.overflow`` from the next
    ``anext`` (after what was buffered) instead of a client that grows without
    bound. ``await stream.aclose()`` or ``async with client.events() as stream``
    stops it; so does dropping it (``break`` out of ``async for``).
    """

    def __init__(self, hub: EventHub, names: frozenset[str] | None, max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        self._hub = hub
        self._names = names
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max_buffered + 1)  # +1: room for the end marker
        self._max_buffered = max_buffered
        self._done = False
        self._overflowed = False
        hub._subscribe(self)

    def _offer(self, item: Any) -> None:
        if self._done:
            return
        if item is not _CLOSED and self._names is not None and item.name not in self._names:
            return
        if item is not _CLOSED and self._queue.qsize() >= self._max_buffered:
            self._overflowed = True
            item = _CLOSED
        if item is _CLOSED:
            self._hub._unsubscribe(self)
        self._queue.put_nowait(item)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if not self._done:
            item = await self._queue.get()
            if item is not _CLOSED:
                return item  # type: ignore[no-any-return]
            self.close()
            if self._overflowed:
                raise client_error("overflow", f"More than {self._max_buffered} events waited in this iterator.",
                                   "Read events faster, pass a larger max_buffered, or use on() handlers.")
        raise StopAsyncIteration

    def close(self) -> None:
        """Stop receiving events."""
        self._done = True
        self._hub._unsubscribe(self)

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
