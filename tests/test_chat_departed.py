"""An event still running when its socket leaves records nothing for that socket.

docs/protocol.md's table of codes: `protocol.not_connected` is answered to an event
from a socket the host no longer knows. A `session:create` whose socket disconnects
while the store is creating the session is answered so (nobody is there to read the
ack, but the `on_error` observers of docs/plugins.md see it), and the socket is not
put into the new session: its member never goes `online` there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tkr_host import hookimpl
from tkr_host.errors import HostError
from tkr_host.testing import eventually, held_calls


class Errors:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def on_error(self, host: Any, error: HostError, context: dict[str, Any]) -> None:
        self.seen.append((error.code, str(context.get("event"))))


@pytest.fixture
def errors() -> Errors:
    return Errors()


@pytest.fixture
def tkr_plugins(errors: Errors) -> list[Any]:
    return [errors]


async def test_a_create_whose_socket_left_is_not_connected_and_enters_nothing(tkr_client: Any, tkr_host: Any, errors: Errors) -> None:
    host = tkr_host.host
    alice = await tkr_client("alice")
    sid = alice.sio.get_sid("/chat")
    async with held_calls(host.store, "create_session") as creating:
        await alice.sio.emit("session:create", {"title": "left behind"}, namespace="/chat")
        await asyncio.wait_for(creating.wait(), 5)
        await alice.close()
        await eventually(lambda: host.connection(sid, "/chat") is None, what="the host to see alice leave")
    await eventually(lambda: errors.seen, what="the create's answer")
    assert errors.seen == [("protocol.not_connected", "session:create")]
    # The session was stored, and the socket that left holds no place in it: alice's next
    # socket is her first there, so a member sees her come online when it joins.
    again, bob = await tkr_client("alice"), await tkr_client("bob")
    [session] = (await again.ok("session:list"))["sessions"]
    assert session["title"] == "left behind"
    await again.ok("session:invite", {"session_id": session["id"], "member": {"id": "bob", "kind": "user"}})
    await bob.join(session["id"])
    await again.join(session["id"])
    online = await bob.wait_for("presence", lambda p: p["member"]["id"] == "alice")
    assert online["state"] == "online"
