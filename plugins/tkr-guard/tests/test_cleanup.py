"""Nothing stays behind: 1,000 connect/disconnect cycles in CI (200 locally), whatever ends each one."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from tkr_guard.backends import MemoryBackend
from tkr_guard.guard import Guard

from tkr_host.errors import HostError
from tkr_host.testing import TkrClient, loop_count

#: Full in CI, smaller locally (the kit's loop_count); either way each of the four endings
#: comes around CYCLES / 4 times, spread over the WORKERS connections.
CYCLES = loop_count(full=1000, local=200)
WORKERS = 8
AGENT = "bot"

# The rate limiter would (rightly) stop that many connects a minute from one address.
CHURN = {"host": {"disable_plugins": ["ratelimit"]}, "plugins": {"guard": {"idle_timeout_s": 60}}}


async def end(client: TkrClient, how: int, host: Any, wait_until: Any) -> None:
    """End a connection in one of four ways."""
    sio = client.sio
    if how == 0:  # the client says goodbye
        await sio.disconnect()
    elif how == 1:  # the host closes it (as a ban or an idle timeout does)
        await host.disconnect_client(sio.get_sid(client.namespace), client.namespace, HostError("protocol.shutting_down"))
    elif how == 2:  # the transport goes away without a Socket.IO goodbye
        await sio.eio.ws.close()
    else:  # the client leaves with events still in flight
        await sio.emit("session:list", {}, namespace=client.namespace)
        await sio.emit("session:list", {}, namespace=client.namespace)
        await sio.disconnect()
    await wait_until(lambda: not sio.connected, what=f"cause {how}: the client to be disconnected")
    await sio.disconnect()


@pytest.mark.tkr_settings(CHURN)
async def test_a_thousand_connect_disconnect_cycles_leave_nothing_behind(tkr_host, connect_from, eventually):
    host = tkr_host.host
    owner = await connect_from("127.0.0.1", "owner")
    session_id = await owner.create_session("churn", agents=[AGENT])
    for i in range(1, WORKERS):
        await owner.ok("session:invite", {"session_id": session_id, "member": {"id": f"w{i}", "kind": "user"}})
    await owner.close()
    counter = itertools.count()

    async def worker(index: int) -> None:
        while (cycle := next(counter)) < CYCLES:
            ip = f"198.51.100.{index + 1}"
            if index == 0:  # the agent: online in the session, with a reply half streamed
                client = await connect_from(ip, AGENT, namespace="/agents", kind="agent")
                started = await client.ok("stream:start", {"session_id": session_id, "type": "text"})
                await client.ok("stream:chunk", {"message_id": started["message_id"], "delta": "half a rep"})
            else:  # a person: joins the session, so is in its room and online
                client = await connect_from(ip, f"w{index}")
                await client.join(session_id)
            await end(client, cycle % 4, host, eventually)

    await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(WORKERS))), timeout=240)

    # A connection goes first; what it leaves (an aborted stream being stored under its session's
    # lock, a presence entry) is cleaned up by tasks that may still run for a moment after it.
    await eventually(lambda: not (host.connections or len(host.presence) or len(host.streams) or len(host.sequencer)), timeout=10,
                     what="every connection, presence entry, stream and session lock to be gone")
    assert len(host.presence) == 0
    assert len(host.streams) == 0
    assert len(host.sequencer) == 0
    for namespace in ("/chat", "/agents", "/tasks"):
        rooms = host.sio.manager.rooms.get(namespace, {})
        assert not {room: dict(sids) for room, sids in rooms.items() if sids}, f"sids left in rooms of {namespace}"
    guard = Guard.of(host)
    assert guard is not None and guard.reaper is not None
    assert not guard.kicking and not guard.reaper.closing
    if isinstance(guard.backend, MemoryBackend):
        assert guard.backend.sizes() == {"tallies": 0, "bans": 0}
