"""PeeweeStore against a real database: the same suite on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee
import pytest
from tkr_store_peewee import PeeweeStore, StoreSettings
from tkr_store_peewee.models import DeliveryRow, ReceiptRow

from tkr_host import ContextRecord, HostError, Member, MessageDraft, Store, TaskWrite

OpenStore = Callable[..., Awaitable[PeeweeStore]]

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ALICE = Member(id="alice", kind="user")
BOB = Member(id="bob", kind="user")
ECHO = Member(id="echo", kind="agent")


def draft(session_id: str, client_id: str | None = None, sender: Member = ALICE, text: str = "hi", **fields: Any) -> MessageDraft:
    return MessageDraft(session_id=session_id, type="text", sender=sender, payload={"text": text}, client_id=client_id, **fields)


async def new_session(store: PeeweeStore, *members: Member) -> str:
    session = await store.create_session("room", ALICE, list(members), {})
    return session.id


async def last_seq(store: PeeweeStore, session_id: str) -> int:
    session = await store.get_session(session_id)
    assert session is not None
    return session.last_seq


def assert_released(store: PeeweeStore) -> None:
    """The calling task holds no pooled connection (DESIGN.md: one long task per socket)."""
    assert store.db.is_closed()


# --- sessions and members ------------------------------------------------------


async def test_store_satisfies_the_protocol(store: PeeweeStore) -> None:
    assert isinstance(store, Store)


async def test_create_session_makes_the_creator_a_member(store: PeeweeStore) -> None:
    session = await store.create_session("Plans", ALICE, [ECHO, ALICE, BOB, ECHO], {"topic": "q3", "n": [1, 2]})
    assert uuid.UUID(session.id).version == 4
    assert TS.match(session.created_at)
    assert [m.id for m in session.members] == ["alice", "echo", "bob"]
    assert session.last_seq == 0

    loaded = await store.get_session(session.id)
    assert loaded == session
    assert loaded is not None and loaded.agent_ids() == ["echo"]
    assert await store.get_session(str(uuid.uuid4())) is None
    assert_released(store)


async def test_a_session_of_its_creator_alone_reads_back(store: PeeweeStore) -> None:
    # One member is one row of the session's read (statements.py's SESSION, a join on members).
    session = await store.create_session("Alone", ALICE, [], {})
    loaded = await store.get_session(session.id)
    assert loaded == session
    assert loaded is not None and loaded.members == [ALICE] and loaded.metadata == {}
    assert_released(store)


async def test_list_sessions_newest_first_and_only_mine(store: PeeweeStore) -> None:
    first = await store.create_session("one", ALICE, [], {})
    second = await store.create_session("two", BOB, [ALICE], {})
    third = await store.create_session("three", BOB, [], {})

    mine = await store.list_sessions(ALICE)
    assert [s.id for s in mine] == [second.id, first.id]
    assert [m.id for m in mine[0].members] == ["bob", "alice"]
    assert [s.id for s in await store.list_sessions(BOB)] == [third.id, second.id]
    assert await store.list_sessions(Member(id="nobody")) == []
    # A principal is its id and its kind: the agent alice is in none of these.
    assert await store.list_sessions(Member(id="alice", kind="agent")) == []
    assert_released(store)


async def test_add_member_keeps_join_order_and_is_idempotent(store: PeeweeStore) -> None:
    session_id = await new_session(store)
    await store.add_member(session_id, ECHO)
    session = await store.add_member(session_id, BOB)
    again = await store.add_member(session_id, ECHO)
    assert [m.id for m in session.members] == ["alice", "echo", "bob"]
    assert again.members == session.members
    # Within a session an id names one principal: the user echo cannot join the agent echo.
    with pytest.raises(HostError) as clash:
        await store.add_member(session_id, Member(id="echo", kind="user"))
    assert clash.value.code == "conflict.member_id"
    assert (await store.get_session(session_id)).members == session.members  # type: ignore[union-attr]

    with pytest.raises(HostError) as caught:
        await store.add_member(str(uuid.uuid4()), BOB)
    assert caught.value.code == "not_found.session"
    assert_released(store)


# --- messages ------------------------------------------------------------------


async def test_append_stores_the_message_with_the_next_seq(store: PeeweeStore) -> None:
    session_id = await new_session(store, ECHO)
    payload = {"text": "héllo \u0000 \ud83d wörld 🎉", "nested": {"list": [1, 2.5, None, True]}}
    first = await store.append_message(MessageDraft(session_id=session_id, type="text", sender=ALICE, payload=payload, client_id="c-1", to="echo"), ["echo"])
    second = await store.append_message(draft(session_id, "c-2", in_reply_to=first.message.id), [])
    preset = await store.append_message(draft(session_id, None, sender=ECHO, id="preset-id", status="incomplete"), [])

    assert not first.duplicate and not second.duplicate
    assert [first.message.seq, second.message.seq, preset.message.seq] == [1, 2, 3]
    message = first.message
    assert uuid.UUID(message.id).version == 4
    assert TS.match(message.ts)
    assert message.payload == payload and message.to == "echo" and message.client_id == "c-1"
    assert preset.message.id == "preset-id" and preset.message.status == "incomplete"

    assert await store.get_message(message.id) == message
    assert await store.message_at(session_id, 2) == second.message
    assert second.message.in_reply_to == message.id
    assert await store.get_message("nope") is None
    assert await store.message_at(session_id, 99) is None
    assert await last_seq(store, session_id) == 3
    assert_released(store)


async def test_append_to_an_unknown_session_is_not_found(store: PeeweeStore) -> None:
    with pytest.raises(HostError) as caught:
        await store.append_message(draft(str(uuid.uuid4()), "c-1"), ["echo"])
    assert caught.value.code == "not_found.session"
    assert_released(store)


async def test_history_pages(store: PeeweeStore) -> None:
    session_id = await new_session(store)
    other_id = await new_session(store)
    for n in range(1, 8):
        await store.append_message(draft(session_id, f"c-{n}", text=str(n)), [])
    await store.append_message(draft(other_id, "c-1"), [])

    def seqs(messages: list[Any]) -> list[int]:
        return [m.seq for m in messages]

    assert seqs(await store.messages_after(session_id, 0, 3)) == [1, 2, 3]
    assert seqs(await store.messages_after(session_id, 5, 10)) == [6, 7]
    assert seqs(await store.messages_after(session_id, 7, 10)) == []
    assert seqs(await store.messages_before(session_id, None, 3)) == [5, 6, 7]
    assert seqs(await store.messages_before(session_id, 5, 3)) == [2, 3, 4]
    assert seqs(await store.messages_before(session_id, 2, 10)) == [1]
    assert seqs(await store.messages_before(other_id, None, 50)) == [1]
    assert await store.messages_after(session_id, 0, 0) == []
    assert_released(store)


async def test_same_client_id_returns_the_first_message(store: PeeweeStore) -> None:
    session_id = await new_session(store, BOB, ECHO)
    other_id = await new_session(store)
    first = await store.append_message(draft(session_id, "c-1", text="first"), ["echo"])
    again = await store.append_message(draft(session_id, "c-1", text="changed"), ["echo"])

    assert again.duplicate and again.message == first.message
    assert await last_seq(store, session_id) == 1
    assert len(await store.pending_deliveries("echo", 10)) == 1

    # The key is (sender, session, client_id): another sender or session is new.
    by_bob = await store.append_message(draft(session_id, "c-1", sender=BOB), [])
    elsewhere = await store.append_message(draft(other_id, "c-1"), [])
    assert not by_bob.duplicate and by_bob.message.seq == 2
    assert not elsewhere.duplicate and elsewhere.message.seq == 1
    assert await store.find_message(session_id, "alice", "c-1") == first.message
    assert await store.find_message(session_id, "alice", "c-9") is None
    assert_released(store)


async def test_a_duplicate_without_agents_takes_no_seq(store: PeeweeStore) -> None:
    # docs/protocol.md: seq "has no gaps". A message with no agents and no writes is
    # SQLite's two-statement path, whose refused insert gives the counter's bump back by hand.
    session_id = await new_session(store)
    first = await store.append_message(draft(session_id, "c-1"), [])
    again = await store.append_message(draft(session_id, "c-1"), [])
    assert again.duplicate and again.message == first.message
    assert await last_seq(store, session_id) == 1
    assert (await store.append_message(draft(session_id, "c-2"), [])).message.seq == 2
    assert_released(store)


async def test_a_preset_id_stored_twice_is_a_duplicate(store: PeeweeStore) -> None:
    session_id = await new_session(store)
    first = await store.append_message(draft(session_id, None, sender=ECHO, id="stream-1"), [])
    again = await store.append_message(draft(session_id, None, sender=ECHO, id="stream-1"), [])
    assert again.duplicate and again.message == first.message
    with pytest.raises(peewee.IntegrityError):  # someone else's id is a bug, not a duplicate
        await store.append_message(draft(session_id, None, sender=BOB, id="stream-1"), [])
    assert_released(store)


async def test_concurrent_appenders_get_gapless_seqs(store: PeeweeStore) -> None:
    session_id = await new_session(store)
    results = await asyncio.gather(*(store.append_message(draft(session_id, f"c-{n}"), []) for n in range(40)))
    assert sorted(r.message.seq for r in results) == list(range(1, 41))
    assert [m.seq for m in await store.messages_after(session_id, 0, 100)] == list(range(1, 41))


async def test_two_nodes_append_to_one_session(store: PeeweeStore, open_store: OpenStore) -> None:
    """Two stores on one database, as two host nodes: seqs stay exactly 1..N."""
    node_b = await open_store()
    session_id = await new_session(store, BOB)
    sends = [store.append_message(draft(session_id, f"a-{n}"), []) for n in range(25)]
    sends += [node_b.append_message(draft(session_id, f"b-{n}", sender=BOB), []) for n in range(25)]
    results = await asyncio.gather(*sends)

    assert sorted(r.message.seq for r in results) == list(range(1, 51))
    stored = await node_b.messages_after(session_id, 0, 100)
    assert [m.seq for m in stored] == list(range(1, 51))
    assert {m.id for m in stored} == {r.message.id for r in results}
    assert await last_seq(store, session_id) == 50


async def test_concurrent_duplicates_store_one_message(store: PeeweeStore, open_store: OpenStore) -> None:
    """The same send raced from two nodes, many times: one message, the rest duplicates."""
    node_b = await open_store()
    session_id = await new_session(store, ECHO)
    sends = [node.append_message(draft(session_id, "same"), ["echo"]) for _ in range(12) for node in (store, node_b)]
    results = await asyncio.gather(*sends)

    originals = [r for r in results if not r.duplicate]
    assert len(originals) == 1
    assert {r.message.id for r in results} == {originals[0].message.id}
    assert [m.seq for m in await store.messages_after(session_id, 0, 100)] == [1]
    assert await last_seq(store, session_id) == 1
    assert len(await store.pending_deliveries("echo", 100)) == 1


async def test_writers_of_one_process_take_turns(open_store: OpenStore) -> None:
    """With no busy timeout, SQLite refuses a second writer at once, so the
    store's own writers must queue before they reach it (on PostgreSQL they
    queue on row locks): appends and other writes, all at once, all succeed."""
    store = await open_store(sqlite_busy_timeout_s=0)
    sessions = [await new_session(store) for _ in range(3)]
    writes: list[Awaitable[Any]] = [store.append_message(draft(sessions[n % 3], f"c-{n}"), ["echo"]) for n in range(30)]
    writes += [store.add_member(sessions[n % 3], Member(id=f"m-{n}")) for n in range(6)]
    writes += [store.put_task(sessions[n % 3], f"t-{n}", {"n": n}) for n in range(6)]
    await asyncio.gather(*writes)
    for session_id in sessions:
        assert [m.seq for m in await store.messages_after(session_id, 0, 100)] == list(range(1, 11))
    assert len(await store.pending_deliveries("echo", 100)) == 30
    assert_released(store)


async def test_an_in_memory_sqlite_database() -> None:
    """``sqlite:///:memory:`` is one shared connection, not a pool of them."""
    store = PeeweeStore(StoreSettings(url="sqlite:///:memory:"))
    await store.start()
    try:
        session_id = await new_session(store, ECHO)
        sends = await asyncio.gather(*(store.append_message(draft(session_id, f"c-{n}"), ["echo"]) for n in range(5)))
        assert sorted(r.message.seq for r in sends) == [1, 2, 3, 4, 5]
        assert (await store.append_message(draft(session_id, "c-0"), ["echo"])).duplicate
        assert await last_seq(store, session_id) == 5
        assert len(await store.pending_deliveries("echo", 10)) == 5
    finally:
        await store.close()


