"""Hand-written SQL for the send path, run on the task's pooled connection.

Every message sent reads its session and looks up its ``client_id``, then is
appended. Through peewee's query builder and pwasyncio's generic execute, that
cost most of the host's CPU: peewee builds each statement's SQL text anew, and
pwasyncio runs each statement as three hops to aiosqlite's thread (execute,
fetchall, close) or as two round trips to PostgreSQL (prepare, then fetch).
Here those statements are fixed text with numbered parameters:

- a read is one hop (aiosqlite's ``execute_fetchall``) or one round trip
  (asyncpg's ``fetch``, which keeps the prepared statement per connection);
- appends are group-committed (:mod:`tkr_store_peewee.group_commit`): the
  appends waiting together are one transaction, one hop on SQLite, where
  ``BEGIN IMMEDIATE`` … ``COMMIT`` runs as one function on the connection's
  thread, so the write lock is held for the SQL alone and never across a turn
  of the event loop; on PostgreSQL one statement per message, where a ``WITH``
  bumps the session's counter, inserts the message and inserts its deliveries,
  and a lone append is one statement and so one transaction.

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

import asyncpg  # type: ignore[import-untyped]  # no stubs

from tkr_host import ContextRecord, Member, Message, Session, TaskWrite, format_ts
from tkr_store_peewee._privates import as_peewee_error, run_on_connection_thread
from tkr_store_peewee._privates import exception_wrapper as __exception_wrapper__
from tkr_store_peewee.database import is_sqlite
from tkr_store_peewee.group_commit import Append, GroupCommit

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
#: A replay (``session:join`` with ``since_seq``) and a history page: through
#: peewee's rows these cost about 28 ms for 500 messages, here a few.
MESSAGES_AFTER = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"

# SQLite's statements of an append, run in turn on the connection's thread.
# The counter comes first: seq is the session's counter, never MAX(seq) + 1.
SQLITE_BUMP_SEQ = "UPDATE sessions SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq"
#: Undoes the bump of a message SQLite refused (see ``_append_plain``).
SQLITE_UNBUMP_SEQ = "UPDATE sessions SET last_seq = last_seq - 1 WHERE id = ?"
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
    """A message from a row of :data:`MESSAGE_COLUMNS`.

    Validated, not ``model_construct``-ed: in pydantic 2 the validating
    constructor is the quicker one (about 13 µs against 19 µs a message).
    """
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


def wire_from_row(row: Sequence[Any]) -> dict[str, Any]:
    """A row of :data:`MESSAGE_COLUMNS` in its wire form, as ``Message.to_wire`` gives it.

    For a replay: building 500 ``Message`` models only to dump them again was
    nearly 90 % of a ``session:join`` with ``since_seq``. The row was a valid
    ``Message`` when it was written; ``tests/test_store.py`` checks that both
    forms agree.
    """
    return {
        "id": row[0],
        "session_id": row[1],
        "seq": int(row[2]),
        "type": row[3],
        "sender": {"id": row[4], "kind": row[5]},
        "to": row[6],
        "in_reply_to": row[7],
        "client_id": row[8],
        "payload": json.loads(row[9]),
        "ts": row[10],
        "status": row[11],
    }


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
        self._after = _for_sqlite(MESSAGES_AFTER)
        #: The appends waiting for the group writer.
        self.commits = GroupCommit(self._commit_batch)

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

    async def messages_after(self, session_id: str, since_seq: int, limit: int) -> list[Message]:
        return [message_from_row(row) for row in await self._fetch(self._after, (session_id, since_seq, limit))]

    async def wire_messages_after(self, session_id: str, since_seq: int, limit: int) -> list[dict[str, Any]]:
        return [wire_from_row(row) for row in await self._fetch(self._after, (session_id, since_seq, limit))]

    async def append(self, message: Message, agents: Sequence[str], writes: Sequence[tuple[str, tuple[Any, ...]]] = ()) -> int | None:
        """Store ``message`` under the session's next seq and return that seq
        (``message.seq`` is ignored); None when there is no such session.
        ``writes`` (from :func:`write_statements`) run in the same transaction.

        Group commit: the append waits in :attr:`commits` with every other
        append of this process, and one writer commits them all in one
        transaction (see :mod:`tkr_store_peewee.group_commit`). The caller
        must not hold :meth:`writing`: the writer takes it.
        """
        extra = [(_for_sqlite(sql), params) for sql, params in writes]
        return await self.commits.submit(Append(message_values(message), tuple(agents), extra))

    async def _commit_batch(self, batch: list[Append]) -> list[int | BaseException | None]:
        """The group writer's batch, in one transaction on the connection's thread."""
        async with self.write_lock:
            conn = await self.db.aconnect()
            raw = conn.conn  # the aiosqlite connection
            try:
                with __exception_wrapper__:
                    outcomes: list[int | BaseException | None] = await run_on_connection_thread(raw, _append_batch, batch)
            finally:
                if not self.db.in_transaction():
                    await self.db.aclose()  # the writer task's pooled connection goes back
        return [as_peewee_error(o) if isinstance(o, BaseException) else o for o in outcomes]


#: What SQLite raises for a message it refuses (a repeated client_id, text it cannot hold;
#: UnicodeEncodeError is a ValueError). sqlite3.OperationalError, the database's own trouble
#: (locked, full, failed I/O), is caught before it and raised.
_REFUSED = (sqlite3.Error, ValueError, OverflowError)


def _next_seq(conn: sqlite3.Connection, session_id: str) -> int | None:
    """Bump the session's counter and return the new seq; None when there is no such session."""
    bumped = conn.execute(SQLITE_BUMP_SEQ, (session_id,)).fetchall()
    return int(bumped[0][0]) if bumped else None


