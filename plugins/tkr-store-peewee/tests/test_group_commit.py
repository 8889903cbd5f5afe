"""Group commit: appends that wait together share one transaction, on both databases."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from tkr_store_peewee import PeeweeStore

from tkr_host import HostError, Member, MessageDraft, TaskWrite

OpenStore = Callable[..., Awaitable[PeeweeStore]]
ALICE = Member(id="alice", kind="user")
BOB = Member(id="bob", kind="user")


def draft(session_id: str, client_id: str | None, sender: Member = ALICE, **fields: object) -> MessageDraft:
    return MessageDraft(session_id=session_id, type="text", sender=sender, payload={"text": client_id or "x"}, client_id=client_id, **fields)  # type: ignore[arg-type]


async def test_waiting_appends_share_transactions_and_keep_each_sessions_order(store: PeeweeStore) -> None:
    sessions = [(await store.create_session("room", ALICE, [], {})).id for _ in range(8)]
    # Submitted in this order: per session, c-0, c-1, … must get seq 1, 2, …
    sends = [store.append_message(draft(sessions[s], f"c-{n}"), []) for n in range(10) for s in range(8)]
    results = await asyncio.gather(*sends)

    for s, session_id in enumerate(sessions):
        mine = [r.message for r in results if r.message.session_id == session_id]
        assert [(m.client_id, m.seq) for m in mine] == [(f"c-{n}", n + 1) for n in range(10)], s
        assert [m.client_id for m in await store.messages_after(session_id, 0, 100)] == [f"c-{n}" for n in range(10)]
    commits = store.sql.commits
    assert commits.appends == 80
    assert commits.batches < commits.appends  # some appends did share a transaction


async def test_a_refused_message_leaves_the_rest_of_its_batch_stored(store: PeeweeStore) -> None:
    session_id = (await store.create_session("room", ALICE, [BOB], {})).id
    taken = await store.append_message(draft(session_id, None, id="preset-1"), [])
    sends = [store.append_message(draft(session_id, f"c-{n}"), []) for n in range(5)]
    # Someone else's preset id: the unique key refuses it, in the middle of the batch.
    sends.insert(2, store.append_message(draft(session_id, None, sender=BOB, id="preset-1"), []))
    # A write naming no session: its foreign key fails, and takes only its own message.
    sends.insert(4, store.append_message(draft(session_id, "broken", writes=[TaskWrite(str(uuid.uuid4()), "t", {})]), []))
    results = await asyncio.gather(*sends, return_exceptions=True)

    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 2 and not any(isinstance(r, HostError) for r in refused)
    stored = await store.messages_after(session_id, 0, 100)
    assert [m.client_id for m in stored] == [None, "c-0", "c-1", "c-2", "c-3", "c-4"]
    assert [m.seq for m in stored] == list(range(1, 7))  # no seq was taken by a refused message
    assert stored[0] == taken.message


async def test_a_failed_commit_fails_every_append_of_its_batch(open_store: OpenStore) -> None:
    """SQLite, locked by another connection: no append of the batch is acked, none is stored.
    (PostgreSQL's failed commits are the fault tests', which stop the server.)"""
    store = await open_store(sqlite_busy_timeout_s=0)
    if not store.settings.is_sqlite:
        pytest.skip("a lock held by another connection is SQLite's fault")
    session_id = (await store.create_session("room", ALICE, [], {})).id
    path = Path(store.settings.url[len("sqlite:///"):])
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        results = await asyncio.gather(*(store.append_message(draft(session_id, f"c-{n}"), []) for n in range(6)), return_exceptions=True)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert all(isinstance(r, HostError) and r.code == "store.unavailable" for r in results), results
    assert await store.messages_after(session_id, 0, 100) == []
    # And the writer goes on once the lock is gone.
    assert (await store.append_message(draft(session_id, "c-9"), [])).message.seq == 1


@pytest.mark.parametrize("count", [1, 2, 300])
async def test_every_append_is_answered_whatever_the_batch_size(store: PeeweeStore, count: int) -> None:
    """A lone append, two together, and more than one batch holds (``MAX_BATCH``)."""
    session_ids = [(await store.create_session("room", ALICE, [], {})).id for _ in range(3)]
    results = await asyncio.gather(*(store.append_message(draft(session_ids[n % 3], f"c-{n}"), ["echo"]) for n in range(count)))
    assert sorted(r.message.seq for r in results if r.message.session_id == session_ids[0]) == list(range(1, (count + 2) // 3 + 1))
    assert len(await store.pending_deliveries("echo", 1000)) == count
