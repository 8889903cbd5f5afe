"""/chat through a real host: every event's success path and its error paths."""

from __future__ import annotations

import pytest

from tkr_host.testing import TkrClient


async def _session_with(owner: TkrClient, *members: TkrClient) -> str:
    session_id = await owner.create_session("team")
    for member in members:
        await owner.ok("session:invite", {"session_id": session_id, "member": {"id": member.principal_id, "kind": "user"}})
    return session_id


# --- session:create / session:list ------------------------------------------------


async def test_create_returns_the_session_with_its_creator_and_agents(tkr_client):
    alice = await tkr_client("alice")
    ack = await alice.ok("session:create", {"title": "Plans", "agents": ["echo", "echo"], "metadata": {"x": 1}})
    session = ack["session"]
    assert session["title"] == "Plans"
    assert session["created_by"] == "alice"
    assert session["last_seq"] == 0
    assert {(m["id"], m["kind"]) for m in session["members"]} == {("alice", "user"), ("echo", "agent")}
    assert session["created_at"].endswith("Z")
    # docs/protocol.md: `metadata` is returned as it was stored, by list and join too.
    assert session["metadata"] == {"x": 1}
    assert (await alice.ok("session:list"))["sessions"][0]["metadata"] == {"x": 1}
    assert (await alice.ok("session:join", {"session_id": session["id"]}))["session"]["metadata"] == {"x": 1}


@pytest.mark.parametrize(
    "payload",
    [{"title": "x" * 201}, {"title": 5}, {"agents": "echo"}, {"agents": [1]}, {"metadata": []}, {"nope": 1}],
)
async def test_create_refuses_bad_fields(tkr_client, payload):
    alice = await tkr_client("alice")
    ack = await alice.call("session:create", payload)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "validation.payload"
    assert ack["error"]["hint"]
    assert (await alice.ok("session:list"))["sessions"] == []


async def test_list_shows_only_the_principals_own_sessions(tkr_client):
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    mine = await alice.create_session("mine")
    await bob.create_session("bobs")
    shared = await _session_with(bob, alice)
    later = await alice.create_session("later")
    listed = [s["id"] for s in (await alice.ok("session:list"))["sessions"]]
    # docs/protocol.md: newest first, only the principal's own.
    assert listed == [later, shared, mine]


# --- session:join -----------------------------------------------------------------


