"""PostgreSQL: a batch takes its sessions' row locks in session order, so two
nodes' batches cannot deadlock (README, "What a message costs": "in session order").

Deterministic, with no race to win: the test's own connection plays another
node's writer, which takes the locks in session order as well. It holds
session A's row, the store's batch (submitted B first, then A) queues behind
it, and only then does the test's writer take B. A batch in session order
waits on A holding nothing, so B is free; a batch in submission order already
holds B, and the two writers deadlock.
"""

from __future__ import annotations

import asyncio

import asyncpg  # type: ignore[import-untyped]
from tkr_store_peewee import PeeweeStore, StoreSettings

from tkr_host import Member, MessageDraft
from tkr_host.testing import eventually

ALICE = Member(id="alice", kind="user")
LOCK_ROW = "SELECT id FROM sessions WHERE id = $1 FOR UPDATE"


def draft(session_id: str, client_id: str) -> MessageDraft:
    return MessageDraft(session_id=session_id, type="text", sender=ALICE, payload={"text": client_id}, client_id=client_id)


async def test_a_batch_takes_its_sessions_row_locks_in_session_order(pg_settings: StoreSettings) -> None:
    store = PeeweeStore(pg_settings)
    await store.start()
    other = await asyncpg.connect(pg_settings.url, server_settings={"search_path": str(pg_settings.pg_schema)})
    # Watches from outside the transaction: a transaction sees one snapshot of pg_stat_activity.
    watcher = await asyncpg.connect(pg_settings.url)
    try:
        first, second = sorted([(await store.create_session("room", ALICE, [], {})).id for _ in range(2)])
        await other.execute("SET lock_timeout = '10s'")  # a wait that never ends fails instead of hanging
        async with other.transaction():
            await other.fetch(LOCK_ROW, first)
            # Gathered, so they are one batch; submitted in the order opposite to the sessions'.
            sends = asyncio.gather(store.append_message(draft(second, "b"), []), store.append_message(draft(first, "a"), []), return_exceptions=True)
            mine = other.get_server_pid()
            await eventually(
                lambda: watcher.fetchval("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", mine),
                what="the store's batch waiting on the row lock of session A",
            )
            # The other node's writer goes on to B: free, unless the batch took it first.
            assert await other.fetch(LOCK_ROW, second)
        results = await sends
        assert [(r.message.session_id, r.message.seq) for r in results if not isinstance(r, BaseException)] == [(second, 1), (first, 1)], results
    finally:
        await other.close()
        await watcher.close()
        await store.close()
