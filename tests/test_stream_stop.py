"""``stream:stop`` on /chat through a real host (PROTOCOL.md 1.1): any member stops
an agent's reply; it is stored as ``stopped`` and the agent is told."""

from __future__ import annotations

import pytest


async def _streaming(tkr_client, text: str = "half a th"):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    asked = (await alice.send_text(session_id, "talk", to="echo"))["message"]["id"]
    message_id = (await echo.ok("stream:start", {"session_id": session_id, "in_reply_to": asked}))["message_id"]
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": text})
    return alice, echo, session_id, message_id, asked


async def test_a_member_stops_a_reply_it_is_stored_as_stopped_and_the_agent_is_told(tkr_client):
    alice, echo, session_id, message_id, asked = await _streaming(tkr_client)
    bob = await tkr_client("bob")
    assert (await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}}))
    await bob.join(session_id)
    ack = await bob.ok("stream:stop", {"session_id": session_id, "message_id": message_id})
    assert ack["message"]["id"] == message_id and ack["message"]["seq"] == 2
    told = await echo.wait_for("stream:stop")
    assert told == {"session_id": session_id, "message_id": message_id, "by": "bob"}
    for member in (alice, bob):  # the stopper too gets the message
        stored = await member.wait_for("message", lambda m: m["id"] == message_id)
        assert stored["status"] == "stopped" and stored["payload"]["text"] == "half a th"
        assert stored["in_reply_to"] == asked and stored["sender"] == {"id": "echo", "kind": "agent"}
    assert (await alice.join(session_id))["streams"] == []
    history = await alice.history(session_id)
    assert [(m["id"], m["status"]) for m in history] == [(asked, "complete"), (message_id, "stopped")]
    assert ack["message"]["ts"] == history[1]["ts"]  # the ack is the stored message's {id, seq, ts}


async def test_the_agent_cannot_write_to_a_stopped_stream(tkr_client):
    alice, echo, session_id, message_id, _ = await _streaming(tkr_client)
    await alice.ok("stream:stop", {"session_id": session_id, "message_id": message_id})
    late_chunk = await echo.call("stream:chunk", {"message_id": message_id, "delta": "more"})
    assert late_chunk["ok"] is False and late_chunk["error"]["code"] == "conflict.stream_closed" and late_chunk["error"]["hint"]
    late_end = await echo.call("stream:end", {"message_id": message_id})
    assert late_end["error"]["code"] == "conflict.stream_closed"
    # docs/protocol.md's table of codes: "`details.message_id` names it".
    assert late_chunk["error"]["details"]["message_id"] == message_id and late_end["error"]["details"]["message_id"] == message_id
    # Stopping twice: the stream is finished.
    again = await alice.call("stream:stop", {"session_id": session_id, "message_id": message_id})
    assert again["error"]["code"] == "not_found.stream"
    assert [m["status"] for m in await alice.history(session_id)] == ["complete", "stopped"]


async def test_a_stop_before_any_text_stores_nothing(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    ack = await alice.ok("stream:stop", {"session_id": session_id, "message_id": message_id})
    assert ack["message"] is None
    assert (await echo.wait_for("stream:stop"))["message_id"] == message_id
    assert (await echo.call("stream:chunk", {"message_id": message_id, "delta": "x"}))["error"]["code"] == "conflict.stream_closed"
    assert await alice.history(session_id) == []


async def test_stop_errors(tkr_client):
    alice, echo, session_id, message_id, _ = await _streaming(tkr_client)
    outsider = await tkr_client("mallory")
    other_session = await outsider.create_session()

    async def code(client, payload) -> str:
        ack = await client.call("stream:stop", payload)
        assert ack["ok"] is False and ack["error"]["hint"], ack
        return str(ack["error"]["code"])

    assert await code(outsider, {"session_id": session_id, "message_id": message_id}) == "permission.not_member"
    # A stream of another session is not found from this one.
    assert await code(outsider, {"session_id": other_session, "message_id": message_id}) == "not_found.stream"
    assert await code(alice, {"session_id": session_id, "message_id": "no-such-stream"}) == "not_found.stream"
    assert await code(alice, {"session_id": "no-such-session", "message_id": message_id}) == "not_found.session"
    assert await code(alice, {"session_id": session_id}) == "validation.payload"
    assert await code(alice, {"session_id": session_id, "message_id": 7}) == "validation.payload"
    # A finished stream is not found.
    await echo.ok("stream:end", {"message_id": message_id})
    assert await code(alice, {"session_id": session_id, "message_id": message_id}) == "not_found.stream"
    # Nothing was stopped: the stream ended complete, and the agent was not told.
    finished = await alice.wait_for("message", lambda m: m["id"] == message_id)
    assert finished["status"] == "complete"
    assert echo.received("stream:stop") == []


async def test_an_agent_may_end_its_own_stream_as_incomplete(tkr_client):
    """docs/protocol.md: ``stream:end`` with ``status: "incomplete"`` (the SDK's way to
    say its handler failed mid-reply) keeps what arrived as ``incomplete``."""
    alice, echo, session_id, message_id, _ = await _streaming(tkr_client, "so far")
    ack = await echo.ok("stream:end", {"message_id": message_id, "status": "incomplete"})
    assert ack["message"]["id"] == message_id
    stored = await alice.wait_for("message", lambda m: m["id"] == message_id)
    assert stored["status"] == "incomplete" and stored["payload"]["text"] == "so far"
    empty = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    assert (await echo.ok("stream:end", {"message_id": empty, "status": "incomplete"}))["message"] is None
    assert (await echo.call("stream:end", {"message_id": empty}))["error"]["code"] == "not_found.stream"
    bad = await echo.call("stream:end", {"message_id": empty, "status": "stopped"})
    assert bad["error"]["code"] == "validation.payload"  # only a member stops a stream
    assert [m["status"] for m in await alice.history(session_id)] == ["complete", "incomplete"]


@pytest.mark.parametrize(("field", "value", "code"), [
    ("session_id", "", "validation.payload"), ("session_id", "s" * 65, "validation.payload"),
    ("session_id", "s", "not_found.session"), ("session_id", "s" * 64, "not_found.session"),
    ("message_id", "", "validation.payload"), ("message_id", "m" * 65, "validation.payload"),
    ("message_id", "m", "not_found.stream"), ("message_id", "m" * 64, "not_found.stream"),
])
async def test_stream_stop_is_checked_at_its_documented_bounds(tkr_client, field, value, code):
    # docs/protocol.md, stream:stop: `session_id` and `message_id` are 1–64 characters.
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    ack = await alice.call("stream:stop", {"session_id": session_id, "message_id": "m-1", field: value})
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
