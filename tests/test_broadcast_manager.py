"""The host's default client manager: one encode and no task per recipient, the same deliveries."""

from __future__ import annotations

from tkr_host.defaults.manager import BroadcastManager


async def test_the_host_uses_the_broadcast_manager(tkr_host):
    assert isinstance(tkr_host.host.sio.manager, BroadcastManager)


async def test_a_broadcast_reaches_every_other_member_once_in_seq_order(tkr_client):
    alice, bob, carol = await tkr_client("alice"), await tkr_client("bob"), await tkr_client("carol")
    session_id = await alice.create_session("team")
    for member in (bob, carol):
        await alice.ok("session:invite", {"session_id": session_id, "member": {"id": member.principal_id, "kind": "user"}})
        await member.join(session_id)
    acks = [await alice.send_text(session_id, f"m{n}") for n in range(20)]
    assert all(ack["ok"] for ack in acks)
    sentinel = await bob.send_text(session_id, "sentinel")
    for member in (alice, carol):
        await member.wait_for("message", lambda m: m["id"] == sentinel["message"]["id"])
    await bob.wait_for("message", lambda m: m["seq"] == 20)
    for member in (bob, carol):
        from_alice = [m["seq"] for m in member.received("message") if m["sender"]["id"] == "alice"]
        assert from_alice == list(range(1, 21))
    # docs/protocol.md: `message` goes to the session's members, the sender's own
    # socket skipped. After the sentinel: alice got bob's message, none of her own.
    assert [m["sender"]["id"] for m in alice.received("message")] == ["bob"]
    assert all(m["sender"]["id"] == "alice" for m in bob.received("message"))