# --- receipts ------------------------------------------------------------------


async def test_record_receipt(store: PeeweeStore) -> None:
    session_id = await new_session(store, BOB)
    message = (await store.append_message(draft(session_id, "c-1"), [])).message
    await store.record_receipt(session_id, 1, "bob", "delivered")
    await store.record_receipt(session_id, 1, "bob", "read")
    await store.record_receipt(session_id, 1, "bob", "read")

    rows = await store.db.list(ReceiptRow.select().where(ReceiptRow.message_id == message.id).order_by(ReceiptRow.pk).bind(store.db))
    assert [(r.member_id, r.status, r.seq) for r in rows] == [("bob", "delivered", 1), ("bob", "read", 1)]
    with pytest.raises(HostError) as caught:
        await store.record_receipt(session_id, 2, "bob", "read")
    assert caught.value.code == "not_found.message"
    await store.db.aclose()
    assert_released(store)


# --- agent deliveries ----------------------------------------------------------


async def test_pending_deliveries_oldest_first_until_acked(store: PeeweeStore) -> None:
    session_id = await new_session(store, ECHO)
    sent = [(await store.append_message(draft(session_id, f"c-{n}"), ["echo", "echo"])).message for n in range(5)]
    await store.append_message(draft(session_id, "c-other"), ["other-agent"])

    assert [m.id for m in await store.pending_deliveries("echo", 10)] == [m.id for m in sent]
    assert [m.id for m in await store.pending_deliveries("echo", 2)] == [m.id for m in sent[:2]]
    assert await store.ack_delivery("echo", sent[1].id) is True
    assert await store.ack_delivery("echo", sent[1].id) is True  # acked before: still the agent's delivery
    assert await store.ack_delivery("echo", "no-such-message") is False
    assert await store.ack_delivery("other-agent", sent[0].id) is False
    assert [m.seq for m in await store.pending_deliveries("echo", 10)] == [1, 3, 4, 5]
    assert [m.seq for m in await store.pending_deliveries("other-agent", 10)] == [6]
    assert_released(store)


