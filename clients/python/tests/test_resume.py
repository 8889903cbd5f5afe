"""Resume with nothing missed, nothing doubled (the issue's item 4), through a real host:
a rejoin with since_seq after every reconnect, truncated answers followed, gaps filled
from history, and a streamed reply picked up from the join's `streams`."""

from __future__ import annotations

import pytest

from tkr_host.rooms import session_room


async def _shared_session(alice, tkr_client):
    session = await alice.create_session(title="t", agents=["echo"])
    await alice.invite(session["id"], "bob")
    bob = await tkr_client("bob")
    await bob.join(session["id"])
    return session["id"], bob


async def test_after_a_drop_the_client_rejoins_and_gets_what_it_missed_once_in_order(chat, tkr_client, gate, drop, recorder, until):
    held = gate("alice")
    alice = await chat("alice", token=held)
    seen = recorder(alice)
    session_id, bob = await _shared_session(alice, tkr_client)
    await bob.send_text(session_id, "before")
    await seen.wait("message", lambda m: m["payload"]["text"] == "before")
    held.open.clear()
    await drop("alice")
    await until(lambda: alice.state == "reconnecting", what="reconnecting")
    for i in range(3):
        await bob.send_text(session_id, f"missed {i}")
    # A send while down waits in the queue, and goes out after the catch-up.
    import asyncio

    pending = asyncio.ensure_future(alice.send_text(session_id, "written while offline"))
    await until(lambda: alice.queued == 1, what="one queued send")
    held.open.set()
    sent = await asyncio.wait_for(pending, 10)
    await seen.wait("message", lambda m: m["payload"]["text"] == "missed 2")
    assert [m["payload"]["text"] for m in seen.of("message")] == ["before", "missed 0", "missed 1", "missed 2"]
    assert [m["seq"] for m in seen.of("message")] == [1, 2, 3, 4]
    assert sent["seq"] == 5 and alice.queued == 0
    changes = [(s.state, s.attempt) for s in seen.of("state")]
    assert ("reconnecting", 1) in changes and changes[-1][0] == "connected"
    reconnecting = next(s for s in seen.of("state") if s.state == "reconnecting" and s.delay is not None)
    assert 0 <= reconnecting.delay <= alice.backoff.window(0)
    assert [s.queued for s in seen.of("state")][-1] == 0


@pytest.mark.tkr_settings({"host": {"resume_limit": 2}})
async def test_a_truncated_resume_is_followed_until_caught_up(chat, tkr_client, gate, drop, recorder, until):
    held = gate("alice")
    alice = await chat("alice", token=held)
    seen = recorder(alice)
    session_id, bob = await _shared_session(alice, tkr_client)
    held.open.clear()
    await drop("alice")
    await until(lambda: alice.state == "reconnecting", what="reconnecting")
    for i in range(7):
        await bob.send_text(session_id, f"m{i}")
    held.open.set()
    await seen.wait("message", lambda m: m["payload"]["text"] == "m6")
    assert [m["seq"] for m in seen.of("message")] == list(range(1, 8))


async def test_a_gap_in_live_seq_is_filled_from_history(chat, tkr_client, tkr_host, recorder):
    alice = await chat("alice")
    seen = recorder(alice)
    session_id, bob = await _shared_session(alice, tkr_client)
    # A lost broadcast, as between nodes: alice's socket misses two messages.
    (sid,) = [c.sid for c in tkr_host.host.connections.values() if c.principal.id == "alice" and c.namespace == "/chat"]
    await tkr_host.host.sio.leave_room(sid, session_room(session_id), namespace="/chat")
    await bob.send_text(session_id, "lost 1")
    await bob.send_text(session_id, "lost 2")
    await tkr_host.host.sio.enter_room(sid, session_room(session_id), namespace="/chat")
    await bob.send_text(session_id, "live")
    await seen.wait("message", lambda m: m["payload"]["text"] == "live")
    assert [m["payload"]["text"] for m in seen.of("message")] == ["lost 1", "lost 2", "live"]
    # A seq it already holds is dropped: the host's re-delivery of a duplicate changes nothing.
    await bob.send_text(session_id, "after")
    await seen.wait("message", lambda m: m["payload"]["text"] == "after")
    assert [m["seq"] for m in seen.of("message")] == [1, 2, 3, 4]


async def test_a_streamed_reply_is_picked_up_after_a_reconnect_without_repeats(chat, tkr_client, gate, drop, recorder, until):
    held = gate("alice")
    alice = await chat("alice", token=held)
    seen = recorder(alice)
    session_id, _ = await _shared_session(alice, tkr_client)
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    for delta in ("Once ", "upon "):
        await echo.ok("stream:chunk", {"message_id": message_id, "delta": delta})
    await seen.wait("chunk", lambda c: c["index"] == 1)
    held.open.clear()
    await drop("alice")
    await until(lambda: alice.state == "reconnecting", what="reconnecting")
    for delta in ("a ", "time"):
        await echo.ok("stream:chunk", {"message_id": message_id, "delta": delta})
    held.open.set()
    await seen.wait("chunk", lambda c: c["index"] == 3)
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "."})
    await echo.ok("stream:end", {"message_id": message_id})
    final = await seen.wait("message", lambda m: m["id"] == message_id)
    chunks = seen.of("chunk")
    assert "".join(c["delta"] for c in chunks) == final["payload"]["text"] == "Once upon a time."
    assert [c["index"] for c in chunks] == [0, 1, 3, 4]
    assert [m["id"] for m in seen.of("message")] == [message_id]


async def test_joining_mid_stream_returns_the_text_so_far_and_continues(chat, tkr_client, recorder):
    alice = await chat("alice")
    session = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session["id"]}))["message_id"]
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "Hel"})
    second_tab = await chat("alice")
    seen = recorder(second_tab)
    joined = await second_tab.join(session["id"])
    assert joined["streams"] == [{"message_id": message_id, "sender": {"id": "echo", "kind": "agent"}, "index": 0, "text": "Hel"}]
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "lo"})
    chunk = await seen.wait("chunk")
    assert chunk["index"] == 1 and chunk["delta"] == "lo"
    await alice.stop_stream(session["id"], message_id)
    stopped = await seen.wait("message", lambda m: m["id"] == message_id)
    assert stopped["status"] == "stopped" and stopped["payload"]["text"] == "Hello"
