"""``agent:status`` on /agents and ``GET /api/v1/agents`` through a real host (PROTOCOL.md 1.1)."""

from __future__ import annotations

from typing import Any

import aiohttp

from tkr_host.testing import eventually

STATES = ("idle", "thinking", "working", "waiting")


async def get_agents(url: str, bearer: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/v1/agents", headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_a_status_reaches_the_session_and_the_join_ack(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    for state in STATES:
        assert (await echo.call("agent:status", {"session_id": session_id, "state": state})) == {"ok": True}
        shown = await alice.wait_for("agent:status", lambda s, state=state: s["state"] == state)
        assert shown["session_id"] == session_id and shown["agent"] == {"id": "echo", "kind": "agent"}
        assert shown["detail"] is None and shown["ts"].endswith("Z")
    await echo.ok("agent:status", {"session_id": session_id, "state": "working", "detail": "reading the file"})
    shown = await alice.wait_for("agent:status", lambda s: s["detail"] == "reading the file")
    # A socket joining later learns the last status from the ack.
    bob_tab = await tkr_client("alice")
    joined = await bob_tab.join(session_id)
    assert joined["agents"] == [{"id": "echo", "state": "working", "detail": "reading the file", "ts": shown["ts"]}]
    # It is not stored: the history holds no message for it.
    assert await alice.history(session_id) == []


async def test_a_status_lapses_when_the_agent_goes_offline(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    await echo.ok("agent:status", {"session_id": session_id, "state": "thinking"})
    assert [a["id"] for a in (await alice.join(session_id))["agents"]] == ["echo"]
    await echo.close()
    await alice.wait_for("presence", lambda p: p["member"]["id"] == "echo" and p["state"] == "offline")
    assert (await alice.join(session_id))["agents"] == []
    # Back online, it has no status until it sets one.
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    await alice.wait_for("presence", lambda p: p["member"]["id"] == "echo" and p["state"] == "online")
    assert (await alice.join(session_id))["agents"] == []


async def test_a_session_made_after_the_agent_connected_works_and_lapses(tkr_client):
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    await echo.ok("agent:status", {"session_id": session_id, "state": "waiting", "detail": "for you"})
    await alice.wait_for("agent:status", lambda s: s["state"] == "waiting")
    assert [a["state"] for a in (await alice.join(session_id))["agents"]] == ["waiting"]
    await echo.close()
    await alice.wait_for("presence", lambda p: p["member"]["id"] == "echo" and p["state"] == "offline")
    assert (await alice.join(session_id))["agents"] == []


async def test_status_errors(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    outsider = await tkr_client("outsider", kind="agent", namespace="/agents")

    async def code(client, payload) -> str:
        ack = await client.call("agent:status", payload)
        assert ack["ok"] is False and ack["error"]["hint"], ack
        return str(ack["error"]["code"])

    assert await code(echo, {"session_id": session_id, "state": "sleeping"}) == "validation.payload"
    assert await code(echo, {"session_id": session_id, "state": "idle", "detail": "x" * 201}) == "validation.payload"
    assert await code(echo, {"session_id": session_id}) == "validation.payload"
    assert await code(echo, {"session_id": session_id, "state": "idle", "extra": 1}) == "validation.payload"
    assert await code(echo, {"session_id": "no-such-session", "state": "idle"}) == "not_found.session"
    assert await code(outsider, {"session_id": session_id, "state": "idle"}) == "permission.not_member"
    assert (await echo.call("agent:status", {"session_id": session_id, "state": "idle", "detail": "x" * 200}))["ok"]
    # A /chat socket has no agent:status event.
    assert (await alice.call("agent:status", {"session_id": session_id, "state": "idle"}))["error"]["code"] == "validation.unknown_event"


async def test_the_agent_directory_lists_connected_agents(tkr_host, tkr_client, tkr_token):
    status, body = await get_agents(tkr_host.url, None)
    assert status == 401 and body["error"]["code"] == "auth.required"
    status, body = await get_agents(tkr_host.url, "not-a-token")
    assert status == 401 and body["error"]["code"] == "auth.invalid"
    user = tkr_token("alice")
    assert await get_agents(tkr_host.url, user) == (200, {"agents": []})

    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents", name="Echo")
    await tkr_client("echo", kind="agent", namespace="/agents", name="Echo")  # a second socket: listed once
    planner = await tkr_client("planner", kind="agent", namespace="/agents")
    await echo.ok("agent:status", {"session_id": session_id, "state": "thinking"})
    status, body = await get_agents(tkr_host.url, user)
    assert status == 200
    assert body["agents"] == [
        {"id": "echo", "name": "Echo", "online": True, "state": "thinking"},
        {"id": "planner", "name": "planner", "online": True, "state": "idle"},
    ]
    await planner.close()

    async def planner_gone() -> bool:
        return [a["id"] for a in (await get_agents(tkr_host.url, user))[1]["agents"]] == ["echo"]

    assert await eventually(planner_gone)
