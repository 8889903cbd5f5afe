"""Handing events to the application: handlers (``on``) and async iterators."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


class EventHub:
    """Handlers per event name, and the queues of open iterators."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {name: [] for name in EVENT_NAMES}
        self._iterators: list[asyncio.Queue[Any]] = []

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
            for queue in self._iterators:
                queue.put_nowait(event)

    def iterate(self, names: frozenset[str] | None = None) -> EventStream:
        """Every event from now on (the call, not the first ``anext``), until the client closes."""
        return EventStream(self, names)

    def _subscribe(self, queue: asyncio.Queue[Any]) -> None:
        self._iterators.append(queue)

    def _unsubscribe(self, queue: asyncio.Queue[Any]) -> None:
        if queue in self._iterators:
            self._iterators.remove(queue)

    def close(self) -> None:
        for queue in self._iterators:
            queue.put_nowait(_CLOSED)


class EventStream:
    """An async iterator over a client's events; it buffers from the moment it is made."""

    def __init__(self, hub: EventHub, names: frozenset[str] | None) -> None:
        self._hub = hub
        self._names = names
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._done = False
        hub._subscribe(self._queue)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._done:
            item = await self._queue.get()
            if item is _CLOSED:
                self.close()
                break
            if self._names is None or item.name in self._names:
                return item  # type: ignore[no-any-return]
        raise StopAsyncIteration

    def close(self) -> None:
        """Stop receiving events."""
        self._done = True
        self._hub._unsubscribe(self._queue)
