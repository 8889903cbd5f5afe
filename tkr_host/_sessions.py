"""Which sessions a principal belongs to, without a database read per event.

Members are only ever added, never removed, so a membership once seen stays
true: the cache keeps positive answers only. A principal not found in a
cached session is looked up again in the store (another node may have
invited it), so a new member is never refused because of the cache.
"""

from __future__ import annotations

from collections import OrderedDict

from tkr_host.types import Member, Session, Store

#: Sessions remembered per host; the least recently used are dropped first.
MAX_CACHED_SESSIONS = 10_000


class SessionCache:
    def __init__(self, capacity: int = MAX_CACHED_SESSIONS) -> None:
        self.capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    async def membership(self, store: Store, session_id: str, member: Member) -> Session | None:
        """The session, read from the store unless a cached copy already lists ``member``.

        ``member`` is an id and a kind: a cached session that holds the id with
        another kind is no answer, and is read again like any other.

        The returned session's ``last_seq`` may be old: read the store when it matters.
        """
        cached = self._sessions.get(session_id)
        if cached is not None and cached.has_member(member):
            self._sessions.move_to_end(session_id)
            return cached
        session = await store.get_session(session_id)
        if session is not None:
            self.remember(session)
        return session

    def remember(self, session: Session) -> None:
        self._sessions[session.id] = session
        self._sessions.move_to_end(session.id)
        while len(self._sessions) > self.capacity:
            self._sessions.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions
