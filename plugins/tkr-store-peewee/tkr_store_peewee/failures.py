"""Which database failures may pass, and how they reach the host.

Text the database cannot hold (a NUL or an unpaired surrogate in a title or
an id) is the sender's to fix: it becomes ``validation.payload``.

A failure that may pass (a locked SQLite file, a PostgreSQL server that is
restarting or refuses connections, an exhausted pool) becomes
``HostError("store.unavailable")``, which the recovery plugin retries. Its
detail goes to the log, linked by the error's ``request_id``, never to the
client. Anything else (a bad query, a missing table, a bug) propagates as it is.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs; the root mypy override lacks it
from peewee import InterfaceError, OperationalError

from tkr_host import HostError
from tkr_store_peewee._privates import ASYNCPG_INTERNAL_CLIENT_ERROR

log = logging.getLogger("tkr_store_peewee")

#: sqlite3.OperationalError messages of a busy, unreachable or full database.
_SQLITE_TRANSIENT = (
    "database is locked",
    "database table is locked",
    "database is busy",
    "unable to open database file",
    "attempt to write a readonly database",
    "disk i/o error",
    "database or disk is full",
    "locking protocol",
    # A COMMIT the disk refused makes SQLite roll back by itself; peewee's own
    # ROLLBACK then fails with this, hiding the first error. It is the same fault.
    "cannot rollback - no transaction is active",
)

#: asyncpg errors of a connection that failed or a server that cannot serve now:
#: connection failures, shutdowns and cancels, too many connections, and
#: serialization failures or deadlocks (whose transaction may simply be retried).
_ASYNCPG_TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
    # A pooled connection the server has just terminated, before asyncpg marked
    # it closed ("cannot switch to state …; another operation is in progress").
    ASYNCPG_INTERNAL_CLIENT_ERROR,
)

#: Messages pwasyncio raises itself, without a driver error behind them.
_POOL_TRANSIENT = ("timed out", "pool is shutting down", "pool is closed", "connection is closed")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error peewee wrapped (``.orig``), and their causes."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([getattr(current, "orig", None), current.__cause__, current.__context__])


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unavailable now, not that the call is wrong."""
    for error in _chain(exc):
        # ConnectionRefusedError, a DNS failure, a reset socket, TimeoutError.
        if isinstance(error, (OSError, *_ASYNCPG_TRANSIENT)):
            return True
        text = str(error).lower()
        if isinstance(error, sqlite3.OperationalError) and text.startswith(_SQLITE_TRANSIENT):
            return True
        # A closed connection, or one the pool took back while PostgreSQL went
        # away under it ("connection has been released back to the pool"):
        # asyncpg refuses the call before sending anything, so a retry is safe.
        if isinstance(error, asyncpg.InterfaceError) and ("closed" in text or "released back to the pool" in text):
            return True
        if isinstance(error, OperationalError | InterfaceError) and (text.startswith(_SQLITE_TRANSIENT) or any(part in text for part in _POOL_TRANSIENT)):
            return True
    return False


def is_foreign_key_violation(exc: BaseException) -> bool:
    """Whether ``exc`` is a row that names a missing parent (a session, a message)."""
    for error in _chain(exc):
        if isinstance(error, asyncpg.ForeignKeyViolationError):
            return True
        if isinstance(error, sqlite3.IntegrityError) and "foreign key" in str(error).lower():
            return True
    return False


def is_unstorable_text(exc: BaseException) -> bool:
    """Whether a text value could not be stored: an unpaired surrogate (no UTF-8
    form, so neither driver can send it) or a NUL (PostgreSQL text refuses it)."""
    unstorable = (UnicodeEncodeError, asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)
    return any(isinstance(error, unstorable) for error in _chain(exc))


def unavailable(operation: str, exc: BaseException) -> HostError:
    """The error a caller sees for a failure that may pass; the log holds the detail."""
    error = HostError("store.unavailable")
    log.warning("store.unavailable (request %s) in %s: %s: %s", error.request_id, operation, type(exc).__name__, exc)
    return error


def guarded(db: Any, operation: str, release: bool = True) -> Guarded:
    """``async with guarded(db, operation):`` translates failures that may pass
    and releases the task's pooled connection.

    The release matters: pwasyncio ties a connection to the task that used it
    until that task ends, and a socket's handlers share one long task.
    ``release=False`` is for a call that runs no statement in this task (an
    append, which the group writer commits in its own): asking pwasyncio whether
    this task holds a connection costs two task lookups, about 3 % of a send.
    """
    return Guarded(db, operation, release)


class Guarded:
    """The context manager of :func:`guarded`: a class, not an async generator,
    because every store call enters one, and an async generator costs a frame
    more and a registration with the event loop each time."""

    __slots__ = ("_db", "_operation", "_release")

    def __init__(self, db: Any, operation: str, release: bool = True) -> None:
        self._db = db
        self._operation = operation
        self._release = release

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, trace: TracebackType | None) -> None:
        try:
            if isinstance(exc, Exception) and not isinstance(exc, HostError):
                if is_transient(exc):
                    raise unavailable(self._operation, exc) from exc
                if is_unstorable_text(exc):
                    # JSON columns escape such characters; plain text columns (a title,
                    # an id) cannot, and the sender is the one who can fix it.
                    raise HostError("validation.payload",
                                    message="A text field holds a NUL or an unpaired surrogate, which cannot be stored.") from exc
        finally:
            if self._release and not self._db.in_transaction():
                try:
                    await self._db.aclose()
                except Exception as release_error:  # a broken connection; the pool replaces it
                    log.warning("store: releasing the connection after %s failed: %s", self._operation, release_error)
