"""Per-session ordering of emits on one node."""

from __future__ import annotations

import asyncio
from types import TracebackType


class SessionSequencer:
    """One lock per session, held from ``append`` to ``emit``.

    Events of one socket run concurrently, and so do different senders; holding
    the session's lock while storing and emitting makes ``message`` events leave
    this node in ``seq`` order. Locks are dropped once nobody waits on them.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def hold(self, session_id: str) -> _Held:
        """``async with sequencer.hold(session_id):`` holds the session's lock."""
        return _Held(self, session_id)

    def _enter(self, session_id: str) -> asyncio.Lock:
        found = self._locks.get(session_id)
        lock, users = found if found is not None else (asyncio.Lock(), 0)
        self._locks[session_id] = (lock, users + 1)
        return lock

    def _leave(self, session_id: str) -> None:
        lock, users = self._locks[session_id]
        if users <= 1:
            del self._locks[session_id]
        else:
            self._locks[session_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class _Held:
    """The context manager of :meth:`SessionSequencer.hold`: a class, not a
    generator, because every message sent enters one (a generator-based
    manager costs a generator and two frames more)."""

    __slots__ = ("_lock", "_sequencer", "_session_id")

    def __init__(self, sequencer: SessionSequencer, session_id: str) -> None:
        self._sequencer = sequencer
        self._session_id = session_id
        self._lock: asyncio.Lock | None = None

    async def __aenter__(self) -> None:
        lock = self._sequencer._enter(self._session_id)
        try:
            await lock.acquire()
        except BaseException:
            self._sequencer._leave(self._session_id)  # cancelled while waiting: not a user any more
            raise
        self._lock = lock

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()
        self._sequencer._leave(self._session_id)
