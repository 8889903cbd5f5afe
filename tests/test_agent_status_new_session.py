"""A session made after an agent connected: its first ``agent:status`` there shows it ``online``.

docs/protocol.md: a member is ``online`` in a session when its first socket joins it; an
agent's socket joins every session it belongs to, including one made after it connected,
which it first shows itself in with ``agent:status``.
"""

from __future__ import annotations


async def test_the_first_status_in_a_new_session_announces_the_agent_online(tkr_client):
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    await echo.ok("agent:status", {"session_id": session_id, "state": "thinking"})
    # The status is the sentinel: the presence is announced before it.
    await alice.wait_for("agent:status", lambda s: s["state"] == "thinking")
    shown = [p for p in alice.received("presence") if p["member"]["id"] == "echo"]
    assert shown == [{"session_id": session_id, "member": {"id": "echo", "kind": "agent"}, "state": "online"}]
    # A second status announces nothing more: the agent is online already.
    await echo.ok("agent:status", {"session_id": session_id, "state": "idle"})
    await alice.wait_for("agent:status", lambda s: s["state"] == "idle")
    assert len([p for p in alice.received("presence") if p["member"]["id"] == "echo"]) == 1
