"""Principals of different kinds never share a membership (issue 7, item 3).

docs/protocol.md ("Principals of different kinds"): a principal is its kind and
its id together. ``user:bot1`` and ``agent:bot1`` are two principals: a session
that has the agent ``bot1`` as a member does not have the user ``bot1``, and
every check (join, read, send, receipt, invite, tasks, contexts, deliveries,
the HTTP history, receipts sent to a principal's sockets) compares both.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest


def chat_events(session_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every /chat event that reads or changes a session, with a payload a member could send."""
    return [
        ("session:join", {"session_id": session_id}),
        ("message:history", {"session_id": session_id}),
        ("message:send", {"session_id": session_id, "client_id": "intruder-1", "type": "text", "payload": {"text": "hi"}}),
        ("message:receipt", {"session_id": session_id, "seq": 1, "status": "read"}),
        ("session:invite", {"session_id": session_id, "member": {"id": "mallory", "kind": "user"}}),
    ]


async def assert_kept_out(client: Any, session_id: str) -> None:
    for event, payload in chat_events(session_id):
        ack = await client.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "permission.not_member", (client.principal_id, event, ack)
    listed = await client.ok("session:list")
    assert session_id not in [session["id"] for session in listed["sessions"]]


async def http_history(url: str, token: str, session_id: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/v1/sessions/{session_id}/messages",
                                                         headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json(content_type=None)


async def test_a_user_named_like_an_agent_member_is_not_a_member(tkr_host, tkr_client, tkr_token):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["bot1"])
    asked = await alice.send_text(session_id, "for the agent bot1", to="bot1")
    assert asked["ok"], asked
    impostor = await tkr_client("bot1", kind="user")
    await assert_kept_out(impostor, session_id)
    status, body = await http_history(tkr_host.url, tkr_token("bot1", kind="user"), session_id)
    assert (status, body["error"]["code"]) == (403, "permission.not_member")
    # The agent itself is a member, and still gets what was addressed to it.
    agent = await tkr_client("bot1", kind="agent", namespace="/agents")
    got = await agent.wait_for("message", lambda m: m["id"] == asked["message"]["id"])
    assert got["to"] == "bot1"


async def test_an_agent_named_like_a_user_member_is_not_a_member(tkr_host, tkr_client, tkr_token):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    await alice.send_text(session_id, "alice's own words")
    for kind in ("agent", "service"):
        impostor = await tkr_client("alice", kind=kind)
        await assert_kept_out(impostor, session_id)
        status, body = await http_history(tkr_host.url, tkr_token("alice", kind=kind), session_id)
        assert (status, body["error"]["code"]) == (403, "permission.not_member"), kind
    # On /agents: no presence in alice's sessions, no contexts of them.
    await alice.join(session_id)
    agent = await tkr_client("alice", kind="agent", namespace="/agents")
    contexts = await agent.call("context:list", {"session_id": session_id})
    assert contexts["error"]["code"] == "permission.not_member"
    # A sentinel presence after the agent's connect: bob, a real member, comes online.
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    bob = await tkr_client("bob")
    await bob.join(session_id)
    await alice.wait_for("presence", lambda p: p["member"] == {"id": "bob", "kind": "user"} and p["state"] == "online")
    assert not [p for p in alice.received("presence") if p["member"]["kind"] != "user"]
    stream = await agent.call("stream:start", {"session_id": session_id})
    assert stream["error"]["code"] == "permission.not_member"
    sent = await agent.call("message:send", {"session_id": session_id, "client_id": "x", "type": "text", "payload": {"text": "hi"}})
    assert sent["error"]["code"] == "permission.not_member"


async def test_tasks_of_a_session_stay_with_its_members_of_the_right_kind(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["worker"])
    created = await alice.call("message:send", {"session_id": session_id, "client_id": "t1", "type": "task",
                                                "payload": {"task_id": "job-1", "action": "create", "assignee": "worker"}})
    assert created["ok"], created
    for principal, kind in (("alice", "agent"), ("worker", "user")):
        impostor = await tkr_client(principal, kind=kind, namespace="/tasks")
        for event in ("task:get", "task:subscribe"):
            ack = await impostor.call(event, {"session_id": session_id, "task_id": "job-1"})
            assert ack["ok"] is False and ack["error"]["code"] == "not_found.task", (principal, kind, ack)
    member = await tkr_client("alice", namespace="/tasks")
    assert (await member.ok("task:get", {"session_id": session_id, "task_id": "job-1"}))["task"]["assignee"] == "worker"


async def test_receipts_go_to_the_sender_of_the_right_kind_only(tkr_client):
    alice = await tkr_client("alice")
    bob = await tkr_client("bob")
    shadow = await tkr_client("alice", kind="agent")  # an agent named alice, on /chat
    session_id = await alice.create_session()
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    sent = await alice.send_text(session_id, "read me")
    await bob.ok("message:receipt", {"session_id": session_id, "seq": sent["message"]["seq"], "status": "read"})
    await alice.wait_for("receipt", lambda r: r["message_id"] == sent["message"]["id"])
    # A sentinel: a receipt for the agent's own message, sent to its sockets after the first.
    own_session = await shadow.create_session()
    await shadow.ok("session:invite", {"session_id": own_session, "member": {"id": "bob", "kind": "user"}})
    own = await shadow.send_text(own_session, "mine")
    await bob.ok("message:receipt", {"session_id": own_session, "seq": own["message"]["seq"], "status": "read"})
    await shadow.wait_for("receipt", lambda r: r["message_id"] == own["message"]["id"])
    # Both receipts went out from this host in order: had the first reached the
    # agent's socket, it would be there before the sentinel.
    assert [r["message_id"] for r in shadow.received("receipt")] == [own["message"]["id"]]
    assert [r["message_id"] for r in alice.received("receipt")] == [sent["message"]["id"]]


async def test_an_id_names_one_principal_in_a_session(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["bot1"])
    clash = await alice.call("session:invite", {"session_id": session_id, "member": {"id": "bot1", "kind": "user"}})
    assert clash["ok"] is False and clash["error"]["code"] == "conflict.member_id", clash
    joined = await alice.join(session_id)
    assert [(m["id"], m["kind"]) for m in joined["session"]["members"]] == [("alice", "user"), ("bot1", "agent")]
    again = await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bot1", "kind": "agent"}})
    assert len(again["session"]["members"]) == 2  # inviting a member again changes nothing


@pytest.mark.tkr_settings({"plugins": {"ratelimit": {"message_burst": 2, "messages_per_second": 0.01}}})
async def test_a_user_named_like_an_agent_does_not_use_up_its_message_budget(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["bot1"])
    impostor = await tkr_client("bot1", kind="user")
    own = await impostor.create_session()
    answers = [await impostor.send_text(own, f"m{i}") for i in range(3)]
    assert [a["ok"] for a in answers] == [True, True, False]
    assert answers[2]["error"]["code"] == "rate_limit.exceeded"
    agent = await tkr_client("bot1", kind="agent", namespace="/agents")
    sent = await agent.send_text(session_id, "the agent's own budget")
    assert sent["ok"], sent
