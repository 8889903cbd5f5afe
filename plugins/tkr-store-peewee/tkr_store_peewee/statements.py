"""Hand-written SQL for the send path, run on the task's pooled connection.

Every message sent reads its session and looks up its ``client_id``, then is
appended. Through peewee's query builder and pwasyncio's generic execute, that
cost most of the host's CPU: peewee builds each statement's SQL text anew, and
pwasyncio runs each statement as three hops to aiosqlite's thread (execute,
fetchall, close) or as two round trips to PostgreSQL (prepare, then fetch).
Here those statements are fixed text with numbered parameters:

- a read is one hop (aiosqlite's ``execute_fetchall``) or one round trip
  (asyncpg's ``fetch``, which keeps the prepared statement per connection);
- an append is one hop on SQLite, where ``BEGIN IMMEDIATE`` … ``COMMIT`` runs as
  one function on the connection's thread, so the write lock is held for the
  SQL alone and never across a turn of the event loop; and one statement on
  PostgreSQL, where a ``WITH`` bumps the session's counter, inserts the message
  and inserts its deliveries (one statement is one transaction).

Connections still come from pwasyncio's pool, so the callers release them as
every store method does (:func:`~tkr_store_peewee.failures.guarded`), and a
read inside a peewee transaction uses that transaction's connection. Driver
errors are raised as peewee's (``IntegrityError``…), as pwasyncio raises them.

The SQL must match the tables of :mod:`tkr_store_peewee.migrations`, as the
query models of :mod:`tkr_store_peewee.models` must.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

# Turns driver errors into peewee's (IntegrityError…), as pwasyncio does; peewee's stubs omit it.
from peewee import __exception_wrapper__  # type: ignore[attr-defined]

from tkr_host import ContextRecord, Member, Message, Session, TaskWrite, format_ts
from tkr_store_peewee.database import is_sqlite

#: The columns of a message, in the order the values of :func:`message_values`
#: and the reads below use.
MESSAGE_COLUMNS = "id, session_id, seq, type, sender_id, sender_kind, recipient, in_reply_to, client_id, payload, ts, status"

#: A session and its members, oldest member first. A session always has its
#: creator as a member; the LEFT JOIN keeps it readable even without one.
SESSION = (
    "SELECT s.id, s.title, s.created_by, s.created_at, s.last_seq, s.metadata, m.member_id, m.kind"
    " FROM sessions AS s LEFT JOIN members AS m ON m.session_id = s.id"
    " WHERE s.id = $1 ORDER BY m.pk"
)
#: The idempotency key; the unique index (session_id, sender_id, client_id) serves it.
MESSAGE_BY_CLIENT_ID = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 AND sender_id = $2 AND client_id = $3"
MESSAGE_BY_ID = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"

# SQLite's statements of an append, run in turn on the connection's thread.
# The counter comes first: seq is the session's counter, never MAX(seq) + 1.
SQLITE_BUMP_SEQ = "UPDATE sessions SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq"
SQLITE_INSERT_MESSAGE = f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
SQLITE_INSERT_DELIVERIES = "INSERT INTO deliveries (agent_id, message_id, session_id, created_at, acked) VALUES "
SQLITE_DELIVERY_ROW = "(?, ?, ?, ?, 0)"

#: PostgreSQL's append, as one statement. The UPDATE takes the session's row
#: lock first, so writers of one session queue there, and the INSERTs take
#: their seq from it. No session: no row to bump, so nothing is inserted and
#: no row is returned. A repeated (session, sender, client_id) fails the whole
#: statement with a unique violation, and the counter's bump is undone with it.
#: The parameters are those of :func:`message_values` with the seq left out
#: ($1-$11), then the agents ($12).
POSTGRES_APPEND = (
    "WITH bumped AS ("
    "UPDATE sessions SET last_seq = last_seq + 1 WHERE id = $2 RETURNING last_seq"
    "), stored AS ("
    f"INSERT INTO messages ({MESSAGE_COLUMNS})"
    " SELECT $1, $2, last_seq, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM bumped"
    " RETURNING seq"
    "), delivered AS ("
    "INSERT INTO deliveries (agent_id, message_id, session_id, created_at, acked)"
    " SELECT agent_id, $1, $2, $10, FALSE FROM stored, unnest($12::text[]) AS agent_id"
    ") SELECT seq FROM stored"
)

#: The rows a message carries (``MessageDraft.writes``), saved in its transaction.
#: The same text runs on both databases (SQLite numbers ``$n`` as ``?n``).
UPSERT_TASK = (
    "INSERT INTO tasks (session_id, task_id, document, updated_at) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (session_id, task_id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at"
)
#: Expired contexts of the session are no use to anyone: dropped as a new one comes.
DELETE_EXPIRED_CONTEXTS = "DELETE FROM contexts WHERE session_id = $1 AND expires_ms <= $2"
UPSERT_CONTEXT = (
    "INSERT INTO contexts (session_id, context_id, data, targets, created_by, expires_ms, message_id, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    " ON CONFLICT (session_id, context_id) DO UPDATE SET data = excluded.data, targets = excluded.targets,"
    " created_by = excluded.created_by, expires_ms = excluded.expires_ms, message_id = excluded.message_id,"
    " updated_at = excluded.updated_at"
)

_NUMBERED = re.compile(r"\$(\d+)")


def write_statements(writes: Sequence[TaskWrite | ContextRecord], now: datetime) -> list[tuple[str, tuple[Any, ...]]]:
    """The SQL (``$n`` parameters) and values of a message's writes, in order.

    JSON is written as :class:`~tkr_store_peewee.models.JSONText` writes it, so
    the query models read these rows back as their own.
    """
    statements: list[tuple[str, tuple[Any, ...]]] = []
    ts = format_ts(now)
    for write in writes:
        if isinstance(write, TaskWrite):
            statements.append((UPSERT_TASK, (write.session_id, write.task_id, _json(write.document), ts)))
        else:
            statements.append((DELETE_EXPIRED_CONTEXTS, (write.session_id, epoch_ms(now))))
            statements.append((UPSERT_CONTEXT, (write.session_id, write.context_id, _json(write.data), _json(list(write.targets)),
                                                write.created_by, epoch_ms(write.expires_at), write.message_id, ts)))
    return statements


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _for_sqlite(sql: str) -> str:
    """``$1`` → ``?1``: SQLite's numbered parameter, bound by position like PostgreSQL's."""
    return _NUMBERED.sub(r"?\1", sql)


def message_values(message: Message) -> tuple[Any, ...]:
    """The values of :data:`MESSAGE_COLUMNS` for ``message``.

    The payload is JSON text, as ``models.JSONText`` stores it (``ensure_ascii``
    on, so a NUL or a lone surrogate is stored as its escape).
    """
    return (
        message.id,
        message.session_id,
        message.seq,
        message.type,
        message.sender.id,
        message.sender.kind,
        message.to,
        message.in_reply_to,
        message.client_id,
        json.dumps(message.payload, separators=(",", ":")),
        message.ts,
        message.status,
    )


def message_from_row(row: Sequence[Any]) -> Message:
    """A message from a row of :data:`MESSAGE_COLUMNS`."""
    return Message(
        id=row[0],
        session_id=row[1],
        seq=int(row[2]),
        type=row[3],
        sender=Member(id=row[4], kind=row[5]),
        to=row[6],
        in_reply_to=row[7],
        client_id=row[8],
        payload=json.loads(row[9]),
        ts=row[10],
        status=row[11],
    )


def session_from_rows(rows: Sequence[Sequence[Any]]) -> Session | None:
    """A session from the rows of :data:`SESSION` (one per member), or None."""
    if not rows:
        return None
    first = rows[0]
    return Session(
        id=first[0],
        title=first[1],
        created_by=first[2],
        created_at=first[3],
        last_seq=int(first[4]),
        metadata=json.loads(first[5] or "null") or {},
        members=[Member(id=row[6], kind=row[7]) for row in rows if row[6] is not None],
    )


class SqliteStatements:
    """The send path's SQL on SQLite (aiosqlite connections of pwasyncio's pool)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        #: One writer at a time in this process. SQLite has one write lock per
        #: file, and a writer that finds it taken sleeps in the busy handler and
        #: retries (1, 2, 5 … 100 ms), so pooled connections raced for it and
        #: some waited past the busy timeout. Queued here they go in turn, at
        #: once. Other processes still meet the busy timeout.
        self.write_lock = asyncio.Lock()
        self._session = _for_sqlite(SESSION)
        self._by_client_id = _for_sqlite(MESSAGE_BY_CLIENT_ID)
        self._by_id = _for_sqlite(MESSAGE_BY_ID)

    def writing(self) -> AbstractAsyncContextManager[Any]:
        """Hold this around every write transaction, before taking a connection."""
        return self.write_lock

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        conn = await self.db.aconnect()
        with __exception_wrapper__:
            return list(await conn.conn.execute_fetchall(sql, params))

    async def session(self, session_id: str) -> Session | None:
        return session_from_rows(await self._fetch(self._session, (session_id,)))

    async def message_by_client_id(self, session_id: str, sender_id: str, client_id: str) -> Message | None:
        rows = await self._fetch(self._by_client_id, (session_id, sender_id, client_id))
        return message_from_row(rows[0]) if rows else None

    async def message_by_id(self, message_id: str) -> Message | None:
        rows = await self._fetch(self._by_id, (message_id,))
        return message_from_row(rows[0]) if rows else None

    async def append(self, message: Message, agents: Sequence[str], writes: Sequence[tuple[str, tuple[Any, ...]]] = ()) -> int | None:
        """Store ``message`` under the session's next seq and return that seq
        (``message.seq`` is ignored); None when there is no such session.
        ``writes`` (from :func:`write_statements`) run in the same transaction.

        The caller holds :meth:`writing`.
        """
        values = message_values(message)
        conn = await self.db.aconnect()
        raw = conn.conn  # the aiosqlite connection
        extra = [(_for_sqlite(sql), params) for sql, params in writes]
        with __exception_wrapper__:
            # aiosqlite's own way to run a function on the connection's thread
            # (pwasyncio uses it too); its public calls take one statement each.
            seq: int | None = await raw._execute(_append_transaction, raw._conn, values, list(agents), extra)
        return seq