def _insert_message(conn: sqlite3.Connection, values: tuple[Any, ...], seq: int) -> None:
    conn.execute(SQLITE_INSERT_MESSAGE, (*values[:2], seq, *values[3:]))


def _append_one(conn: sqlite3.Connection, item: Append) -> int | None:
    """One message of a batch; the caller holds the transaction."""
    values, agents = item.values, item.agents
    seq = _next_seq(conn, values[1])
    if seq is None:
        return None
    _insert_message(conn, values, seq)
    if agents:
        message_id, session_id, ts = values[0], values[1], values[10]
        rows = ", ".join([SQLITE_DELIVERY_ROW] * len(agents))
        conn.execute(SQLITE_INSERT_DELIVERIES + rows, [v for agent in agents for v in (agent, message_id, session_id, ts)])
    for sql, params in item.writes:
        conn.execute(sql, params)
    return seq


def _append_plain(conn: sqlite3.Connection, item: Append) -> int | BaseException | None:
    """A message with no agents and no rows of its own (most chat messages), in
    two statements and no savepoint. Each statement gives up the GIL while
    SQLite runs it and must take it back from the event loop's thread, so every
    statement less is a hand-over less, not only a step less.

    The counter's bump is undone by hand when SQLite refuses the INSERT (a
    repeated client_id): a refused statement is undone by SQLite itself, and
    nobody else writes in this transaction (``BEGIN IMMEDIATE``), so the
    counter goes back to what it was, as a rollback to a savepoint would put it.
    """
    values = item.values
    seq = _next_seq(conn, values[1])
    if seq is None:
        return None
    try:
        _insert_message(conn, values, seq)
    except sqlite3.OperationalError:
        raise
    except _REFUSED as exc:
        conn.execute(SQLITE_UNBUMP_SEQ, (values[1],))
        return exc
    return seq


