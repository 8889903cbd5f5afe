"""Each socket's rooms kept by the client manager (tkr_host.room_index), through a real host and clients.

The index must always say what python-socketio's own rooms say: a socket that
leaves a session or disconnects leaves no trace in either, ``close_room`` empties
a room for its members, and a session's broadcast reaches exactly the sockets
that follow it (docs/protocol.md: ``message`` goes to the session's members, the
sender's socket skipped; ``session:leave`` stops the socket following it).
Checked for the host's default manager and for tkr-redis's.
"""

from __future__ import annotations

from typing import Any

import pytest

from tkr_host import RoomIndex
from tkr_host.testing import RunningHost, TkrClient, deep_merge, eventually, installed_plugins

CHAT = "/chat"


@pytest.fixture(params=["default", "redis"])
def tkr_settings(request: pytest.FixtureRequest, tkr_settings: dict[str, Any]) -> dict[str, Any]:
    """The kit's settings, for the default manager or for tkr-redis's (skipped without a Redis):
    the kit's tkr_host and tkr_client then run each test on both managers."""
    if request.param == "default":
        return tkr_settings
    if "redis" not in installed_plugins():
        pytest.skip("tkr-redis is not installed")
    url, channel = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    return deep_merge(tkr_settings, {"plugins": {"redis": {"url": url, "channel": channel}}})


def scanned(manager: Any, namespace: str) -> dict[str, set[Any]]:
    """``sid → rooms`` read from python-socketio's own rooms, the way it walks them."""
    rooms: dict[str, set[Any]] = {}
    for name, members in manager.rooms.get(namespace, {}).items():
        for sid in members:
            rooms.setdefault(sid, set()).add(name)
    return rooms


def assert_index_agrees(manager: Any, sids: list[str]) -> None:
    truth = scanned(manager, CHAT)
    for sid in sids:
        assert set(manager.rooms_of(sid, CHAT)) == truth.get(sid, set()), sid


def sid_of(client: TkrClient) -> str:
    sid = client.sio.get_sid(CHAT)
    assert sid is not None
    return str(sid)


async def members(tkr_client: Any, session_owner: str, names: list[str]) -> tuple[str, list[TkrClient]]:
    clients = [await tkr_client(name) for name in [session_owner, *names]]
    session_id = await clients[0].create_session("rooms")
    for client in clients[1:]:
        await clients[0].ok("session:invite", {"session_id": session_id, "member": {"id": client.principal_id, "kind": "user"}})
        await client.join(session_id)
    return session_id, clients


async def assert_not_delivered(client: TkrClient, message_id: str) -> None:
    """After a round trip of ``client``'s own: its answer is queued behind anything sent to it before."""
    await client.ok("session:list", {})
    assert all(m["id"] != message_id for m in client.received("message"))


async def test_leaving_and_disconnecting_leave_no_trace_and_the_broadcast_reaches_the_rest(tkr_host: RunningHost, tkr_client: Any) -> None:
    manager = tkr_host.host.sio.manager
    assert isinstance(manager, RoomIndex)
    session_id, (alice, bob, carol, dave) = await members(tkr_client, "alice", ["bob", "carol", "dave"])
    sids = [sid_of(client) for client in (alice, bob, carol, dave)]
    assert_index_agrees(manager, sids)
    # docs/architecture.md (rooms.py): the namespace's room, its sid's, its principal's and the session's.
    assert all(len(manager.rooms_of(sid, CHAT)) == 4 for sid in sids)

    await carol.ok("session:leave", {"session_id": session_id})
    assert_index_agrees(manager, sids)
    assert len(manager.rooms_of(sids[2], CHAT)) == 3

    await bob.close()
    await eventually(lambda: sids[1] not in scanned(manager, CHAT), what="bob's socket gone from every room")
    assert manager.rooms_of(sids[1], CHAT) == []
    assert_index_agrees(manager, sids)

    sent = await alice.send_text(session_id, "after")
    assert sent["ok"]
    got = await dave.wait_for("message", lambda m: m["id"] == sent["message"]["id"])
    assert got["sender"]["id"] == "alice"
    await assert_not_delivered(carol, sent["message"]["id"])
    await assert_not_delivered(alice, sent["message"]["id"])


async def test_many_sockets_closing_together_leave_every_room_empty_of_them(tkr_host: RunningHost, tkr_client: Any) -> None:
    manager = tkr_host.host.sio.manager
    _, clients = await members(tkr_client, "owner", [f"m{n}" for n in range(12)])
    sids = [sid_of(client) for client in clients]
    for client in clients[1:]:
        await client.close()
    gone = set(sids[1:])
    await eventually(lambda: not gone & set(scanned(manager, CHAT)), what="the closed sockets gone from every room")
    assert all(manager.rooms_of(sid, CHAT) == [] for sid in gone)
    assert_index_agrees(manager, sids)
    # The owner still follows the session, alone: its four rooms are intact.
    assert len(manager.rooms_of(sids[0], CHAT)) == 4


async def test_close_room_empties_the_room_for_its_members_and_keeps_their_other_rooms(tkr_host: RunningHost, tkr_client: Any) -> None:
    manager = tkr_host.host.sio.manager
    session_id, (alice, bob, carol) = await members(tkr_client, "alice", ["bob", "carol"])
    sids = [sid_of(client) for client in (alice, bob, carol)]
    session_rooms = set.intersection(*(set(manager.rooms_of(sid, CHAT)) for sid in sids)) - {None}
    assert len(session_rooms) == 1  # the session's: the only named room the three share
    [room] = session_rooms
    await tkr_host.host.sio.close_room(room, namespace=CHAT)
    assert room not in manager.rooms[CHAT]
    assert_index_agrees(manager, sids)
    assert all(len(manager.rooms_of(sid, CHAT)) == 3 for sid in sids)

    sent = await alice.send_text(session_id, "to an emptied room")
    assert sent["ok"]
    for client in (bob, carol):
        await assert_not_delivered(client, sent["message"]["id"])
    # The members still disconnect cleanly from the rooms they kept.
    await bob.close()
    await eventually(lambda: sids[1] not in scanned(manager, CHAT), what="bob's socket gone from every room")
    assert manager.rooms_of(sids[1], CHAT) == []
    assert_index_agrees(manager, sids)
