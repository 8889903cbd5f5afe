"""Who is online in which session, on this node, and what each agent is doing.

A principal may have several sockets in a session (two tabs). It goes
``online`` with its first socket and ``offline`` with its last, so the
``presence`` events a session sees are not doubled by extra tabs.

An agent's ``agent:status`` is kept here too, per (session, agent), in memory
only: it is not stored, and it lapses when the agent goes offline in that
session (the ``presence`` ``offline`` the session gets says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tkr_host.types import Member, format_ts, utc_now

AgentState = Literal["idle", "thinking", "working", "waiting"]


@dataclass(frozen=True)
class AgentStatus:
    """The last ``agent:status`` an agent set in one session."""

    agent: Member
    state: AgentState
    detail: str | None
    ts: str

    def to_wire(self) -> dict[str, Any]:
        """As the ``agents`` of a ``session:join`` ack lists it."""
        return {"id": self.agent.id, "state": self.state, "detail": self.detail, "ts": self.ts}


class Presence:
    def __init__(self) -> None:
        self._sockets: dict[tuple[str, str], set[str]] = {}
        self._members: dict[tuple[str, str], Member] = {}
        self._statuses: dict[tuple[str, str], AgentStatus] = {}

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
        self._statuses.pop(key, None)  # a status lapses with its agent
        return True

    def set_status(self, session_id: str, agent: Member, state: AgentState, detail: str | None) -> AgentStatus | None:
        """Record an online agent's status; None when it is not online in the session."""
        key = (session_id, agent.id)
        if key not in self._sockets:
            return None
        status = AgentStatus(agent=agent, state=state, detail=detail, ts=format_ts(utc_now()))
        self._statuses[key] = status
        return status

    def statuses(self, session_id: str) -> list[AgentStatus]:
        """The last status of each agent online in the session that has set one."""
        return [status for (sess, _), status in self._statuses.items() if sess == session_id]

    def latest_state(self, agent_id: str) -> AgentState | None:
        """The state the agent set most recently, in any session."""
        mine = [status for (_, member_id), status in self._statuses.items() if member_id == agent_id]
        return max(mine, key=lambda status: status.ts).state if mine else None

    def __len__(self) -> int:
        """How many (session, member) pairs are online: zero once everyone left."""
        return len(self._sockets)