async def test_pending_deliveries_page_after_a_message(store: PeeweeStore) -> None:
    session_id = await new_session(store, ECHO)
    sent = [(await store.append_message(draft(session_id, f"c-{n}"), ["echo"])).message for n in range(7)]
    await store.append_message(draft(session_id, "c-other"), ["other-agent"])
    await store.ack_delivery("echo", sent[2].id)

    pages: list[list[int]] = []
    after: str | None = None
    while True:
        page = await store.pending_deliveries("echo", 2, after)
        pages.append([m.seq for m in page])
        if len(page) < 2:
            break
        after = page[-1].id
    assert pages == [[1, 2], [4, 5], [6, 7], []]
    # The page after an acked message starts right after it.
    assert [m.seq for m in await store.pending_deliveries("echo", 10, sent[2].id)] == [4, 5, 6, 7]
    # Another agent's delivery, or no delivery at all, is no place to start from.
    assert await store.pending_deliveries("echo", 10, "no-such-message") == []
    assert await store.pending_deliveries("other-agent", 10, sent[0].id) == []
    assert_released(store)


async def test_a_message_is_pending_once_for_each_of_its_agents(store: PeeweeStore) -> None:
    session_id = await new_session(store, ECHO)
    sent = (await store.append_message(draft(session_id, "c-1"), ["echo", "critic", "echo", "planner"])).message
    for agent in ("echo", "critic", "planner"):
        assert [m.id for m in await store.pending_deliveries(agent, 10)] == [sent.id]
    assert await store.ack_delivery("critic", sent.id) is True
    assert await store.pending_deliveries("critic", 10) == []
    assert [m.id for m in await store.pending_deliveries("echo", 10)] == [sent.id]
    assert_released(store)