def _append_transaction(conn: sqlite3.Connection, values: tuple[Any, ...], agents: list[str],
                        writes: list[tuple[str, tuple[Any, ...]]]) -> int | None:
    """On the connection's thread: the whole append transaction, committed or rolled back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        bumped = conn.execute(SQLITE_BUMP_SEQ, (values[1],)).fetchall()
        if not bumped:
            conn.execute("ROLLBACK")
            return None
        seq = int(bumped[0][0])
        conn.execute(SQLITE_INSERT_MESSAGE, (*values[:2], seq, *values[3:]))
        if agents:
            message_id, session_id, ts = values[0], values[1], values[10]
            rows = ", ".join([SQLITE_DELIVERY_ROW] * len(agents))
            conn.execute(SQLITE_INSERT_DELIVERIES + rows, [v for agent in agents for v in (agent, message_id, session_id, ts)])
        for sql, params in writes:
            conn.execute(sql, params)
        conn.execute("COMMIT")
    except BaseException:
        # A COMMIT that failed on I/O or a full disk was rolled back by SQLite
        # itself; whatever happens, the first error is the one to raise.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return seq


class PostgresStatements:
    """The send path's SQL on PostgreSQL (asyncpg connections of pwasyncio's pool)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def writing(self) -> AbstractAsyncContextManager[Any]:
        """Nothing to hold: writers of one session queue on its row lock."""
        return contextlib.nullcontext()

    async def _fetch(self, sql: str, *params: Any) -> list[Any]:
        conn = await self.db.aconnect()
        with __exception_wrapper__:
            rows: list[Any] = await conn.conn.fetch(sql, *params)
        return rows

    async def session(self, session_id: str) -> Session | None:
        return session_from_rows(await self._fetch(SESSION, session_id))

    async def message_by_client_id(self, session_id: str, sender_id: str, client_id: str) -> Message | None:
        rows = await self._fetch(MESSAGE_BY_CLIENT_ID, session_id, sender_id, client_id)
        return message_from_row(rows[0]) if rows else None

    async def message_by_id(self, message_id: str) -> Message | None:
        rows = await self._fetch(MESSAGE_BY_ID, message_id)
        return message_from_row(rows[0]) if rows else None

    async def append(self, message: Message, agents: Sequence[str], writes: Sequence[tuple[str, tuple[Any, ...]]] = ()) -> int | None:
        """As :meth:`SqliteStatements.append`: one statement, or one transaction
        on one connection when the message carries writes."""
        values = message_values(message)
        params = (*values[:2], *values[3:], list(agents))
        if not writes:
            rows = await self._fetch(POSTGRES_APPEND, *params)
            return int(rows[0][0]) if rows else None
        conn = (await self.db.aconnect()).conn  # the asyncpg connection
        with __exception_wrapper__:
            async with conn.transaction():
                rows = await conn.fetch(POSTGRES_APPEND, *params)
                if not rows:
                    return None  # no session: nothing was inserted, and the writes would name it
                for sql, write_params in writes:
                    await conn.execute(sql, *write_params)
        return int(rows[0][0])


Statements = SqliteStatements | PostgresStatements


def statements_for(db: Any) -> Statements:
    return SqliteStatements(db) if is_sqlite(db) else PostgresStatements(db)