async def test_join_returns_recent_history_and_no_streams(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    for i in range(3):
        assert (await alice.send_text(session_id, f"m{i}"))["ok"]
    bob = await tkr_client("bob")
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    ack = await bob.join(session_id)
    assert [m["payload"]["text"] for m in ack["messages"]] == ["m0", "m1", "m2"]
    assert [m["seq"] for m in ack["messages"]] == [1, 2, 3]
    assert ack["session"]["last_seq"] == 3
    assert ack["truncated"] is False
    assert ack["streams"] == []


async def test_join_since_seq_replays_only_what_was_missed(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    for i in range(5):
        await alice.send_text(session_id, f"m{i}")
    ack = await alice.join(session_id, since_seq=3)
    assert [m["seq"] for m in ack["messages"]] == [4, 5]
    assert ack["truncated"] is False


@pytest.mark.tkr_settings({"host": {"resume_limit": 3}})
async def test_join_since_seq_truncates_at_the_resume_limit_and_continues(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    for i in range(7):
        await alice.send_text(session_id, f"m{i}")
    first = await alice.join(session_id, since_seq=0)
    assert [m["seq"] for m in first["messages"]] == [1, 2, 3]
    assert first["truncated"] is True
    second = await alice.join(session_id, since_seq=3)
    third = await alice.join(session_id, since_seq=6)
    assert [m["seq"] for m in second["messages"]] == [4, 5, 6]
    assert [m["seq"] for m in third["messages"]] == [7]
    assert third["truncated"] is False


@pytest.mark.tkr_settings({"host": {"history_limit": 2}})
async def test_join_without_since_seq_returns_the_last_history_limit(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    for i in range(4):
        await alice.send_text(session_id, f"m{i}")
    ack = await alice.join(session_id)
    assert [m["seq"] for m in ack["messages"]] == [3, 4]


async def test_join_refuses_non_members_and_unknown_sessions(tkr_client):
    alice, mallory = await tkr_client("alice"), await tkr_client("mallory")
    session_id = await alice.create_session()
    denied = await mallory.call("session:join", {"session_id": session_id})
    assert denied["error"]["code"] == "permission.not_member"
    missing = await mallory.call("session:join", {"session_id": "no-such-session"})
    assert missing["error"]["code"] == "not_found.session"
    bad = await mallory.call("session:join", {"session_id": session_id, "since_seq": "3"})
    assert bad["error"]["code"] == "validation.payload"
    negative = await alice.call("session:join", {"session_id": session_id, "since_seq": -1})
    assert negative["error"]["code"] == "validation.payload"


# --- live delivery, presence, leave ----------------------------------------------------


async def test_message_reaches_other_members_but_not_the_sending_socket(tkr_client):
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await _session_with(alice, bob)
    await bob.join(session_id)
    ack = await alice.send_text(session_id, "hello bob")
    message = await bob.wait_for("message", lambda m: m["id"] == ack["message"]["id"])
    assert message["payload"] == {"text": "hello bob", "format": "plain"}
    assert message["sender"] == {"id": "alice", "kind": "user"}
    assert message["seq"] == ack["message"]["seq"] == 1
    assert message["client_id"] == ack["client_id"]
    assert message["status"] == "complete"
    # A sentinel from bob: alice gets it, and nothing of her own came before it.
    sentinel = await bob.send_text(session_id, "sentinel")
    await alice.wait_for("message", lambda m: m["id"] == sentinel["message"]["id"])
    assert [m["id"] for m in alice.received("message")] == [sentinel["message"]["id"]]


async def test_presence_goes_online_and_offline_once_per_member(tkr_client):
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await _session_with(alice, bob)
    await bob.join(session_id)
    second_tab = await tkr_client("bob")
    await second_tab.join(session_id)
    online = await alice.wait_for("presence", lambda p: p["member"]["id"] == "bob" and p["state"] == "online")
    assert online == {"session_id": session_id, "member": {"id": "bob", "kind": "user"}, "state": "online"}
    await bob.ok("session:leave", {"session_id": session_id})
    # A sentinel presence: carol comes online after bob's first tab left.
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "carol", "kind": "user"}})
    carol = await tkr_client("carol")
    await carol.join(session_id)
    await alice.wait_for("presence", lambda p: p["member"]["id"] == "carol" and p["state"] == "online")
    assert not [p for p in alice.received("presence") if p["member"]["id"] == "bob" and p["state"] == "offline"]
    await second_tab.close()
    await alice.wait_for("presence", lambda p: p["member"]["id"] == "bob" and p["state"] == "offline")
    assert len([p for p in alice.received("presence") if p["member"]["id"] == "bob" and p["state"] == "online"]) == 1


async def test_leave_stops_delivery(tkr_client):
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await _session_with(alice, bob)
    await bob.join(session_id)
    await bob.ok("session:leave", {"session_id": session_id})
    after = await alice.send_text(session_id, "after leave")
    # A sentinel in another session bob still follows, sent after: once it is
    # there, the message of the session he left would have been too.
    other = await _session_with(alice, bob)
    await bob.join(other)
    sentinel = await alice.send_text(other, "sentinel")
    await bob.wait_for("message", lambda m: m["id"] == sentinel["message"]["id"])
    assert after["ok"] and [m["id"] for m in bob.received("message")] == [sentinel["message"]["id"]]
    assert (await bob.call("session:leave", {}))["error"]["code"] == "validation.payload"


# --- session:invite ---------------------------------------------------------------


async def test_only_the_creator_may_invite(tkr_client):
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await _session_with(alice, bob)
    refused = await bob.call("session:invite", {"session_id": session_id, "member": {"id": "carol", "kind": "user"}})
    assert refused["error"]["code"] == "permission.invite"
    invited = await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "carol", "kind": "user"}})
    assert "carol" in {m["id"] for m in invited["session"]["members"]}
    again = await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "carol", "kind": "user"}})
    assert [m["id"] for m in again["session"]["members"]].count("carol") == 1
    bad_kind = await alice.call("session:invite", {"session_id": session_id, "member": {"id": "x", "kind": "robot"}})
    assert bad_kind["error"]["code"] == "validation.payload"


