"""message:send's held path (a type with checks), the after_store hook, and a stale session cache.

Expected values come from the docs:

- PROTOCOL.md 1.1, "Acknowledgements": a resent ``client_id`` answers the first message with
  ``duplicate: true``; the ``task`` type (PROTOCOL.md "Built-in message types") is a type with
  checks (docs/architecture.md: such a message takes the session's lock), so it exercises
  that path's resend.
- docs/plugins.md, ``after_store``: "Observe a message that was stored (duplicates are not
  reported again)".
- PROTOCOL.md "Objects"/`/chat`: ``to`` names an agent of the session; an agent invited on
  another node is one, though this node's session cache predates the invite (docs/architecture.md:
  ``SessionCache`` keeps memberships seen, so an event costs no session read).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tkr_host import hookimpl
from tkr_host.testing import TkrClient, connect_client, eventually, make_token, start_host
from tkr_host.types import Message


class StoredMessages:
    """A plugin that keeps the id of every message ``after_store`` reports."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    @hookimpl
    def after_store(self, host: Any, message: Message) -> None:
        self.ids.append(message.id)


@pytest.fixture
def stored() -> StoredMessages:
    return StoredMessages()


@pytest.fixture
def tkr_plugins(stored: StoredMessages) -> list[Any]:
    return [stored]


def task(session_id: str, client_id: str, **payload: Any) -> dict[str, Any]:
    return {"session_id": session_id, "client_id": client_id, "type": "task", "payload": payload}


async def test_a_task_is_acked_once_stored_and_its_resend_is_the_duplicate(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["worker"])
    create = task(session_id, "c-task-1", task_id="t1", action="create", title="Summarise", assignee="worker")
    first = await alice.call("message:send", create)
    assert first["ok"] is True and first["duplicate"] is False, first
    again = await alice.call("message:send", create)
    assert again["ok"] is True and again["duplicate"] is True, again
    assert again["message"] == first["message"]
    assert [m["id"] for m in await alice.history(session_id)] == [first["message"]["id"]]


async def test_after_store_reports_a_stored_message_once_and_never_its_resend(tkr_client: Any, stored: StoredMessages) -> None:
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["worker"])
    text = await alice.send_text(session_id, "once", client_id="c-text")
    await eventually(lambda: text["message"]["id"] in stored.ids, what="after_store of the text")
    assert (await alice.send_text(session_id, "once", client_id="c-text"))["duplicate"] is True
    # A type with checks takes the other path (the session's lock): its resend is not reported either.
    create = task(session_id, "c-task", task_id="t1", action="create", title="Summarise", assignee="worker")
    held = await alice.call("message:send", create)
    assert held["ok"] is True, held
    assert (await alice.call("message:send", create))["duplicate"] is True
    # The sentinel's report comes after any report of the resends.
    sentinel = await alice.send_text(session_id, "sentinel")
    await eventually(lambda: sentinel["message"]["id"] in stored.ids, what="after_store of the sentinel")
    assert stored.ids == [text["message"]["id"], held["message"]["id"], sentinel["message"]["id"]]


async def test_to_names_an_agent_invited_on_another_node(tkr_settings: dict[str, Any], tkr_host: Any, tkr_client: Any) -> None:
    # Two hosts on one store and no shared cluster: an invite on the second is not told to the first.
    other, stop_other = await start_host(tkr_settings)
    try:
        alice = await tkr_client("alice")
        session_id = await alice.create_session()
        await alice.send_text(session_id, "cached here")  # this node has read the session: it is in its cache
        sio = await connect_client(other.url, make_token("alice"), "/chat")
        try:
            alice_there = TkrClient(sio, "alice", "/chat")
            await alice_there.ok("session:invite", {"session_id": session_id, "member": {"id": "late", "kind": "agent"}})
        finally:
            await sio.disconnect()
        ack = await alice.send_text(session_id, "for the late agent", client_id=f"c-{uuid.uuid4().hex[:8]}", to="late")
        assert ack["ok"] is True, ack
    finally:
        await stop_other()


async def test_an_optional_field_left_out_stays_out_of_the_stored_payload(tkr_client: Any) -> None:
    # docs/protocol.md, Message: "an optional field that was left out and has no default
    # (a `task`'s `description?`, say) stays out, never stored as `null`".
    alice = await tkr_client("alice")
    session_id = await alice.create_session(agents=["worker"])
    create = task(session_id, "c-task", task_id="t1", action="create", title="Summarise")
    assert (await alice.call("message:send", create))["ok"] is True
    [stored_task] = await alice.history(session_id)
    assert stored_task["payload"] == {"task_id": "t1", "action": "create", "title": "Summarise"}
