"""The messages (and rate limits' hints) the host gives instead of a code's default.

docs/protocol.md (Error): "Where the host knows more than a code's default message
says, the message … says it", with the table of those messages; a rate limit's hint
gives the seconds to wait with one decimal.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tkr_host.testing import ConnectRefused

WAIT = r"Wait \d+\.\d s before "


async def test_the_messages_of_a_refused_event(tkr_client: Any, tkr_host: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    unknown = await alice.call("no:such-event", {})
    assert unknown["error"]["message"] == "/chat has no such event."
    not_object = await alice.sio.call("session:list", "text", namespace="/chat", timeout=5)
    assert not_object["error"]["message"] == "The event must carry exactly one JSON object."
    receipt = await alice.call("message:receipt", {"session_id": session_id, "seq": 7, "status": "read"})
    assert receipt["error"]["message"] == "The session has no message with that seq."
    # As tests/contract/test_gaps.py does it: the host forgets the socket, Socket.IO still delivers.
    assert tkr_host.host.connections.pop(("/chat", alice.sio.get_sid("/chat")), None) is not None
    gone = await alice.call("session:list")
    assert (gone["error"]["code"], gone["error"]["message"]) == ("protocol.not_connected", "This socket is not connected to the namespace.")


@pytest.mark.tkr_settings({"host": {"max_payload_bytes": 1000}})
async def test_the_message_of_a_payload_too_large(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    ack = await alice.call("session:create", {"title": "t", "metadata": {"x": "y" * 2000}})
    size = ack["error"]["details"]["size"]
    assert ack["error"]["message"] == f"The payload is {size} bytes; at most 1000 are allowed."


async def test_the_messages_of_a_refused_connect(tkr_client: Any, tkr_connect: Any) -> None:
    with pytest.raises(ConnectRefused) as no_plugin:
        await tkr_connect("not-a-token")
    assert no_plugin.value.error["message"] == "No authentication plugin accepted the credentials."
    with pytest.raises(ConnectRefused) as kind:
        await tkr_client("alice", namespace="/agents")
    assert kind.value.error["message"] == "A principal of kind 'user' may not connect to /agents."


@pytest.mark.tkr_settings({"plugins": {"ratelimit": {"connects_per_minute": 1, "connect_burst": 1}}})
async def test_the_message_and_hint_of_too_many_connects(tkr_client: Any) -> None:
    await tkr_client("alice")
    with pytest.raises(ConnectRefused) as refused:
        await tkr_client("bob")
    error = refused.value.error
    assert error["message"] == "Too many connects from this address."
    assert re.fullmatch(WAIT + re.escape("reconnecting."), error["hint"]), error["hint"]


@pytest.mark.tkr_settings({"plugins": {"ratelimit": {"sessions_per_minute": 1, "session_burst": 1}}})
async def test_the_message_and_hint_of_too_many_sessions(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    await alice.create_session()
    error = (await alice.call("session:create", {}))["error"]
    assert error["message"] == "Too many new sessions."
    assert re.fullmatch(WAIT + re.escape("creating another session."), error["hint"]), error["hint"]
