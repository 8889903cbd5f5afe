"""How the store fails: what may pass is ``store.unavailable`` (with no detail
for the client), what the sender can fix is ``validation.payload``, and bugs
propagate. Real SQLite files and the real PostgreSQL, no mocks."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import peewee
import pytest
from tkr_store_peewee import PeeweeStore, StoreSettings

from tkr_host import HostError, Member, MessageDraft
from tkr_host.testing import eventually

OpenStore = Callable[..., Awaitable[PeeweeStore]]
ALICE = Member(id="alice", kind="user")


def draft(session_id: str, client_id: str | None) -> MessageDraft:
    return MessageDraft(session_id=session_id, type="text", sender=ALICE, payload={"text": "hi"}, client_id=client_id)


async def new_session(store: PeeweeStore) -> str:
    return (await store.create_session("room", ALICE, [], {})).id


async def last_seq(store: PeeweeStore, session_id: str) -> int:
    session = await store.get_session(session_id)
    assert session is not None
    return session.last_seq


def pool_waiters(store: PeeweeStore) -> int:
    """Callers queued for a connection of the store's pool (SQLite: the store's own pool;
    PostgreSQL: asyncpg's, whose queue keeps its getters)."""
    pool = store.db._pool
    if pool is None:
        return 0
    waiting = getattr(pool, "_waiting", None)
    if isinstance(waiting, int):
        return waiting
    return len(getattr(pool._queue, "_getters", ()))


def assert_released(store: PeeweeStore) -> None:
    """The calling task holds no pooled connection."""
    assert store.db.is_closed()


async def test_text_the_database_cannot_hold_is_refused(store: PeeweeStore) -> None:
    # JSON payloads escape anything; a title or an id is stored as it is.
    with pytest.raises(HostError) as caught:
        await store.create_session("half a pair \ud800", ALICE, [], {})
    assert caught.value.code == "validation.payload"
    session_id = await new_session(store)
    with pytest.raises(HostError) as caught:
        await store.append_message(draft(session_id, "c-\udfff"), [])
    assert caught.value.code == "validation.payload"
    if store.settings.is_sqlite:
        assert (await store.create_session("a\x00b", ALICE, [], {})).title == "a\x00b"
    else:  # PostgreSQL text cannot hold a NUL
        with pytest.raises(HostError) as caught:
            await store.create_session("a\x00b", ALICE, [], {})
        assert caught.value.code == "validation.payload"
    assert await last_seq(store, session_id) == 0
    assert_released(store)


async def test_ping(store: PeeweeStore) -> None:
    await store.ping()
    assert_released(store)


async def test_an_exhausted_pool_is_unavailable(open_store: OpenStore) -> None:
    store = await open_store(pool_size=1, acquire_timeout_s=0.2)
    holding = asyncio.Event()
    done = asyncio.Event()

    async def hold_the_only_connection() -> None:
        async with store.db.atomic():
            await store.db.aexecute_sql("SELECT 1")
            holding.set()
            await done.wait()
        await store.db.aclose()

    holder = asyncio.create_task(hold_the_only_connection())
    await holding.wait()
    try:
        with pytest.raises(HostError) as caught:
            await store.ping()
    finally:
        done.set()
        await holder
    error = caught.value.to_wire()
    assert error["code"] == "store.unavailable" and error["recoverable"] is True
    assert "pool" not in error["message"].lower() and "timed out" not in error["message"].lower()
    await store.ping()  # and it passes


async def test_a_freed_connection_goes_to_the_caller_that_waited(open_store: OpenStore) -> None:
    """A task that hands its connection back and at once asks again (one
    store call after another, as a socket's handler does) queues behind the
    callers already waiting, rather than taking the connection back."""
    store = await open_store(pool_size=1)
    order: list[str] = []
    holding = asyncio.Event()

    async def holder() -> None:
        async with store.db.atomic():
            await store.db.aexecute_sql("SELECT 1")
            holding.set()
            await eventually(lambda: pool_waiters(store) >= 1, what="the waiter to queue for the connection")
        await store.db.aclose()
        await store.ping()
        order.append("holder")

    async def waiter() -> None:
        await holding.wait()
        await store.ping()
        order.append("waiter")

    await asyncio.gather(holder(), waiter())
    assert order == ["waiter", "holder"]