async def test_deliveries_survive_a_restart(store: PeeweeStore, open_store: OpenStore) -> None:
    session_id = await new_session(store, ECHO)
    sent = [(await store.append_message(draft(session_id, f"c-{n}"), ["echo"])).message for n in range(3)]
    await store.ack_delivery("echo", sent[0].id)
    await store.close()

    restarted = await open_store()
    assert await restarted.migrate() == []
    assert [m.id for m in await restarted.pending_deliveries("echo", 10)] == [m.id for m in sent[1:]]
    nxt = await restarted.append_message(draft(session_id, "c-after"), ["echo"])
    assert nxt.message.seq == 4
    again = await restarted.append_message(draft(session_id, "c-0"), ["echo"])
    assert again.duplicate and again.message.id == sent[0].id


async def test_a_delivery_row_names_its_agent_message_session_and_time(store: PeeweeStore) -> None:
    # README, "Tables": a delivery row holds the agent, the message, its session and, as
    # created_at, the message's ts.
    session_id = await new_session(store, ECHO)
    message = (await store.append_message(draft(session_id, "c-1"), ["echo"])).message
    rows = await store.db.list(DeliveryRow.select().bind(store.db))
    await store.db.aclose()
    assert [(r.agent_id, r.message_id, r.session_id, r.created_at, bool(r.acked)) for r in rows] == [
        ("echo", message.id, session_id, message.ts, False)
    ]


