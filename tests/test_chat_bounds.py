"""The documented bounds and defaults of the `/chat` events, at both edges, through a real host.

docs/protocol.md, `/chat`: every `session_id` is 1–64 characters (as in the path of a
message); `title` ≤ 200 (default `""`), `agents` ≤ 50, `since_seq` 0–2^53−1,
`before_seq` 1–2^53−1, `limit` 1–200 (default 50), a receipt's `seq` 1–2^53−1, and an
invited member's `kind` defaults to `"user"`. A value just outside answers
`validation.payload`; one at the bound passes the payload check and meets the next one
(no such session, or the event's success). The upper ends of the integers are
`tests/test_hardening_input_integers.py`'s.
"""

from __future__ import annotations

from typing import Any

import pytest

from tkr_host.testing import TkrClient

Payload = dict[str, Any]

#: The `/chat` events that name a session, each with the rest of a valid payload.
SESSION_EVENTS: list[tuple[str, Payload]] = [
    ("session:join", {}),
    ("session:invite", {"member": {"id": "bob", "kind": "user"}}),
    ("message:history", {}),
    ("message:receipt", {"seq": 1, "status": "read"}),
]


@pytest.mark.parametrize(("event", "rest"), SESSION_EVENTS)
@pytest.mark.parametrize(("session_id", "code"), [
    ("", "validation.payload"), ("s" * 65, "validation.payload"),
    ("s", "not_found.session"), ("s" * 64, "not_found.session"),
])
async def test_a_session_id_is_checked_at_its_documented_bounds(tkr_client: Any, event: str, rest: Payload,
                                                                session_id: str, code: str) -> None:
    alice = await tkr_client("alice")
    ack = await alice.call(event, {"session_id": session_id, **rest})
    assert ack["ok"] is False and ack["error"]["code"] == code, ack


@pytest.mark.parametrize(("session_id", "ok"), [("", False), ("s" * 65, False), ("s", True), ("s" * 64, True)])
async def test_leave_checks_its_session_id_at_the_documented_bounds(tkr_client: Any, session_id: str, ok: bool) -> None:
    # docs/protocol.md: leaving a session the socket does not follow is answered {ok: true}.
    alice = await tkr_client("alice")
    ack = await alice.call("session:leave", {"session_id": session_id})
    assert ack["ok"] is ok, ack
    if not ok:
        assert ack["error"]["code"] == "validation.payload"


async def test_create_takes_a_title_of_200_and_50_agents_and_no_more(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    agents = [f"agent-{i}" for i in range(50)]
    made = await alice.ok("session:create", {"title": "t" * 200, "agents": agents})
    assert made["session"]["title"] == "t" * 200
    assert {m["id"] for m in made["session"]["members"] if m["kind"] == "agent"} == set(agents)
    too_many = await alice.call("session:create", {"agents": [*agents, "agent-50"]})
    assert too_many["error"]["code"] == "validation.payload"
    assert {p["field"] for p in too_many["error"]["details"]["fields"]} == {"agents"}


async def test_create_without_fields_makes_an_untitled_session_of_the_creator_alone(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session = (await alice.ok("session:create", {}))["session"]
    assert session["title"] == ""
    assert session["members"] == [{"id": "alice", "kind": "user"}]
    assert session["metadata"] == {}


async def test_invite_without_a_kind_invites_a_user(tkr_client: Any) -> None:
    alice, bob = await tkr_client("alice"), await tkr_client("bob")
    session_id = await alice.create_session()
    invited = await alice.ok("session:invite", {"session_id": session_id, "member": {"id": "bob"}})
    assert {"id": "bob", "kind": "user"} in invited["session"]["members"]
    # The user bob is the member: he may join.
    assert (await bob.join(session_id))["session"]["id"] == session_id


async def _session_of(alice: TkrClient, count: int) -> str:
    session_id = await alice.create_session()
    for i in range(count):
        assert (await alice.send_text(session_id, f"m{i}"))["ok"]
    return session_id


async def test_history_takes_a_limit_of_1_and_a_before_seq_of_1(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await _session_of(alice, 3)
    latest = await alice.ok("message:history", {"session_id": session_id, "limit": 1})
    assert [m["seq"] for m in latest["messages"]] == [3] and latest["has_more"] is True
    # Nothing comes before the first message.
    first = await alice.ok("message:history", {"session_id": session_id, "before_seq": 1})
    assert first["messages"] == [] and first["has_more"] is False
    zero = await alice.call("message:history", {"session_id": session_id, "before_seq": 0})
    assert zero["error"]["code"] == "validation.payload"
    assert [p["field"] for p in zero["error"]["details"]["fields"]] == ["before_seq"]


async def test_history_gives_50_messages_by_default_and_up_to_200(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await _session_of(alice, 51)
    default = await alice.ok("message:history", {"session_id": session_id})
    assert [m["seq"] for m in default["messages"]] == list(range(2, 52)) and default["has_more"] is True
    most = await alice.ok("message:history", {"session_id": session_id, "limit": 200})
    assert [m["seq"] for m in most["messages"]] == list(range(1, 52)) and most["has_more"] is False


async def test_a_receipt_takes_a_seq_of_1_and_not_0(tkr_client: Any) -> None:
    alice = await tkr_client("alice")
    session_id = await _session_of(alice, 1)
    assert await alice.ok("message:receipt", {"session_id": session_id, "seq": 1, "status": "delivered"}) == {"ok": True}
    zero = await alice.call("message:receipt", {"session_id": session_id, "seq": 0, "status": "read"})
    assert zero["error"]["code"] == "validation.payload"
    assert [p["field"] for p in zero["error"]["details"]["fields"]] == ["seq"]


async def test_join_reads_the_session_again_so_its_last_seq_is_current(tkr_client: Any) -> None:
    # docs/protocol.md, session:join: "`session` is read again after the messages".
    alice = await tkr_client("alice")
    session_id = await _session_of(alice, 2)
    joined = await alice.join(session_id)
    assert joined["session"]["last_seq"] == 2
    again = await alice.join(session_id, since_seq=1)
    assert again["session"]["last_seq"] == 2 and [m["seq"] for m in again["messages"]] == [2]