def _append_batch(conn: sqlite3.Connection, batch: list[Append]) -> list[int | BaseException | None]:
    """On the connection's thread: every append of ``batch`` in one transaction,
    committed or rolled back as a whole, each in a savepoint of its own.

    A message the database refuses (a repeated client_id, text it cannot
    hold) rolls back to its savepoint only, and its outcome is that error;
    an error of the database itself (locked, full, failed I/O) ends the
    whole transaction and is raised, so no message of the batch is acked.
    """
    outcomes: list[int | BaseException | None] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for item in batch:
            if not item.agents and not item.writes:
                outcomes.append(_append_plain(conn, item))
                continue
            conn.execute("SAVEPOINT one_message")
            try:
                outcome: int | BaseException | None = _append_one(conn, item)
            except sqlite3.OperationalError:
                raise
            except _REFUSED as exc:
                conn.execute("ROLLBACK TO one_message")
                outcome = exc
            if outcome is None:
                conn.execute("ROLLBACK TO one_message")
            conn.execute("RELEASE one_message")
            outcomes.append(outcome)
        conn.execute("COMMIT")
    except BaseException:
        # A COMMIT that failed on I/O or a full disk was rolled back by SQLite
        # itself; whatever happens, the first error is the one to raise.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return outcomes


class PostgresStatements:
    """The send path's SQL on PostgreSQL (asyncpg connections of pwasyncio's pool)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.commits = GroupCommit(self._commit_batch)

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

    async def messages_after(self, session_id: str, since_seq: int, limit: int) -> list[Message]:
        return [message_from_row(row) for row in await self._fetch(MESSAGES_AFTER, session_id, since_seq, limit)]

    async def wire_messages_after(self, session_id: str, since_seq: int, limit: int) -> list[dict[str, Any]]:
        return [wire_from_row(row) for row in await self._fetch(MESSAGES_AFTER, session_id, since_seq, limit)]

    async def append(self, message: Message, agents: Sequence[str], writes: Sequence[tuple[str, tuple[Any, ...]]] = ()) -> int | None:
        """As :meth:`SqliteStatements.append`: the appends waiting together are
        committed in one transaction, one statement each."""
        return await self.commits.submit(Append(message_values(message), tuple(agents), list(writes)))

    async def _commit_batch(self, batch: list[Append]) -> list[int | BaseException | None]:
        conn = (await self.db.aconnect()).conn  # the asyncpg connection, the writer task's
        try:
            with __exception_wrapper__:
                if len(batch) == 1 and not batch[0].writes:
                    # Alone: one statement is one transaction, one round trip.
                    return [await self._append_one(conn, batch[0])]
                return await self._append_batch(conn, batch)
        finally:
            if not self.db.in_transaction():
                await self.db.aclose()

    @staticmethod
    async def _append_one(conn: Any, item: Append) -> int | None:
        values = item.values
        rows = await conn.fetch(POSTGRES_APPEND, *values[:2], *values[3:], list(item.agents))
        if not rows:
            return None  # no session: nothing was inserted, and the writes would name it
        for sql, write_params in item.writes:
            await conn.execute(sql, *write_params)
        return int(rows[0][0])

    async def _append_batch(self, conn: Any, batch: list[Append]) -> list[int | BaseException | None]:
        """One transaction, a savepoint per message (see ``_append_batch`` for SQLite).

        The batch goes in session order (stable, so each session's seqs keep
        the order of its appends): every writer, on every node, then takes the
        sessions' row locks in one order, and two batches cannot deadlock.
        """
        order = sorted(range(len(batch)), key=lambda i: str(batch[i].values[1]))
        outcomes: list[int | BaseException | None] = [None] * len(batch)
        async with conn.transaction():
            for i in order:
                try:
                    async with conn.transaction():  # a savepoint
                        outcomes[i] = await self._append_one(conn, batch[i])
                except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError, ValueError) as exc:
                    outcomes[i] = as_peewee_error(exc)
        return outcomes


Statements = SqliteStatements | PostgresStatements


def statements_for(db: Any) -> Statements:
    return SqliteStatements(db) if is_sqlite(db) else PostgresStatements(db)
