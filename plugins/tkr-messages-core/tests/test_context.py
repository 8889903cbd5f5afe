"""The context type through a real host: targets, delivery, expiry, context:list."""

from __future__ import annotations

import uuid

from tkr_host.testing import eventually


def context(session_id: str, **payload) -> dict:
    return {"session_id": session_id, "client_id": f"c-{uuid.uuid4().hex[:10]}", "type": "context", "payload": payload}


async def agents_online(watcher, session_id: str, *agents: str) -> None:
    """Wait until ``watcher`` (a /chat member that follows the session) saw each agent come online."""
    for agent in agents:
        await watcher.wait_for("presence", lambda p, agent=agent: p["session_id"] == session_id and p["member"]["id"] == agent
                               and p["state"] == "online")


async def test_context_goes_to_every_agent_member_by_default(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["a", "b"])
    agent_a = await tkr_client("a", kind="agent", namespace="/agents")
    agent_b = await tkr_client("b", kind="agent", namespace="/agents")
    await agents_online(alice, session_id, "a", "b")
    ack = await alice.call("message:send", context(session_id, context_id="brief", data={"goal": "ship"}))
    assert ack["ok"], ack
    for agent in (agent_a, agent_b):
        got = await agent.wait_for("message", lambda m: m["type"] == "context")
        assert got["payload"]["data"] == {"goal": "ship"} and got["payload"]["targets"] == ["a", "b"]
        listed = await agent.ok("context:list", {"session_id": session_id})
        assert [c["context_id"] for c in listed["contexts"]] == ["brief"]


async def test_targeted_context_reaches_only_its_targets(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["a", "b"])
    agent_a = await tkr_client("a", kind="agent", namespace="/agents")
    agent_b = await tkr_client("b", kind="agent", namespace="/agents")
    await agents_online(alice, session_id, "a", "b")
    await alice.ok("message:send", context(session_id, context_id="for-b", data={"k": 1}, targets=["b"]))
    await agent_b.wait_for("message", lambda m: m["type"] == "context")
    # The sentinel: a context for a, sent after; once it is there, for-b would have been too.
    await alice.ok("message:send", context(session_id, context_id="for-a", data={}, targets=["a"]))
    await agent_a.wait_for("message", lambda m: m["type"] == "context" and m["payload"]["context_id"] == "for-a")
    assert [m["payload"]["context_id"] for m in agent_a.received("message")] == ["for-a"]
    assert [c["context_id"] for c in (await agent_a.ok("context:list", {"session_id": session_id}))["contexts"]] == ["for-a"]
    assert [c["context_id"] for c in (await agent_b.ok("context:list", {"session_id": session_id}))["contexts"]] == ["for-b"]


async def test_expired_context_is_not_listed(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["a"])
    agent = await tkr_client("a", kind="agent", namespace="/agents")
    await alice.ok("message:send", context(session_id, context_id="short", data={}, ttl_s=1))
    await alice.ok("message:send", context(session_id, context_id="long", data={}))
    assert {c["context_id"] for c in (await agent.ok("context:list", {"session_id": session_id}))["contexts"]} == {"short", "long"}
    # ttl_s is at least 1 (docs/protocol.md): wait for the expiry itself, bounded, not a fixed pause.

    async def only_long_listed() -> bool:
        return [c["context_id"] for c in (await agent.ok("context:list", {"session_id": session_id}))["contexts"]] == ["long"]

    await eventually(only_long_listed, timeout=5, what="the 1 s context to expire")


async def test_context_errors(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["a"])
    stranger = await alice.call("message:send", context(session_id, context_id="x", data={}, targets=["nobody"]))
    assert stranger["error"]["code"] == "validation.recipient"
    huge = await alice.call("message:send", context(session_id, context_id="x", data={"blob": "x" * 70_000}))
    assert huge["error"]["code"] == "validation.payload"
    bad_ttl = await alice.call("message:send", context(session_id, context_id="x", data={}, ttl_s=0))
    assert bad_ttl["error"]["code"] == "validation.payload"
    outsider = await tkr_client("z", kind="agent", namespace="/agents")
    assert (await outsider.call("context:list", {"session_id": session_id}))["error"]["code"] == "permission.not_member"
    assert await alice.history(session_id) == []
