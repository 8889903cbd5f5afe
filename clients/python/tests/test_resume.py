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


async def test_a_resent_client_id_is_delivered_to_the_app_once(chat, tkr_client, recorder):
    alice = await chat("alice")
    seen = recorder(alice)
    session_id, bob = await _shared_session(alice, tkr_client)
    first = await bob.send_text(session_id, "once", client_id="c-resent")
    await seen.wait("message", lambda m: m["payload"]["text"] == "once")
    # PROTOCOL.md: a resend with the same client_id answers `duplicate: true` and the
    # host emits the stored message to the session again; the client drops the seq.
    for _ in range(2):
        again = await bob.send_text(session_id, "once", client_id="c-resent")
        assert again["duplicate"] is True and again["message"]["seq"] == first["message"]["seq"]
    await bob.send_text(session_id, "sentinel")
    await seen.wait("message", lambda m: m["payload"]["text"] == "sentinel")
    assert [(m["seq"], m["payload"]["text"]) for m in seen.of("message")] == [(1, "once"), (2, "sentinel")]


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


async def test_a_live_chunk_during_the_resume_join_loses_no_text(chat, tkr_client, tkr_host, gate, drop, recorder, until):
    import asyncio

    held = gate("alice")
    alice = await chat("alice", token=held)
    seen = recorder(alice)
    session_id, bob = await _shared_session(alice, tkr_client)
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    for i in range(5):
        await echo.ok("stream:chunk", {"message_id": message_id, "delta": f"w{i} "})
    await seen.wait("chunk", lambda c: c["index"] == 4)
    held.open.clear()
    await drop("alice")
    await until(lambda: alice.state == "reconnecting", what="reconnecting")
    for i in range(5, 10):  # streamed while alice is away
        await echo.ok("stream:chunk", {"message_id": message_id, "delta": f"w{i} "})
    # Hold the resume's join on the host after it put the socket in the room, so a
    # live chunk reaches alice before the join's `streams` does.
    store = tkr_host.host.store
    # The replay read: a store's wire-form read when it has one (tkr-store-peewee does).
    read_name = "wire_messages_after" if hasattr(store, "wire_messages_after") else "messages_after"
    real = getattr(store, read_name)
    reading, release = asyncio.Event(), asyncio.Event()

    async def held_read(*args, **kwargs):
        reading.set()
        await release.wait()
        return await real(*args, **kwargs)

    setattr(store, read_name, held_read)
    try:
        held.open.set()
        await asyncio.wait_for(reading.wait(), 10)
        await echo.ok("stream:chunk", {"message_id": message_id, "delta": "w10 "})
        # A sentinel after the live chunk on the same socket: once it is delivered,
        # the client has taken the chunk too.
        await bob.send_text(session_id, "sentinel")
        await seen.wait("message", lambda m: m["payload"]["text"] == "sentinel")
    finally:
        release.set()
        setattr(store, read_name, real)
    # The join's `streams` brings what alice missed, as one chunk up to index 10.
    await seen.wait("chunk", lambda c: c["index"] == 10)
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "end."})
    await echo.ok("stream:end", {"message_id": message_id})
    final = await seen.wait("message", lambda m: m["id"] == message_id)
    chunks = seen.of("chunk")
    assert "".join(c["delta"] for c in chunks) == final["payload"]["text"] == "".join(f"w{i} " for i in range(11)) + "end."
    indexes = [c["index"] for c in chunks]
    assert indexes == sorted(set(indexes))  # no chunk twice, none out of order


async def test_lost_live_chunks_are_picked_up_from_a_new_join(chat, tkr_client, tkr_host, recorder):
    alice = await chat("alice")
    seen = recorder(alice)
    session_id, _ = await _shared_session(alice, tkr_client)
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "Once "})
    await seen.wait("chunk", lambda c: c["index"] == 0)
    # Lost broadcasts, as between nodes: alice's socket misses two chunks.
    (sid,) = [c.sid for c in tkr_host.host.connections.values() if c.principal.id == "alice" and c.namespace == "/chat"]
    await tkr_host.host.sio.leave_room(sid, session_room(session_id), namespace="/chat")
    for delta in ("upon ", "a "):
        await echo.ok("stream:chunk", {"message_id": message_id, "delta": delta})
    await tkr_host.host.sio.enter_room(sid, session_room(session_id), namespace="/chat")
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "time"})
    await seen.wait("chunk", lambda c: c["index"] == 3)
    await echo.ok("stream:end", {"message_id": message_id})
    final = await seen.wait("message", lambda m: m["id"] == message_id)
    chunks = seen.of("chunk")
    assert "".join(c["delta"] for c in chunks) == final["payload"]["text"] == "Once upon a time"
    indexes = [c["index"] for c in chunks]
    assert indexes == sorted(set(indexes))
