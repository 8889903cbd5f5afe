"""message:send through a real host: validation, idempotency, seq and ordering."""

from __future__ import annotations

import asyncio

import pytest


async def test_send_acks_with_id_seq_and_ts(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.send_text(session_id, "hi")
    assert ack["ok"] is True and ack["duplicate"] is False
    assert set(ack["message"]) == {"id", "seq", "ts"}
    assert ack["message"]["seq"] == 1
    assert ack["message"]["ts"].endswith("Z") and len(ack["message"]["ts"]) == len("2026-11-27T10:00:00.123Z")


async def test_resending_a_client_id_returns_the_first_message_and_delivers_it_again(tkr_client):
    # PROTOCOL.md 1.1: a duplicate stores nothing new, answers the first message,
    # and emits that stored message again to the session, since the first ack
    # may have been lost after the message was stored.
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await alice.create_session()
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    await bob.join(session_id)
    first = await alice.send_text(session_id, "once", client_id="c-1")
    again = await alice.send_text(session_id, "once, changed", client_id="c-1")
    assert again["duplicate"] is True
    assert again["message"] == first["message"]
    await bob.wait_for("message", lambda m: len([x for x in bob.received("message") if x["id"] == first["message"]["id"]]) == 2)
    copies = [m for m in bob.received("message") if m["id"] == first["message"]["id"]]
    assert [m["payload"]["text"] for m in copies] == ["once", "once"]  # the stored message, not the resend's text
    assert [m["payload"]["text"] for m in await alice.history(session_id)] == ["once"]
    # The sending socket has the ack: a sentinel from bob comes, nothing of alice's own before it.
    sentinel = await bob.send_text(session_id, "sentinel")
    await alice.wait_for("message", lambda m: m["id"] == sentinel["message"]["id"])
    assert [m["id"] for m in alice.received("message")] == [sentinel["message"]["id"]]


async def test_a_resend_reaches_the_agents_that_have_not_acked_it_only(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo", "other"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    first = await alice.send_text(session_id, "for echo", client_id="c-echo", to="echo")
    await echo.wait_for("message", lambda m: m["id"] == first["message"]["id"])
    # A message stored after that one arrived comes live or from the replay's
    # read after the agent joined its live room: either way, it is live now.
    live = await alice.send_text(session_id, "are you live", to="echo")
    await echo.wait_for("message", lambda m: m["id"] == live["message"]["id"])

    def copies() -> int:
        # Delivery is at-least-once (the replay may repeat a live message), so
        # the test counts copies before and after, never exact totals.
        return len([m for m in echo.received("message") if m["id"] == first["message"]["id"]])

    before = copies()
    await alice.send_text(session_id, "for echo", client_id="c-echo", to="echo")
    await echo.wait_for("message", lambda m: copies() > before)
    await echo.ok("message:ack", {"message_id": first["message"]["id"]})
    # Acked now: a third resend reaches the session but not the agent again.
    acked = copies()
    third = await alice.send_text(session_id, "for echo", client_id="c-echo", to="echo")
    assert third["duplicate"] is True
    sentinel = await alice.send_text(session_id, "after", to="echo")
    await echo.wait_for("message", lambda m: m["id"] == sentinel["message"]["id"])
    assert copies() == acked


@pytest.mark.tkr_settings({"plugins": {"ratelimit": {"messages_per_second": 1, "message_burst": 2}}})
async def test_a_resend_counts_against_the_rate_limit_like_any_send(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    acks = [await alice.send_text(session_id, "same", client_id="c-same") for _ in range(4)]
    assert acks[0]["ok"] and acks[1]["ok"] and acks[1]["duplicate"]
    assert acks[-1]["error"]["code"] == "rate_limit.exceeded" and acks[-1]["error"]["retry_after"] > 0


async def test_the_same_client_id_from_another_sender_is_a_new_message(tkr_client):
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await alice.create_session()
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    a = await alice.send_text(session_id, "a", client_id="same")
    b = await bob.send_text(session_id, "b", client_id="same")
    assert a["message"]["id"] != b["message"]["id"] and b["duplicate"] is False


async def test_concurrent_sends_get_gapless_seqs_and_arrive_in_seq_order(tkr_client):
    alice, bob, carol = await tkr_client("alice"), await tkr_client("bob"), await tkr_client("carol")
    session_id = await alice.create_session()
    for member in ("bob", "carol"):
        await alice.ok("session:invite", {"session_id": session_id, "member": {"id": member, "kind": "user"}})
    watcher = await tkr_client("carol")
    await watcher.join(session_id)
    sends = [sender.send_text(session_id, f"{sender.principal_id}-{i}") for i in range(15) for sender in (alice, bob, carol)]
    acks = await asyncio.gather(*sends)
    assert all(ack["ok"] for ack in acks)
    assert sorted(ack["message"]["seq"] for ack in acks) == list(range(1, 46))
    # carol's own sends skip only the socket that sent them, so the watcher sees all 45.
    await watcher.wait_for("message", lambda m: m["seq"] == 45)
    assert [m["seq"] for m in watcher.received("message")] == list(range(1, 46))


async def test_concurrent_duplicates_store_one_message(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    acks = await asyncio.gather(*(alice.send_text(session_id, "dup", client_id="c-same") for _ in range(10)))
    assert len({ack["message"]["id"] for ack in acks}) == 1
    assert sum(not ack["duplicate"] for ack in acks) == 1
    assert len(await alice.history(session_id)) == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"type": "nope"}, "validation.unknown_type"),
        ({"type": "Bad Type"}, "validation.payload"),
        ({"payload": {"text": ""}}, "validation.payload"),
        ({"payload": {"text": "x" * 32_769}}, "validation.payload"),
        ({"payload": {"text": "hi", "format": "html"}}, "validation.payload"),
        ({"payload": "hi"}, "validation.payload"),
        ({"client_id": ""}, "validation.payload"),
        ({"client_id": "x" * 65}, "validation.payload"),
        ({"client_id": 7}, "validation.payload"),
        ({"to": "nobody"}, "validation.recipient"),
        ({"to": "bob"}, "validation.recipient"),
        ({"in_reply_to": "00000000-0000-0000-0000-000000000000"}, "not_found.message"),
        ({"session_id": "missing"}, "not_found.session"),
        # docs/protocol.md, message:send's checks in order: first the fields (`session_id`,
        # `client_id` and `in_reply_to` 1-64 characters, `to` 1-200), then the session and
        # the addressing. A length inside the bounds passes the first check and meets a later one.
        ({"session_id": ""}, "validation.payload"),
        ({"session_id": "x" * 65}, "validation.payload"),
        ({"session_id": "x"}, "not_found.session"),
        ({"session_id": "x" * 64}, "not_found.session"),
        ({"to": ""}, "validation.payload"),
        ({"to": "x" * 201}, "validation.payload"),
        ({"to": "x"}, "validation.recipient"),
        ({"to": "x" * 200}, "validation.recipient"),
        ({"in_reply_to": ""}, "validation.payload"),
        ({"in_reply_to": "x" * 65}, "validation.payload"),
        ({"in_reply_to": "x"}, "not_found.message"),
        ({"in_reply_to": "x" * 64}, "not_found.message"),
        ({"extra": True}, "validation.payload"),
    ],
)
async def test_bad_sends_are_refused_and_store_nothing(tkr_client, change, code):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    data = {"session_id": session_id, "client_id": "c-1", "type": "text", "payload": {"text": "hi"}, **change}
    ack = await alice.call("message:send", data)
    assert ack["ok"] is False and ack["error"]["code"] == code
    assert ack["error"]["hint"] and ack["error"]["request_id"]
    assert await alice.history(session_id) == []


@pytest.mark.parametrize("client_id", ["c", "x" * 64])
async def test_a_client_id_of_1_to_64_characters_is_accepted(tkr_client, client_id):
    # docs/protocol.md: `client_id` (1-64 characters) is the sender's idempotency key.
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    data = {"session_id": session_id, "client_id": client_id, "type": "text", "payload": {"text": "hi"}}
    ack = await alice.call("message:send", data)
    assert ack["ok"] is True
    assert [message["payload"]["text"] for message in await alice.history(session_id)] == ["hi"]


async def test_non_members_cannot_send(tkr_client):
    alice, mallory = await tkr_client("alice"), await tkr_client("mallory")
    session_id = await alice.create_session()
    ack = await mallory.send_text(session_id, "let me in")
    assert ack["error"]["code"] == "permission.not_member"
    assert await alice.history(session_id) == []


async def test_to_names_an_agent_member_and_in_reply_to_a_message(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    first = await alice.send_text(session_id, "question", to="echo")
    reply = await alice.send_text(session_id, "follow-up", in_reply_to=first["message"]["id"])
    assert first["ok"] and reply["ok"]
    stored = await alice.history(session_id)
    assert stored[0]["to"] == "echo" and stored[1]["in_reply_to"] == first["message"]["id"]
