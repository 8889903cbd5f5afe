"""A SQLite batch whose transaction fails halfway, after ``BEGIN IMMEDIATE``
and some of its messages' statements: the store rolls the transaction back, no
append of the batch is acked or stored, and the next append takes the next
seq as if the batch had never been.

The failure is made inside SQLite itself, with no mock: a trigger on the
test's database file runs ``json()`` on one chosen message's ``client_id``,
which is not JSON, so that one INSERT raises ``sqlite3.OperationalError`` (the
class of a full disk or failed I/O) while the transaction holds the messages
before it. The locked-file tests of ``test_group_commit`` fail earlier, at
``BEGIN IMMEDIATE``, and never reach the rollback.

With the batch's ``ROLLBACK`` removed (mutant 171 of ``statements.py``) this
still passes: pwasyncio's pool rolls back a transaction left open when the
writer hands its connection back, before any caller is answered. With that
fallback disabled as well (by hand, in the venv), both cases fail at the
``DROP TRIGGER``: ``database is locked``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import peewee
import pytest
from tkr_store_peewee import PeeweeStore

from tkr_host import HostError, Member, MessageDraft

OpenStore = Callable[..., Awaitable[PeeweeStore]]
ALICE = Member(id="alice", kind="user")
#: The client_id the trigger fails on; any other insert passes it untouched.
BOOM = "boom"
TRIGGER = f"CREATE TRIGGER fail_one BEFORE INSERT ON messages WHEN NEW.client_id = '{BOOM}' BEGIN SELECT json(NEW.client_id); END"


def draft(session_id: str, client_id: str) -> MessageDraft:
    return MessageDraft(session_id=session_id, type="text", sender=ALICE, payload={"text": client_id}, client_id=client_id)


def on_file(store: PeeweeStore, sql: str) -> None:
    """Run ``sql`` on a connection of the test's own to the store's file. A store
    that left its transaction open holds the write lock, and this fails."""
    conn = sqlite3.connect(Path(store.settings.url[len("sqlite:///"):]), isolation_level=None, timeout=1)
    try:
        conn.execute(sql)
    finally:
        conn.close()


@pytest.mark.parametrize("with_agents", [False, True], ids=["plain", "savepoint"])
async def test_a_statement_failing_mid_batch_rolls_the_whole_batch_back(open_store: OpenStore, with_agents: bool) -> None:
    """README ("What a message costs"): a failure of the database itself fails every
    append of the batch, and none is stored. ``with_agents`` sends the batch down
    both paths of the SQLite batch: the plain insert and the per-message savepoint."""
    store = await open_store(sqlite_busy_timeout_s=1)
    if not store.settings.is_sqlite:
        pytest.skip("the trigger is SQLite's; PostgreSQL's failed batches are the fault tests'")
    session_id = (await store.create_session("room", ALICE, [], {})).id
    first = await store.append_message(draft(session_id, "before"), [])
    assert first.message.seq == 1
    on_file(store, TRIGGER)

    agents = ["echo"] if with_agents else []
    # Gathered, so they wait together and are one batch; the failing one comes
    # last, after the others' seq bumps and inserts are in the transaction.
    client_ids = [f"c-{n}" for n in range(4)] + [BOOM]
    results = await asyncio.gather(*(store.append_message(draft(session_id, c), agents) for c in client_ids), return_exceptions=True)

    # The trigger's error is not one that may pass (not store.unavailable): it propagates as it is.
    assert all(isinstance(r, peewee.OperationalError) and not isinstance(r, HostError) for r in results), results
    assert [m.client_id for m in await store.messages_after(session_id, 0, 100)] == ["before"]
    session = await store.get_session(session_id)
    assert session is not None and session.last_seq == 1  # no seq taken by the batch
    assert await store.pending_deliveries("echo", 100) == []

    # The store's connection gave the write lock back: another connection can write.
    on_file(store, "DROP TRIGGER fail_one")
    again = await asyncio.gather(*(store.append_message(draft(session_id, c), agents) for c in client_ids))
    assert [r.message.seq for r in again] == [2, 3, 4, 5, 6]
    stored = await store.messages_after(session_id, 0, 100)
    assert [(m.client_id, m.seq) for m in stored] == [("before", 1), *((c, n + 2) for n, c in enumerate(client_ids))]
    assert len(await store.pending_deliveries("echo", 100)) == (5 if with_agents else 0)
