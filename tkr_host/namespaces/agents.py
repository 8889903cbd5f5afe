"""``/agents``: where agents connect to receive work and stream replies.

Only principals of kind ``agent`` may connect. Each socket joins its agent's
room, so every message addressed to the agent reaches all of its sockets.
"""

from __future__ import annotations

from tkr_host.dispatch import NamespaceSpec
from tkr_host.host import Connection, Host
from tkr_host.pipeline import send_message
from tkr_host.rooms import agent_room


async def joined(host: Host, conn: Connection) -> None:
    await host.sio.enter_room(conn.sid, agent_room(conn.principal.id), namespace="/agents")


def namespace() -> NamespaceSpec:
    return NamespaceSpec(
        path="/agents",
        events={"message:send": send_message},
        admits=lambda principal: principal.kind == "agent",
        joined=joined,
    )