async def test_a_missing_table_is_a_bug_not_an_outage(open_store: OpenStore) -> None:
    store = await open_store(auto_migrate=False)
    with pytest.raises(peewee.DatabaseError) as caught:
        await store.get_session("s")
    assert not isinstance(caught.value, HostError)
    assert_released(store)


async def test_a_locked_sqlite_file_is_unavailable(tmp_path: Any) -> None:
    path = tmp_path / "tkr.db"
    store = PeeweeStore(StoreSettings(url=f"sqlite:///{path}", sqlite_busy_timeout_s=0.1))
    await store.start()
    try:
        session_id = await new_session(store)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(HostError) as caught:
                await store.append_message(draft(session_id, "c-1"), [])
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert caught.value.code == "store.unavailable"
        assert "locked" not in caught.value.to_wire()["message"]
        assert_released(store)
        # Nothing was half-written: the retry gets seq 1.
        assert (await store.append_message(draft(session_id, "c-1"), [])).message.seq == 1
    finally:
        await store.close()


async def test_a_failed_start_closes_its_pool(tmp_path: Any) -> None:
    path = tmp_path / "tkr.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the migration cannot take the write lock
    store = PeeweeStore(StoreSettings(url=f"sqlite:///{path}", sqlite_busy_timeout_s=0.1))
    try:
        with pytest.raises(HostError) as caught:
            await store.start()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert caught.value.code == "store.unavailable"
    assert store.db._pool is None  # nothing left open for a host that never calls close()


async def test_an_unwritable_sqlite_path_is_unavailable(tmp_path: Any) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    store = PeeweeStore(StoreSettings(url=f"sqlite:///{tmp_path / 'a-file' / 'tkr.db'}"))
    try:
        with pytest.raises(HostError) as caught:
            await store.start()
        assert caught.value.code == "store.unavailable"
    finally:
        await store.close()


async def test_an_unreachable_postgresql_is_unavailable() -> None:
    # Port 1 refuses connections; no PostgreSQL server is needed for this test.
    store = PeeweeStore(StoreSettings(url="postgresql://postgres@127.0.0.1:1/test", acquire_timeout_s=2))
    try:
        with pytest.raises(HostError) as caught:
            await store.start()
        assert caught.value.code == "store.unavailable"
        assert "refused" not in caught.value.to_wire()["message"].lower()
        with pytest.raises(HostError):
            await store.ping()
    finally:
        await store.close()


async def test_a_dropped_postgresql_connection_is_unavailable(pg_settings: StoreSettings) -> None:
    """The server ends the connection in the middle of an append: the caller sees
    ``store.unavailable``, nothing is half-written, and the next call works."""
    store = PeeweeStore(pg_settings)
    await store.start()
    session_id = await new_session(store)
    blocker = await asyncpg.connect(pg_settings.url, server_settings={"search_path": pg_settings.pg_schema or "public"})
    try:
        async with blocker.transaction():
            # Hold the session's counter row so the append waits on it, then end
            # the append's connection from the server side.
            await blocker.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", session_id)
            append = asyncio.create_task(store.append_message(draft(session_id, "c-1"), []))
            waiting: list[int] = []
            for _ in range(200):
                waiting = [r["pid"] for r in await blocker.fetch("SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))")]
                if waiting:
                    break
                await asyncio.sleep(0.02)
            assert len(waiting) == 1
            await blocker.execute("SELECT pg_terminate_backend($1)", waiting[0])
            with pytest.raises(HostError) as caught:
                await append
        assert caught.value.code == "store.unavailable"
        assert (await store.append_message(draft(session_id, "c-1"), [])).message.seq == 1
    finally:
        await blocker.close()
        await store.close()


async def test_a_connection_the_pool_took_back_is_unavailable_not_a_bug() -> None:
    """asyncpg refuses a call on a connection already released to its pool (seen
    while PostgreSQL stops under load): nothing was sent, so it may be retried."""
    from tkr_store_peewee.failures import is_transient

    dsn = os.environ.get("TKR_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip("TKR_TEST_POSTGRES_DSN is not set")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        connection = await pool.acquire()
        await pool.release(connection)
        with pytest.raises(asyncpg.InterfaceError, match="released back to the pool") as caught:
            await connection.fetch("SELECT 1")
        assert is_transient(caught.value)
    finally:
        await pool.close()
