"""The messages (and hints) the host gives instead of a code's default on the send and stream paths.

docs/protocol.md (Error), the table of messages the host gives where it knows more than a
code's default: `message:send`'s `to` and `in_reply_to`, the 17th open stream, a streamed
reply past 32 768 characters, an agent that disconnects while streaming, and `stream:stop`
of a reply not being streamed.
"""

from __future__ import annotations

from typing import Any


def error_of(ack: dict[str, Any]) -> tuple[str, str, str]:
    assert ack["ok"] is False, ack
    return ack["error"]["code"], ack["error"]["message"], ack["error"]["hint"]


async def test_a_send_to_no_agent_or_in_reply_to_no_message(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    to = await alice.call("message:send", {"session_id": session_id, "type": "text", "payload": {"text": "hi"},
                                           "client_id": "to-1", "to": "nobody"})
    assert error_of(to)[:2] == ("validation.recipient", "`to` names no agent of this session.")
    reply = await alice.call("message:send", {"session_id": session_id, "type": "text", "payload": {"text": "hi"},
                                              "client_id": "reply-1", "in_reply_to": "no-such-message"})
    assert error_of(reply)[:2] == ("not_found.message", "`in_reply_to` names no message of this session.")


async def test_the_17th_open_stream_and_a_reply_past_its_limit(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    opened = [(await echo.ok("stream:start", {"session_id": session_id}))["message_id"] for _ in range(16)]
    assert error_of(await echo.call("stream:start", {"session_id": session_id})) == (
        "rate_limit.streams", "At most 16 streams may be open on one connection.",
        "End an open stream with stream:end before starting another.")
    await echo.ok("stream:chunk", {"message_id": opened[0], "delta": "x" * 32_768})
    assert error_of(await echo.call("stream:chunk", {"message_id": opened[0], "delta": "y"})) == (
        "validation.too_large", "A streamed reply may hold at most 32768 characters.",
        "End this stream and continue in a new one.")


async def test_an_agent_gone_while_streaming_and_a_stop_of_no_stream(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    stop = await alice.call("stream:stop", {"session_id": session_id, "message_id": "no-such-stream"})
    assert error_of(stop) == ("not_found.stream", "No reply with that id is being streamed in this session.",
                              "The reply may have ended already; its final `message` holds it.")
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "half a reply"})
    await echo.close()
    error = await alice.wait_for("error")
    assert (error["code"], error["message"]) == ("agent.stream_aborted", "Agent echo disconnected while replying.")
