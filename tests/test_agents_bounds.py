"""The documented bounds of the `/agents` events, at both edges, through a real host.

docs/protocol.md, `/agents`: `session_id`, `message_id` and `in_reply_to` are 1–64
characters and `to` 1–200, as in the path of a message; `delta` ≤ 65536, `detail` ≤ 200.
A length just outside answers `validation.payload`; one at the bound passes the
payload check and meets the next one (no such session, stream, message or agent).
"""

from __future__ import annotations

from typing import Any

import pytest

Payload = dict[str, Any]

#: (event, payload at or past a bound, the documented answer).
CASES: list[tuple[str, Payload, str]] = [
    ("stream:start", {"session_id": ""}, "validation.payload"),
    ("stream:start", {"session_id": "s" * 65}, "validation.payload"),
    ("stream:start", {"session_id": "s"}, "not_found.session"),
    ("stream:start", {"session_id": "s" * 64}, "not_found.session"),
    ("stream:chunk", {"message_id": "", "delta": "x"}, "validation.payload"),
    ("stream:chunk", {"message_id": "m" * 65, "delta": "x"}, "validation.payload"),
    ("stream:chunk", {"message_id": "m", "delta": "x"}, "not_found.stream"),
    ("stream:chunk", {"message_id": "m" * 64, "delta": "x"}, "not_found.stream"),
    ("stream:end", {"message_id": ""}, "validation.payload"),
    ("stream:end", {"message_id": "m" * 65}, "validation.payload"),
    ("stream:end", {"message_id": "m"}, "not_found.stream"),
    ("stream:end", {"message_id": "m" * 64}, "not_found.stream"),
    ("message:ack", {"message_id": ""}, "validation.payload"),
    ("message:ack", {"message_id": "m" * 65}, "validation.payload"),
    ("message:ack", {"message_id": "m"}, "not_found.message"),
    ("message:ack", {"message_id": "m" * 64}, "not_found.message"),
    ("context:list", {"session_id": ""}, "validation.payload"),
    ("context:list", {"session_id": "s" * 65}, "validation.payload"),
    ("context:list", {"session_id": "s"}, "not_found.session"),
    ("context:list", {"session_id": "s" * 64}, "not_found.session"),
    ("agent:status", {"session_id": "", "state": "idle"}, "validation.payload"),
    ("agent:status", {"session_id": "s" * 65, "state": "idle"}, "validation.payload"),
    ("agent:status", {"session_id": "s", "state": "idle"}, "not_found.session"),
    ("agent:status", {"session_id": "s" * 64, "state": "idle"}, "not_found.session"),
    # docs/protocol.md, Acknowledgements: the host's payloads are strict, an unknown key is refused.
    ("stream:start", {"session_id": "s", "colour": "red"}, "validation.payload"),
    ("message:ack", {"message_id": "m", "colour": "red"}, "validation.payload"),
]


@pytest.mark.parametrize(("event", "payload", "code"), CASES)
async def test_an_agents_event_is_checked_at_its_documented_bounds(tkr_client: Any, event: str, payload: Payload, code: str) -> None:
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    ack = await echo.call(event, payload)
    assert ack["ok"] is False and ack["error"]["code"] == code, ack


@pytest.mark.parametrize(("field", "value", "code"), [
    ("in_reply_to", "", "validation.payload"), ("in_reply_to", "m" * 65, "validation.payload"),
    ("in_reply_to", "m" * 64, "not_found.message"), ("in_reply_to", "m", "not_found.message"),
    ("to", "", "validation.payload"), ("to", "a" * 201, "validation.payload"), ("to", "a" * 200, "validation.recipient"),
    ("to", "a", "validation.recipient"),
])
async def test_stream_start_checks_in_reply_to_and_to_at_their_bounds(tkr_client: Any, field: str, value: str, code: str) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    ack = await echo.call("stream:start", {"session_id": session_id, field: value})
    assert ack["ok"] is False and ack["error"]["code"] == code, ack


async def test_a_reply_holds_up_to_32768_characters_and_a_chunk_past_them_is_too_large(tkr_client: Any) -> None:
    # docs/protocol.md, `/agents`: a chunk that would take the reply past 32 768 characters
    # is refused with `validation.too_large`, the chunks before it stay, the stream stays open.
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "x" * 32767})
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "y"})
    over = await echo.call("stream:chunk", {"message_id": message_id, "delta": "z"})
    assert over["ok"] is False and over["error"]["code"] == "validation.too_large", over
    ended = await echo.ok("stream:end", {"message_id": message_id})
    stored = await alice.wait_for("message", lambda m: m["id"] == ended["message"]["id"])
    assert stored["payload"]["text"] == "x" * 32767 + "y"


async def test_a_chunk_holds_up_to_65536_characters_and_a_status_detail_up_to_200(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    # A delta of 65536 is a valid payload, only too much for one reply (32 768 characters).
    whole = await echo.call("stream:chunk", {"message_id": message_id, "delta": "x" * 65536})
    assert whole["ok"] is False and whole["error"]["code"] == "validation.too_large", whole
    over = await echo.call("stream:chunk", {"message_id": message_id, "delta": "x" * 65537})
    assert over["ok"] is False and over["error"]["code"] == "validation.payload", over
    await echo.ok("agent:status", {"session_id": session_id, "state": "working", "detail": "d" * 200})
    over = await echo.call("agent:status", {"session_id": session_id, "state": "working", "detail": "d" * 201})
    assert over["ok"] is False and over["error"]["code"] == "validation.payload", over


async def test_stream_end_takes_the_status_complete_when_named(tkr_client: Any) -> None:
    # docs/protocol.md, `/agents`: `stream:end {message_id, payload?, status?: "complete"|"incomplete"}`.
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["echo"])
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    message_id = (await echo.ok("stream:start", {"session_id": session_id}))["message_id"]
    await echo.ok("stream:chunk", {"message_id": message_id, "delta": "done"})
    ended = await echo.ok("stream:end", {"message_id": message_id, "status": "complete"})
    stored = await alice.wait_for("message", lambda m: m["id"] == ended["message"]["id"])
    assert stored["payload"]["text"] == "done"


async def test_no_such_stream_carries_the_tables_message_and_hint(tkr_client: Any) -> None:
    # docs/protocol.md's table of codes gives `not_found.stream`'s default message and hint,
    # "the ones an error carries unless it says more".
    echo = await tkr_client("echo", kind="agent", namespace="/agents")
    for event, payload in (("stream:chunk", {"message_id": "m", "delta": "x"}), ("stream:end", {"message_id": "m"})):
        error = (await echo.call(event, payload))["error"]
        assert error["code"] == "not_found.stream", error
        assert error["message"] == "There is no open stream with that id."
        assert error["hint"] == "Start a stream with stream:start and use the message_id it returns."
