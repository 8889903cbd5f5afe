"""Presence on `session:leave`, through a real host.

docs/protocol.md ("Presence"): a member goes `offline` in a session when its last
socket leaves it or disconnects; the principal stays a member (`session:leave`).
"""

from __future__ import annotations

from typing import Any

from tkr_host.testing import eventually


async def test_the_last_socket_leaving_is_offline_and_the_member_may_join_again(tkr_client: Any) -> None:
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await alice.create_session()
    await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob", "kind": "user"}})
    await bob.join(session_id)
    await alice.wait_for("presence", lambda p: p["member"]["id"] == "bob" and p["state"] == "online")
    assert await bob.ok("session:leave", {"session_id": session_id}) == {"ok": True}
    offline = await alice.wait_for("presence", lambda p: p["member"]["id"] == "bob" and p["state"] == "offline")
    assert offline == {"session_id": session_id, "member": {"id": "bob", "kind": "user"}, "state": "offline"}
    # Still a member: he may join again, and is online again.
    await bob.join(session_id)
    await eventually(lambda: len([p for p in alice.received("presence") if p["member"]["id"] == "bob" and p["state"] == "online"]) == 2,
                     what="bob online again")