# --- message:history ------------------------------------------------------------------


async def test_history_pages_backwards(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    for i in range(5):
        await alice.send_text(session_id, f"m{i}")
    latest = await alice.ok("message:history", {"session_id": session_id, "limit": 2})
    assert [m["seq"] for m in latest["messages"]] == [4, 5] and latest["has_more"] is True
    older = await alice.ok("message:history", {"session_id": session_id, "before_seq": 4, "limit": 2})
    assert [m["seq"] for m in older["messages"]] == [2, 3] and older["has_more"] is True
    oldest = await alice.ok("message:history", {"session_id": session_id, "before_seq": 2, "limit": 2})
    assert [m["seq"] for m in oldest["messages"]] == [1] and oldest["has_more"] is False


@pytest.mark.parametrize("limit", [0, 201, "5", 2.5])
async def test_history_refuses_a_bad_limit(tkr_client, limit):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.call("message:history", {"session_id": session_id, "limit": limit})
    assert ack["error"]["code"] == "validation.payload"
    assert ack["error"]["details"]["fields"][0]["field"] == "limit"


async def test_history_is_for_members_only(tkr_client):
    alice, mallory = await tkr_client("alice"), await tkr_client("mallory")
    session_id = await alice.create_session()
    await alice.send_text(session_id, "secret")
    ack = await mallory.call("message:history", {"session_id": session_id})
    assert ack["error"]["code"] == "permission.not_member"
    assert "secret" not in str(ack)


# --- message:receipt ------------------------------------------------------------------


async def test_receipts_reach_the_senders_sockets(tkr_client):
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await _session_with(alice, bob)
    sent = await alice.send_text(session_id, "did you read this?")
    await bob.ok("message:receipt", {"session_id": session_id, "seq": sent["message"]["seq"], "status": "read"})
    receipt = await alice.wait_for("receipt")
    assert receipt == {"session_id": session_id, "message_id": sent["message"]["id"], "seq": 1, "status": "read", "by": "bob"}


async def test_receipt_errors(tkr_client):
    alice, mallory = await tkr_client("alice"), await tkr_client("mallory")
    session_id = await alice.create_session()
    await alice.send_text(session_id, "x")
    assert (await alice.call("message:receipt", {"session_id": session_id, "seq": 9, "status": "read"}))["error"]["code"] == (
        "not_found.message"
    )
    assert (await alice.call("message:receipt", {"session_id": session_id, "seq": 1, "status": "seen"}))["error"]["code"] == (
        "validation.payload"
    )
    assert (await mallory.call("message:receipt", {"session_id": session_id, "seq": 1, "status": "read"}))["error"]["code"] == (
        "permission.not_member"
    )


# --- transports --------------------------------------------------------------------


async def test_polling_and_websocket_clients_talk_to_each_other(tkr_client):
    alice = await tkr_client("alice", transports=["polling"])
    bob = await tkr_client("bob", transports=["websocket"])
    session_id = await _session_with(alice, bob)
    await bob.join(session_id)
    await alice.send_text(session_id, "over polling")
    assert (await bob.wait_for("message"))["payload"]["text"] == "over polling"
    await bob.send_text(session_id, "over websocket")
    assert (await alice.wait_for("message"))["payload"]["text"] == "over websocket"
