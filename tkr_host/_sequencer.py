"""Per-session ordering of emits on one node."""

from __future__ import annotations

import asyncio
from types import TracebackType


class SessionSequencer:
    """Per session, the order of emits and a lock.

    Events of one socket run concurrently, and so do different senders. Each
    message takes a :class:`Turn` as its append is queued and emits when the
    turns before it are finished, so ``message`` events leave this node in
    ``seq`` order while the appends share a commit. The lock is for messages
    whose checks and side effects must see the session's earlier messages
    (held from the checks to the side effects). Both are dropped once unused.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        #: The last turn taken in each session: the next one waits for it.
        self._tails: dict[str, asyncio.Future[None]] = {}

    def turn(self, session_id: str) -> Turn:
        """The next turn in the session's emit order. Take it with no await
        between it and the append it orders."""
        before = self._tails.get(session_id)
        if before is not None and before.done():
            before = None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[session_id] = done
        done.add_done_callback(lambda finished: self._forget(session_id, finished))
        return Turn(before, done)

    def _forget(self, session_id: str, finished: asyncio.Future[None]) -> None:
        if self._tails.get(session_id) is finished:
            del self._tails[session_id]

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
        """Sessions with a lock or a turn in use."""
        return len(self._locks.keys() | self._tails.keys())


class Turn:
    """One message's place in its session's emit order."""

    __slots__ = ("_before", "_done")

    def __init__(self, before: asyncio.Future[None] | None, done: asyncio.Future[None]) -> None:
        self._before = before
        self._done = done

    async def wait(self) -> None:
        """Until every turn before this one is finished."""
        if self._before is not None and not self._before.done():
            # Shielded: a waiter cancelled here must not cancel the turn before it.
            await asyncio.shield(self._before)

    def finish(self) -> None:
        """Let the next turn go, but never ahead of the turns before this one
        (a waiter cancelled early finishes before its predecessors)."""
        if self._done.done():
            return
        before = self._before
        if before is None or before.done():
            self._done.set_result(None)
        else:
            before.add_done_callback(self._pass_on)

    def _pass_on(self, _before: asyncio.Future[None]) -> None:
        if not self._done.done():
            self._done.set_result(None)


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
