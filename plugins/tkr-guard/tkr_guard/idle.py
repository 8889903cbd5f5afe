"""Stale connections: close sockets that sent no event for ``idle_timeout_s``.

The host stamps each socket's ``last_event_at`` (``time.monotonic()``) on connect
and on every application event, and ``host.list_connections()`` hands the sweep
read-only snapshots of them; Engine.IO pings do not count, so a socket that
only keeps its transport alive is idle. Each stale socket is first told why
with an ``error`` event (``protocol.idle_timeout``), then its transport is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from tkr_host import ConnectionView, HostAPI, HostError

log = logging.getLogger(__name__)

ConnectionKey = tuple[str, str]


def stale(connections: Iterable[ConnectionView], now: float, timeout_s: float) -> list[ConnectionView]:
    """The connections whose last event is ``timeout_s`` or more before ``now``."""
    return [conn for conn in connections if now - conn.last_event_at >= timeout_s]


def sweep_interval(timeout_s: float) -> float:
    """How often to look: a quarter of the timeout, between 50 ms and 5 s."""
    return min(5.0, max(0.05, timeout_s / 4))


class IdleReaper:
    """The background task that closes idle sockets on this node."""

    def __init__(self, host: HostAPI, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.timeout_s = timeout_s
        self.clock = clock
        #: Sockets told to go that have not left yet: never told twice.
        self.closing: set[ConnectionKey] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self.host.spawn(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def forget(self, sid: str, namespace: str) -> None:
        """The socket left: nothing more to remember about it."""
        self.closing.discard((namespace, sid))

    async def _run(self) -> None:
        interval = sweep_interval(self.timeout_s)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("guard: the idle sweep failed")

    def error(self) -> HostError:
        return HostError("protocol.idle_timeout", message=f"No event was sent for {self.timeout_s:g} s.",
                         hint="Reconnect when you need the connection again.")

    async def sweep(self) -> int:
        """Close every stale socket once; return how many were told to go."""
        connections = self.host.list_connections()
        self.closing &= {(conn.namespace, conn.sid) for conn in connections}
        due = [conn for conn in stale(connections, self.clock(), self.timeout_s)
               if (conn.namespace, conn.sid) not in self.closing]
        if not due:
            return 0
        self.closing.update((conn.namespace, conn.sid) for conn in due)
        await asyncio.gather(*(self.host.disconnect_client(conn.sid, conn.namespace, self.error()) for conn in due))
        log.info("guard: closed %d idle sockets", len(due))
        return len(due)
