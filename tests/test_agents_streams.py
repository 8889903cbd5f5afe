"""A streamed reply as docs/protocol.md gives it, end to end through a real host.

docs/protocol.md, `/agents`: `stream:end` answers `{ok, message: {id, seq, ts}}` and the
reply is stored once as a `text` message; "The `client_id` of a streamed reply is
`stream:<message id>`" (Message); a reply that fails the `text` payload answers
`validation.payload`, its fields named `payload.…`; an agent that disconnects mid-stream
has the session sent an `error` `agent.stream_aborted` with `details: {message_id, agent_id}`
and `session_id`, with the code's default hint ("The partial reply was kept; ask again if you
need the rest.", the table of codes) when a reply was kept, and `Ask the agent again.` when
no chunk had arrived.
"""

from __future__ import annotations

from typing import Any

#: docs/protocol.md's table of codes: agent.stream_aborted's default hint.
KEPT_HINT = "The partial reply was kept; ask again if you need the rest."


async def _streaming(tkr_client: Any) -> tuple[Any, Any, str, str]:
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    return alice, echo, session_id, message_id


async def test_an_ended_stream_is_acked_as_the_text_message_stored(tkr_client: Any) -> None:
    alice, echo, session_id, message_id = await _streaming(tkr_client)
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "All done."})
    end = await echo.ok("stream:end", {"message_id": message_id})
    [stored] = await alice.history(session_id)
    assert end["message"] == {"id": stored["id"], "seq": stored["seq"], "ts": stored["ts"]}
    assert stored["id"] == message_id and stored["seq"] == 1
    assert stored["type"] == "text" and stored["client_id"] == f"stream:{message_id}"


async def test_a_reply_that_is_no_text_payload_names_its_field_under_payload(tkr_client: Any) -> None:
    _, echo, _, message_id = await _streaming(tkr_client)
    refused = await echo.call("stream:end", {"message_id": message_id, "payload": {"text": ""}})
    assert refused["ok"] is False and refused["error"]["code"] == "validation.payload", refused
    assert [problem["field"] for problem in refused["error"]["details"]["fields"]] == ["payload.text"]


async def test_an_aborted_reply_that_was_kept_says_so_and_names_the_agent(tkr_client: Any) -> None:
    alice, echo, session_id, message_id = await _streaming(tkr_client)
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "half"})
    await echo.close()
    error = await alice.wait_for("error")
    assert error["code"] == "agent.stream_aborted" and error["session_id"] == session_id
    assert error["details"] == {"message_id": message_id, "agent_id": "echo"}
    assert error["hint"] == KEPT_HINT


async def test_an_aborted_reply_with_no_text_asks_for_it_again(tkr_client: Any) -> None:
    alice, echo, session_id, message_id = await _streaming(tkr_client)
    await echo.close()
    error = await alice.wait_for("error")
    assert error["code"] == "agent.stream_aborted" and error["session_id"] == session_id
    assert error["details"] == {"message_id": message_id, "agent_id": "echo"}
    assert error["hint"] == "Ask the agent again."