async def test_an_acked_delivery_row_records_when(store: PeeweeStore) -> None:
    session_id = await new_session(store, ECHO)
    message = (await store.append_message(draft(session_id, "c-1"), ["echo"])).message
    await store.ack_delivery("echo", message.id)
    rows = await store.db.list(DeliveryRow.select().bind(store.db))
    await store.db.aclose()
    assert len(rows) == 1 and rows[0].acked and TS.match(rows[0].acked_at)


# --- contexts and tasks --------------------------------------------------------


def context(session_id: str, context_id: str, targets: tuple[str, ...], expires_at: datetime, data: Any = None) -> ContextRecord:
    return ContextRecord(session_id, context_id, data or {"v": context_id}, targets, "alice", expires_at, message_id=None)


async def test_contexts_are_listed_for_their_targets_until_they_expire(store: PeeweeStore) -> None:
    session_id = await new_session(store, ECHO)
    now = datetime.now(UTC)
    later = now + timedelta(minutes=30)
    await store.put_context(context(session_id, "brief", ("echo", "critic"), later))
    await store.put_context(context(session_id, "secret", ("critic",), later))
    await store.put_context(context(session_id, "stale", ("echo",), now - timedelta(seconds=1)))
    await store.put_context(context(session_id, "soon", ("echo",), now + timedelta(seconds=5)))

    listed = await store.list_contexts(session_id, "echo", now)
    assert [c.context_id for c in listed] == ["brief", "soon"]
    brief = listed[0]
    assert brief.targets == ("echo", "critic") and brief.data == {"v": "brief"} and brief.created_by == "alice"
    assert abs((brief.expires_at - later).total_seconds()) < 0.002 and brief.expires_at.tzinfo is not None
    assert [c.context_id for c in await store.list_contexts(session_id, "echo", now + timedelta(seconds=10))] == ["brief"]
    assert [c.context_id for c in await store.list_contexts(session_id, "critic", now)] == ["brief", "secret"]
    assert await store.list_contexts(session_id, "nobody", now) == []
    assert_released(store)


async def test_put_context_replaces_the_same_id(store: PeeweeStore) -> None:
    session_id = await new_session(store, ECHO)
    now = datetime.now(UTC)
    await store.put_context(context(session_id, "brief", ("echo",), now + timedelta(minutes=1), {"v": 1}))
    await store.put_context(context(session_id, "brief", ("critic",), now + timedelta(minutes=2), {"v": 2}))
    assert await store.list_contexts(session_id, "echo", now) == []
    [replaced] = await store.list_contexts(session_id, "critic", now)
    assert replaced.data == {"v": 2}

    with pytest.raises(HostError) as caught:
        await store.put_context(context(str(uuid.uuid4()), "x", ("echo",), now + timedelta(minutes=1)))
    assert caught.value.code == "not_found.session"
    assert_released(store)


async def test_tasks_are_upserted(store: PeeweeStore) -> None:
    session_id = await new_session(store)
    assert await store.get_task(session_id, "t-1") is None
    await store.put_task(session_id, "t-1", {"task_id": "t-1", "state": "submitted", "history": [{"state": "submitted"}]})
    await store.put_task(session_id, "t-1", {"task_id": "t-1", "state": "working"})
    assert await store.get_task(session_id, "t-1") == {"task_id": "t-1", "state": "working"}
    # Keyed by session: another session's task of the same id is another task.
    other = (await store.create_session("other", Member(id="bob"), [], {})).id
    assert await store.get_task(other, "t-1") is None
    await store.put_task(other, "t-1", {"task_id": "t-1", "state": "submitted"})
    assert await store.get_task(session_id, "t-1") == {"task_id": "t-1", "state": "working"}
    assert await store.get_task(other, "t-1") == {"task_id": "t-1", "state": "submitted"}

    with pytest.raises(HostError) as caught:
        await store.put_task(str(uuid.uuid4()), "t-2", {})
    assert caught.value.code == "not_found.session"
    assert await store.get_task(session_id, "t-2") is None
    assert_released(store)


