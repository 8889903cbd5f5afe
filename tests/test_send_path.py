"""The send path without an idempotency read before each send (docs/performance.md):
a resend is still answered as the first message, whatever the type now says of it."""

from __future__ import annotations


async def test_a_resend_the_payload_model_refuses_is_answered_as_the_first_message(tkr_client):
    # PROTOCOL.md 1.1: the same (sender, session_id, client_id) again stores nothing new
    # and returns the first message with "duplicate": true. The resend's text is empty,
    # which the text type refuses (1 to 32,768 characters): the stored message wins.
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    first = await alice.send_text(session_id, "once", client_id="c-1")
    again = await alice.send_text(session_id, "", client_id="c-1")
    assert again["ok"] is True and again["duplicate"] is True
    assert again["message"] == first["message"]
    assert [m["payload"]["text"] for m in await alice.history(session_id)] == ["once"]


async def test_a_new_send_the_payload_model_refuses_is_still_refused(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.call("message:send", {"session_id": session_id, "client_id": "c-1", "type": "text", "payload": {"text": ""}})
    assert ack["ok"] is False and ack["error"]["code"] == "validation.payload"
    assert await alice.history(session_id) == []
    # The refused client_id was never stored: it may be used for a good message.
    ok = await alice.send_text(session_id, "now", client_id="c-1")
    assert ok["duplicate"] is False and ok["message"]["seq"] == 1


async def test_resends_in_flight_together_store_one_message_and_keep_seq_gapless(tkr_client):
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    first = await alice.send_text(session_id, "a", client_id="c-a")
    acks = [await alice.send_text(session_id, "a", client_id="c-a"), await alice.send_text(session_id, "b", client_id="c-b"),
            await alice.send_text(session_id, "a", client_id="c-a")]
    assert [ack["duplicate"] for ack in acks] == [True, False, True]
    assert acks[0]["message"] == acks[2]["message"] == first["message"]
    assert acks[1]["message"]["seq"] == 2  # the resends took no seq
    assert [(m["seq"], m["payload"]["text"]) for m in await alice.history(session_id)] == [(1, "a"), (2, "b")]
