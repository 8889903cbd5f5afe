"""``message:ack`` is for the agent a message was delivered to (issue 7, item 5).

docs/protocol.md (``/agents``): an agent that has no delivery of a message gets the
same ``not_found.message`` as for an id that does not exist, and nothing changes;
the agent it was delivered to may ack it, twice if it likes.
"""

from __future__ import annotations


async def test_an_agent_cannot_ack_what_was_not_delivered_to_it(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo", "other"])
    elsewhere = await alice.create_session(agents=["echo"])
    for_echo = await alice.send_text(session_id, "for echo", to="echo")
    for_nobody = await alice.send_text(session_id, "for the session")
    far_away = await alice.send_text(elsewhere, "another session", to="echo")

    other = await tkr_client("other", kind="agent", namespace="/agents")
    missing = await other.call("message:ack", {"message_id": "00000000-0000-4000-8000-000000000000"})
    assert missing["ok"] is False and missing["error"]["code"] == "not_found.message"
    for sent in (for_echo, for_nobody, far_away):
        ack = await other.call("message:ack", {"message_id": sent["message"]["id"]})
        assert ack["ok"] is False, ack
        assert (ack["error"]["code"], ack["error"]["message"]) == (missing["error"]["code"], missing["error"]["message"])

    # Nothing changed: echo still gets both of its messages, and may ack each twice.
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    for sent in (for_echo, far_away):
        await echo.wait_for("message", lambda m, sent=sent: m["id"] == sent["message"]["id"])
        await echo.ok("message:ack", {"message_id": sent["message"]["id"]})
        await echo.ok("message:ack", {"message_id": sent["message"]["id"]})
    not_mine = await echo.call("message:ack", {"message_id": for_nobody["message"]["id"]})
    assert not_mine["error"]["code"] == "not_found.message"
