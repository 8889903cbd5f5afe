"""What every node of one deployment must see alike, behind one small interface.

A node keeps its own sockets, rooms and open streams in memory
(``tkr_host._presence``, ``tkr_host._streams``). What a client may ask any
node about — who is online in a session, the ``streams`` and ``agents`` of a
``session:join``, the agent directory — and the two requests that must reach
the node holding a socket (``stream:stop``, ``disconnect_client``) go through a
:class:`ClusterState`. The core's default, :class:`LocalCluster`, answers from
this node's memory, which is the whole truth when there is one node. A plugin
returns another from the ``cluster_state`` hook (``tkr-redis`` keeps the shared
view in Redis, with expiry, so a dead node's entries fade).

The core calls the strategy; the strategy calls back into the core only through
the :class:`ClusterHandlers` it is handed at start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tkr_host.errors import HostError
from tkr_host.types import Member, Principal

if TYPE_CHECKING:
    from tkr_host._presence import AgentStatus, Presence
    from tkr_host._streams import OpenStream, StreamRegistry


@dataclass(frozen=True)
class ClusterHandlers:
    """What another node may ask this one to do, as the core does it.

    * ``stop_stream(session_id, message_id, by)``: stop a stream this node
      relays; the ``stream:stop`` ack's fields, or None when it has no such stream.
    * ``disconnect(sid, namespace, error)``: close a socket, if it is here.
    * ``member_gone(session_id, member)``: a member's last entry faded (its node
      died): tell the session it is ``offline``.
    * ``stream_orphaned(record)``: a stream whose node died: keep what arrived as
      incomplete and report ``agent.stream_aborted``. ``record`` is what
      :meth:`ClusterState.stream_changed` was given, as :func:`stream_record` makes it.
    """

    stop_stream: Callable[[str, str, Principal], Awaitable[dict[str, Any] | None]]
    disconnect: Callable[[str, str, HostError], Awaitable[bool]]
    member_gone: Callable[[str, Member], Awaitable[None]]
    stream_orphaned: Callable[[dict[str, Any]], Awaitable[None]]


class ClusterState(Protocol):
    """The shared view of a deployment. Every write is best effort: a strategy
    that cannot reach its backend logs, counts, and lets the local operation go on."""

    async def start(self, handlers: ClusterHandlers) -> None: ...

    async def close(self) -> None: ...

    async def arrive(self, session_id: str, member: Member, sid: str, first_here: bool) -> bool:
        """Record ``sid`` online in the session; True when it is the member's first socket anywhere."""
        ...

    async def depart(self, session_id: str, member: Member, sid: str, last_here: bool) -> bool:
        """Forget ``sid``; True when it was the member's last socket anywhere (its status lapses)."""
        ...

    async def set_status(self, session_id: str, status: AgentStatus) -> None: ...

    async def statuses(self, session_id: str) -> list[dict[str, Any]]:
        """The ``agents`` of a ``session:join`` ack."""
        ...

    async def stream_changed(self, stream: OpenStream) -> None:
        """A stream opened or got a chunk."""
        ...

    async def stream_closed(self, stream: OpenStream) -> None: ...

    async def streams(self, session_id: str) -> list[dict[str, Any]]:
        """The ``streams`` of a ``session:join`` ack."""
        ...

    async def agent_connected(self, agent: Principal, sid: str) -> None: ...

    async def agent_disconnected(self, agent: Principal, sid: str) -> None: ...

    async def agents(self) -> list[dict[str, Any]]:
        """``GET /api/v1/agents``: every connected agent once, sorted by id."""
        ...

    async def stop_stream(self, session_id: str, message_id: str, by: Principal) -> dict[str, Any] | None:
        """``stream:stop`` for a stream this node does not relay: the owner's ack fields, or None."""
        ...

    async def disconnect(self, sid: str, namespace: str, error: HostError) -> None:
        """``disconnect_client`` for a socket this node does not hold."""
        ...


def stream_record(stream: OpenStream) -> dict[str, Any]:
    """What a node needs of another's stream: to list it on a join, or to keep it when that node died."""
    return {
        "message_id": stream.message_id,
        "session_id": stream.session_id,
        "principal": stream.principal.model_dump(mode="json"),
        "in_reply_to": stream.in_reply_to,
        "to": stream.to,
    }


class LocalCluster:
    """One node: this node's memory is the whole view, and no other node exists."""

    def __init__(self, presence: Presence, streams: StreamRegistry, agents_online: Callable[[], Iterable[Principal]]) -> None:
        # This node's own records, not the host: the strategy must not reach the host's other parts.
        self._presence = presence
        self._streams = streams
        self._agents_online = agents_online

    async def start(self, handlers: ClusterHandlers) -> None:
        return None

    async def close(self) -> None:
        return None

    async def arrive(self, session_id: str, member: Member, sid: str, first_here: bool) -> bool:
        return first_here

    async def depart(self, session_id: str, member: Member, sid: str, last_here: bool) -> bool:
        return last_here

    async def set_status(self, session_id: str, status: AgentStatus) -> None:
        return None

    async def statuses(self, session_id: str) -> list[dict[str, Any]]:
        return [status.to_wire() for status in self._presence.statuses(session_id)]

    async def stream_changed(self, stream: OpenStream) -> None:
        return None

    async def stream_closed(self, stream: OpenStream) -> None:
        return None

    async def streams(self, session_id: str) -> list[dict[str, Any]]:
        return self._streams.of_session(session_id)

    async def agent_connected(self, agent: Principal, sid: str) -> None:
        return None

    async def agent_disconnected(self, agent: Principal, sid: str) -> None:
        return None

    async def agents(self) -> list[dict[str, Any]]:
        found: dict[str, Principal] = {}
        for agent in self._agents_online():
            found.setdefault(agent.id, agent)
        return [
            {"id": agent.id, "name": agent.name or agent.id, "online": True,
             "state": self._presence.latest_state(agent.id) or "idle"}
            for agent in sorted(found.values(), key=lambda principal: principal.id)
        ]

    async def stop_stream(self, session_id: str, message_id: str, by: Principal) -> dict[str, Any] | None:
        return None  # no other node relays anything

    async def disconnect(self, sid: str, namespace: str, error: HostError) -> None:
        return None  # no other node holds a socket
