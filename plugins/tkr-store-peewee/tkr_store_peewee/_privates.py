"""Every private name of peewee, aiosqlite and asyncpg the store uses, in one place.

The store leans on a few internals that its libraries do not document; each is
named here once, with why, so that an upgrade has one module to check. The
pyproject pins each library to the range these were checked against, and
``tests/test_privates.py`` fails when an installed version leaves that range
or a name below is gone.

- peewee's ``__exception_wrapper__``: turns a driver's errors into peewee's
  (``IntegrityError``…), as pwasyncio does for its own calls;
- aiosqlite's ``Connection._execute`` and ``Connection._conn``: run one function
  on the connection's thread with the ``sqlite3`` connection (pwasyncio uses
  them too); aiosqlite's public calls take one statement each, and an append
  batch is a whole transaction;
- ``playhouse.pwasyncio``'s pool (``_queue``, ``_closed``, ``_pool_size``,
  ``_database``, ``_connect_params``, ``_on_connect``) and database
  (``_pool``, ``_add_conn_hooks``, ``_timeout``, ``_acquire_conn_async``,
  ``_create_pool_async``), subclassed below as :class:`PooledSqliteDatabase`;
- asyncpg's ``exceptions._base.InternalClientError``, raised for a pooled
  connection the server has just terminated.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite
import asyncpg  # type: ignore[import-untyped]  # no stubs
from peewee import __exception_wrapper__  # type: ignore[attr-defined]  # peewee's stubs omit it
from playhouse.pwasyncio import AsyncSqliteConnection, AsyncSqliteDatabase, AsyncSqlitePool

T = TypeVar("T")

#: ``with exception_wrapper:`` re-raises driver errors as peewee's.
exception_wrapper: Any = __exception_wrapper__

#: A pooled asyncpg connection the server has just terminated.
ASYNCPG_INTERNAL_CLIENT_ERROR: type[BaseException] = asyncpg.exceptions._base.InternalClientError

#: The pwasyncio attributes :mod:`tkr_store_peewee.database` relies on.
PWASYNCIO_POOL_ATTRIBUTES = ("_queue", "_closed", "_pool_size", "_database", "_connect_params", "_on_connect")
PWASYNCIO_DATABASE_ATTRIBUTES = ("_add_conn_hooks", "_acquire_conn_async", "_create_pool_async")


async def run_on_connection_thread(connection: Any, function: Callable[..., T], *args: Any) -> T:
    """``function(sqlite3_connection, *args)`` on the thread of an aiosqlite ``connection``."""
    result: T = await connection._execute(function, connection._conn, *args)
    return result


def as_peewee_error(exc: BaseException) -> BaseException:
    """``exc`` as peewee raises it (``sqlite3.IntegrityError`` → ``peewee.IntegrityError``)."""
    try:
        with __exception_wrapper__:
            raise exc
    except BaseException as wrapped:  # the point is to catch what the wrapper made of it
        return wrapped


class ClosingSqlitePool(AsyncSqlitePool):  # type: ignore[misc]
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

    async def initialize(self) -> ClosingSqlitePool:
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


class PooledSqliteDatabase(AsyncSqliteDatabase):  # type: ignore[misc]
    """``AsyncSqliteDatabase`` on :class:`ClosingSqlitePool`, with a quicker acquire."""

    async def _acquire_conn_async(self) -> AsyncSqliteConnection:
        # pwasyncio wraps both the pool's creation and the acquire in
        # asyncio.wait_for, and on Python 3.11 each wait_for runs its awaitable
        # as a new Task: about a sixth of the store's CPU on the send path.
        # With a pool and an idle connection there is nothing to wait for.
        pool = self._pool
        conn = pool.acquire_nowait() if isinstance(pool, ClosingSqlitePool) else None
        if conn is None:
            conn = await super()._acquire_conn_async()
        else:
            conn._pool = pool  # as the parent tags it, so a release finds its pool
        return conn

    async def _create_pool_async(self) -> ClosingSqlitePool:
        # As the parent does, except for the pool class (a file database only).
        pool = ClosingSqlitePool(
            self.database,
            pool_size=self._pool_size,
            on_connect=self._add_conn_hooks,
            timeout=self._timeout,
            **self.connect_params,
        )
        return await pool.initialize()


def check() -> list[str]:
    """The private names above that the installed libraries no longer have."""
    import peewee

    missing = [f"aiosqlite.Connection.{name}" for name in ("_execute",) if not hasattr(aiosqlite.Connection, name)]
    pool = AsyncSqlitePool(":memory:", pool_size=1)
    missing += [f"AsyncSqlitePool.{name}" for name in PWASYNCIO_POOL_ATTRIBUTES if not hasattr(pool, name)]
    missing += [f"AsyncSqliteDatabase.{name}" for name in PWASYNCIO_DATABASE_ATTRIBUTES if not hasattr(AsyncSqliteDatabase, name)]
    if not isinstance(as_peewee_error(sqlite3.IntegrityError("probe")), peewee.IntegrityError):
        missing.append("peewee.__exception_wrapper__ (no longer maps sqlite3 errors)")
    return missing
