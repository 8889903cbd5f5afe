"""Who is online in which session, on this node.

A principal may have several sockets in a session (two tabs). It goes
``online`` with its first socket and ``offline`` with its last, so the
``presence`` events a session sees are not doubled by extra tabs.
"""

from __future__ import annotations

from tkr_host.types import Member


class Presence:
    def __init__(self) -> None:
        self._sockets: dict[tuple[str, str], set[str]] = {}
        self._members: dict[tuple[str, str], Member] = {}

    def arrive(self, session_id: str, member: Member, sid: str) -> bool:
        """Record ``sid`` in the session; True when the member just came online."""
        key = (session_id, member.id)
        sids = self._sockets.setdefault(key, set())
        first = not sids
        sids.add(sid)
        self._members[key] = member
        return first

    def depart(self, session_id: str, member_id: str, sid: str) -> bool:
        """Forget ``sid``; True when the member just went offline."""
        key = (session_id, member_id)
        sids = self._sockets.get(key)
        if not sids or sid not in sids:
            return False
        sids.discard(sid)
        if sids:
            return False
        del self._sockets[key]
        del self._members[key]
        return True

    def online(self, session_id: str) -> list[Member]:
        return [member for (sess, _), member in self._members.items() if sess == session_id]

    def __len__(self) -> int:
        """How many (session, member) pairs are online: zero once everyone left."""
        return len(self._sockets)
