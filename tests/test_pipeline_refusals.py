"""message:send's refusals as the docs give them, seen by a client and by a plugin.

- docs/protocol.md's table of codes: ``validation.unknown_type``'s ``details.types`` lists the
  types there are (``text``, ``context`` and ``task`` with the default plugins, PROTOCOL.md
  "Message types"); it and ``rate_limit.exceeded`` carry the table's default message (the
  page: "The message and hint are the ones an error carries unless it says more").
- plugins/tkr-guard/README.md: a session the principal is not a member of is an
  ``access_denied`` event, and a refused rate-limited message a ``rate_limited`` one; both reach
  every ``on_security_event`` implementation (docs/plugins.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from tkr_host import SecurityEvent, hookimpl

#: PROTOCOL.md, "Message types": the types of the default plugins.
DOCUMENTED_TYPES = {"text", "context", "task"}


class SecurityEvents:
    """A plugin that keeps every security event it is shown."""

    def __init__(self) -> None:
        self.seen: list[SecurityEvent] = []

    @hookimpl
    def on_security_event(self, host: Any, event: SecurityEvent) -> None:
        self.seen.append(event)


@pytest.fixture
def events() -> SecurityEvents:
    return SecurityEvents()


@pytest.fixture
def tkr_plugins(events: SecurityEvents) -> list[Any]:
    return [events]


async def test_an_unknown_type_lists_the_types_there_are(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.call("message:send", {"session_id": session_id, "client_id": "c-1", "type": "no-such-type", "payload": {}})
    assert ack["ok"] is False and ack["error"]["code"] == "validation.unknown_type"
    assert set(ack["error"]["details"]["types"]) >= DOCUMENTED_TYPES
    assert "no-such-type" not in ack["error"]["details"]["types"]
    assert ack["error"]["message"] == "No plugin provides that message type."  # the table's default message


async def test_a_send_to_a_session_of_others_is_an_access_denied_event(tkr_client: Any, events: SecurityEvents) -> None:
    alice, mallory = await tkr_client("alice"), await tkr_client("mallory")
    session_id = await alice.create_session()
    ack = await mallory.call("message:send", {"session_id": session_id, "client_id": "c-1", "type": "text", "payload": {"text": "hi"}})
    assert ack["ok"] is False and ack["error"]["code"] == "permission.not_member"  # docs/protocol.md's table
    denied = [event for event in events.seen if event.kind == "access_denied"]
    assert len(denied) == 1
    assert (denied[0].principal_id, denied[0].namespace) == ("mallory", "/chat")
    assert session_id[:64] in denied[0].detail  # which session was tried (an id is at most 64 characters)


@pytest.mark.tkr_settings({"plugins": {"ratelimit": {"messages_per_second": 0.001, "message_burst": 1}}})
async def test_a_refused_rate_limited_message_is_a_rate_limited_event(tkr_client: Any, events: SecurityEvents) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    assert (await alice.send_text(session_id, "the burst"))["ok"]
    ack = await alice.call("message:send", {"session_id": session_id, "client_id": "c-2", "type": "text", "payload": {"text": "one more"}})
    assert ack["ok"] is False and ack["error"]["code"] == "rate_limit.exceeded"
    assert ack["error"]["message"] == "Too many messages."  # the table's default message
    limited = [event for event in events.seen if event.kind == "rate_limited"]
    assert len(limited) == 1 and limited[0].principal_id == "alice" and limited[0].namespace == "/chat"


async def test_a_bad_payload_names_its_field_under_payload(tkr_client: Any) -> None:
    # docs/protocol.md, Error: "Fields inside a `message:send` payload are named `payload.<field>`".
    alice = await tkr_client("alice")
    session_id = await alice.create_session()
    ack = await alice.call("message:send", {"session_id": session_id, "client_id": "c-1", "type": "text", "payload": {}})
    assert ack["ok"] is False and ack["error"]["code"] == "validation.payload"
    assert [problem["field"] for problem in ack["error"]["details"]["fields"]] == ["payload.text"]