async def test_writes_commit_with_their_message(store: PeeweeStore) -> None:
    session_id = await new_session(store, ECHO)
    later = datetime.now(UTC) + timedelta(minutes=5)
    writes = [TaskWrite(session_id, "t-1", {"task_id": "t-1", "state": "submitted"}), context(session_id, "brief", ("echo",), later)]
    result = await store.append_message(draft(session_id, "c-1", writes=writes), ["echo"])
    assert result.message.seq == 1
    assert await store.get_task(session_id, "t-1") == {"task_id": "t-1", "state": "submitted"}
    assert [c.context_id for c in await store.list_contexts(session_id, "echo", datetime.now(UTC))] == ["brief"]
    # A duplicate saves nothing again.
    again = await store.append_message(draft(session_id, "c-1", writes=[TaskWrite(session_id, "t-1", {"task_id": "t-1", "state": "working"})]), [])
    assert again.duplicate and await store.get_task(session_id, "t-1") == {"task_id": "t-1", "state": "submitted"}
    assert_released(store)


async def test_a_context_written_with_its_message_expires_when_it_says(store: PeeweeStore) -> None:
    # The append's own SQL writes the expiry (statements.py), not put_context: the same
    # millisecond must come back, and the context must go at that moment as put_context's does.
    session_id = await new_session(store, ECHO)
    now = datetime.now(UTC)
    soon = now + timedelta(seconds=5)
    await store.append_message(draft(session_id, "c-1", writes=[context(session_id, "soon", ("echo",), soon)]), ["echo"])
    [listed] = await store.list_contexts(session_id, "echo", now)
    assert abs((listed.expires_at - soon).total_seconds()) < 0.002
    assert await store.list_contexts(session_id, "echo", now + timedelta(seconds=10)) == []
    assert_released(store)


async def test_writes_of_a_message_for_no_agent_commit_with_it(store: PeeweeStore) -> None:
    # A message with writes and no agents (a task nobody is assigned) still saves its rows.
    session_id = await new_session(store)
    writes = [TaskWrite(session_id, "t-1", {"task_id": "t-1", "state": "submitted"})]
    assert (await store.append_message(draft(session_id, "c-1", writes=writes), [])).message.seq == 1
    assert await store.get_task(session_id, "t-1") == {"task_id": "t-1", "state": "submitted"}
    assert_released(store)


async def test_a_write_that_fails_takes_its_message_with_it(store: PeeweeStore) -> None:
    session_id = await new_session(store, ECHO)
    # The write names a session that does not exist: its foreign key fails, in
    # the middle of the message's transaction.
    broken = [TaskWrite(str(uuid.uuid4()), "t-1", {"task_id": "t-1"})]
    with pytest.raises(Exception):  # noqa: B017 - the database's own integrity error, whichever driver
        await store.append_message(draft(session_id, "c-1", writes=broken), ["echo"])
    assert await last_seq(store, session_id) == 0
    assert await store.messages_after(session_id, 0, 10) == []
    assert await store.pending_deliveries("echo", 10) == []
    # The seq was not taken: the next message is 1.
    assert (await store.append_message(draft(session_id, "c-2"), [])).message.seq == 1
    assert_released(store)


async def test_the_wire_form_of_a_replay_is_the_messages_to_wire(store: PeeweeStore) -> None:
    """``wire_messages_after`` (the host's replay) gives exactly ``Message.to_wire()`` of ``messages_after``."""
    session_id = await new_session(store, BOB, ECHO)
    await store.append_message(draft(session_id, "c-1", text="plain"), [])
    await store.append_message(draft(session_id, "c-2", sender=BOB, text="ünïcode \u2028 and a \\ backslash", to="echo"), ["echo"])
    first = (await store.messages_after(session_id, 0, 1))[0]
    await store.append_message(draft(session_id, None, sender=ECHO, id="stream-9", in_reply_to=first.id, status="incomplete"), [])
    models = await store.messages_after(session_id, 0, 100)
    wire = await store.wire_messages_after(session_id, 0, 100)
    assert len(models) == 3
    assert wire == [m.to_wire() for m in models]
    assert [list(w) for w in wire] == [list(m.to_wire()) for m in models]  # the same keys, in the same order
    assert await store.wire_messages_after(session_id, 2, 100) == [models[2].to_wire()]
    assert_released(store)
