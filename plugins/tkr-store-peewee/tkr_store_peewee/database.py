"""Turn the configured URL into a pooled asyncio database of ``playhouse.pwasyncio``.

peewee's ``db_url`` knows no async schemes, so the mapping is done here:
``sqlite:///path`` gives an :class:`AsyncSqliteDatabase` in WAL mode and
``postgresql://``/``postgres://`` an :class:`AsyncPostgresqlDatabase` (asyncpg).
Nothing here touches the disk or the network; the pool opens on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
from playhouse.pwasyncio import AsyncPostgresqlDatabase, AsyncSqliteConnection, AsyncSqliteDatabase, AsyncSqlitePool

from tkr_store_peewee.settings import SQLITE_PREFIX, StoreSettings

MEMORY = ":memory:"


class _ClosingSqlitePool(AsyncSqlitePool):  # type: ignore[misc]
    """pwasyncio's SQLite pool, minus a leak: a connection whose set-up fails
    (``PRAGMA journal_mode`` on a locked file) is closed, and so are the ones
    opened before it. Left open, each keeps a non-daemon aiosqlite thread
    alive, and the process cannot exit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Callers waiting in :meth:`acquire`.
        self._waiting = 0

    async def acquire(self, timeout: float | None = None) -> AsyncSqliteConnection:
        self._waiting += 1
        try:
            conn: AsyncSqliteConnection = await super().acquire(timeout)
        finally:
            self._waiting -= 1
        return conn

    def acquire_nowait(self) -> AsyncSqliteConnection | None:
        """An idle connection when nobody waits for one, else None (the caller
        then waits in :meth:`acquire`, behind the others)."""
        if self._closed or self._waiting or self._queue.empty():
            return None
        conn: AsyncSqliteConnection = self._queue.get_nowait()
        return conn

    async def initialize(self) -> _ClosingSqlitePool:
        try:
            for _ in range(self._pool_size):
                self._queue.put_nowait(await self._create_connection())
        except BaseException:
            await self.close()
            raise
        return self

    async def _create_connection(self) -> AsyncSqliteConnection:
        conn = await aiosqlite.connect(self._database, isolation_level=None, **self._connect_params)
        try:
            if self._on_connect is not None:
                await self._on_connect(conn)
        except BaseException:
            await conn.close()
            raise
        return AsyncSqliteConnection(conn)


class _SqliteDatabase(AsyncSqliteDatabase):  # type: ignore[misc]
    """``AsyncSqliteDatabase`` on :class:`_ClosingSqlitePool`, with a quicker acquire."""

    async def _acquire_conn_async(self) -> AsyncSqliteConnection:
        # pwasyncio wraps both the pool's creation and the acquire in
        # asyncio.wait_for, and on Python 3.11 each wait_for runs its awaitable
        # as a new Task: about a sixth of the store's CPU on the send path.
        # With a pool and an idle connection there is nothing to wait for.
        pool = self._pool
        conn = pool.acquire_nowait() if isinstance(pool, _ClosingSqlitePool) else None
        if conn is None:
            conn = await super()._acquire_conn_async()
        else:
            conn._pool = pool  # as the parent tags it, so a release finds its pool
        return conn

    async def _create_pool_async(self) -> _ClosingSqlitePool:
        # As the parent does, except for the pool class (a file database only).
        pool = _ClosingSqlitePool(
            self.database,
            pool_size=self._pool_size,
            on_connect=self._add_conn_hooks,
            timeout=self._timeout,
            **self.connect_params,
        )
        return await pool.initialize()


def sqlite_path(settings: StoreSettings) -> str | None:
    """The SQLite file of ``settings`` made absolute (or ``:memory:``); None for PostgreSQL.

    A relative path is taken from the working directory at the time the store
    is built, so a later ``chdir`` does not move the database.
    """
    if not settings.is_sqlite:
        return None
    path = settings.url[len(SQLITE_PREFIX) :]
    if path == MEMORY:
        return MEMORY
    return str(Path(path).absolute())


def ensure_parent_dir(settings: StoreSettings) -> None:
    """Create the directory of the SQLite file when it is missing."""
    path = sqlite_path(settings)
    if path is not None and path != MEMORY:
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def open_database(settings: StoreSettings) -> Any:
    """The pooled asyncio database for ``settings`` (not connected yet)."""
    path = sqlite_path(settings)
    if path is not None:
        busy_ms = int(settings.sqlite_busy_timeout_s * 1000)
        # ":memory:" keeps pwasyncio's own single-connection pool.
        database_class = AsyncSqliteDatabase if path == MEMORY else _SqliteDatabase
        return database_class(
            path,
            # busy_timeout comes first so that switching to WAL waits for a
            # writer on another process instead of failing at once.
            pragmas=[
                ("busy_timeout", busy_ms),
                ("journal_mode", "wal"),
                ("synchronous", settings.sqlite_synchronous),
                ("foreign_keys", 1),
            ],
            timeout=settings.sqlite_busy_timeout_s,
            pool_size=settings.pool_size,
            acquire_timeout=settings.acquire_timeout_s,
        )
    connect_params: dict[str, Any] = {"reset": _keep_session_state}
    if settings.pg_schema is not None:
        # asyncpg sends server_settings at connect, so every pooled
        # connection resolves unqualified table names in this schema.
        connect_params["server_settings"] = {"search_path": settings.pg_schema}
    # pwasyncio hands a postgresql:// or postgres:// "database" to asyncpg as a DSN.
    return AsyncPostgresqlDatabase(
        settings.url,
        pool_size=settings.pool_size,
        acquire_timeout=settings.acquire_timeout_s,
        **connect_params,
    )


async def _keep_session_state(conn: Any) -> None:
    """asyncpg's pool ``reset``, minus the reset query.

    Before calling this on release, asyncpg rolls back a transaction left open
    itself (``Connection._reset``). Its default would then also run ``SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``: one more
    round trip for every store call. The store leaves no session state to
    reset: it runs no SET, LISTEN or session-level advisory lock (migrations
    take a transaction-level one), and no cursor outlives its transaction.
    """


def is_sqlite(db: Any) -> bool:
    return isinstance(db, AsyncSqliteDatabase)
