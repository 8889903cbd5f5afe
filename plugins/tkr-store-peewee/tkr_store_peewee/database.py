"""Turn the configured URL into a pooled asyncio database of ``playhouse.pwasyncio``.

peewee's ``db_url`` knows no async schemes, so the mapping is done here:
``sqlite:///path`` gives an :class:`AsyncSqliteDatabase` in WAL mode and
``postgresql://``/``postgres://`` an :class:`AsyncPostgresqlDatabase` (asyncpg).
Nothing here touches the disk or the network; the pool opens on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playhouse.pwasyncio import AsyncPostgresqlDatabase, AsyncSqliteDatabase

from tkr_store_peewee._privates import PooledSqliteDatabase
from tkr_store_peewee.settings import SQLITE_PREFIX, StoreSettings

MEMORY = ":memory:"


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
        database_class = AsyncSqliteDatabase if path == MEMORY else PooledSqliteDatabase
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
