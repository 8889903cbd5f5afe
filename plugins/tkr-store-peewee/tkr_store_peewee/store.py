"""``PeeweeStore``: the host's ``Store`` on SQLite or PostgreSQL.

Every method runs inside :func:`~tkr_store_peewee.failures.guarded`, which
turns failures that may pass into ``store.unavailable`` and hands the task's
pooled connection back before the method returns. Writes run in a transaction
that takes the write lock first (``BEGIN IMMEDIATE`` on SQLite), so concurrent
writers queue instead of failing to upgrade a read lock; on SQLite the writers
of this process also take turns on an ``asyncio.Lock`` before that.

The send path (:meth:`PeeweeStore.get_session`, :meth:`~PeeweeStore.find_message`,
:meth:`~PeeweeStore.get_message`, :meth:`~PeeweeStore.append_message`) and the
replay (:meth:`~PeeweeStore.messages_after`) run
hand-written SQL from :mod:`tkr_store_peewee.statements`; the rest builds its
queries with peewee.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from peewee import IntegrityError

from tkr_host import AppendResult, ContextRecord, HostError, Member, Message, MessageDraft, ReceiptStatus, Session, format_ts, utc_now
from tkr_store_peewee.database import ensure_parent_dir, is_sqlite, open_database
from tkr_store_peewee.failures import guarded, is_foreign_key_violation
from tkr_store_peewee.migrations import STEPS, Step, apply_migrations
from tkr_store_peewee.models import ContextRow, DeliveryRow, MemberRow, MessageRow, ReceiptRow, SessionRow, TaskRow
from tkr_store_peewee.settings import StoreSettings
from tkr_store_peewee.statements import statements_for, write_statements

log = logging.getLogger("tkr_store_peewee")


class PeeweeStore:
    """Sessions, members, messages, deliveries, contexts and tasks in one database."""

    #: Appends take their seqs in the order they are called (group commit's
    #: queue is filled before the first await): the host may then let one
    #: session's appends share a commit and still emit them in seq order.
    ordered_appends = True

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        #: The pooled ``playhouse.pwasyncio`` database; it connects on first use.
        self.db: Any = open_database(settings)
        #: The send path's SQL for this database, and the writers' turn on SQLite.
        self.sql = statements_for(self.db)

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Check that the database answers, then migrate when ``auto_migrate`` is on.

        On failure the pool is closed again: a host that fails to start may
        never call :meth:`close`.
        """
        try:
            async with guarded(self.db, "start"):
                ensure_parent_dir(self.settings)
                await self.db.aexecute_sql("SELECT 1")
            if self.settings.auto_migrate:
                await self.migrate()
        except BaseException:
            await self.db.close_pool()
            raise

    async def close(self) -> None:
        await self.sql.commits.drain()  # appends already queued are committed (or fail) first
        await self.db.close_pool()

    async def ping(self) -> None:
        async with guarded(self.db, "ping"):
            await self.db.aexecute_sql("SELECT 1")

    async def migrate(self, steps: Sequence[Step] = STEPS) -> list[str]:
        """Apply the pending migration steps; return the names applied."""
        async with guarded(self.db, "migrate"):
            ensure_parent_dir(self.settings)
            applied = await apply_migrations(self.db, steps, self.settings.pg_schema)
        if applied:
            log.info("store: applied migrations %s", ", ".join(applied))
        return applied

    # --- sessions and members -------------------------------------------------

    async def create_session(self, title: str, created_by: Member, members: list[Member], metadata: dict[str, Any]) -> Session:
        session = Session(
            id=str(uuid.uuid4()),
            title=title,
            created_by=created_by.id,
            created_at=format_ts(utc_now()),
            members=_unique_members([created_by, *members]),
            metadata=metadata,
        )
        async with guarded(self.db, "create_session"), self._write():
            await self._run(
                SessionRow.insert(
                    id=session.id,
                    title=session.title,
                    created_by=session.created_by,
                    created_at=session.created_at,
                    last_seq=0,
                    metadata=session.metadata,
                )
            )
            await self._run(
                MemberRow.insert_many([{"session_id": session.id, "member_id": m.id, "kind": m.kind, "joined_at": session.created_at} for m in session.members])
            )
        return session

    async def get_session(self, session_id: str) -> Session | None:
        async with guarded(self.db, "get_session"):
            return await self._load_session(session_id)

    async def list_sessions(self, member: Member) -> list[Session]:
        async with guarded(self.db, "list_sessions"):
            # The kind too: agent:alice is not a member of user:alice's sessions.
            mine = MemberRow.select(MemberRow.session_id).where((MemberRow.member_id == member.id) & (MemberRow.kind == member.kind))
            rows = await self._all(SessionRow.select().where(SessionRow.id.in_(mine)).order_by(SessionRow.pk.desc()))
            if not rows:
                return []
            members = await self._all(MemberRow.select().where(MemberRow.session_id.in_(mine)).order_by(MemberRow.pk))
        by_session: dict[str, list[Any]] = {}
        for member_row in members:
            by_session.setdefault(member_row.session_id, []).append(member_row)
        return [_session(row, by_session.get(row.id, [])) for row in rows]

    async def add_member(self, session_id: str, member: Member) -> Session:
        async with guarded(self.db, "add_member"), self._write():
            if await self._first(SessionRow.select(SessionRow.pk).where(SessionRow.id == session_id)) is None:
                raise HostError("not_found.session")
            await self._run(MemberRow.insert(session_id=session_id, member_id=member.id, kind=member.kind, joined_at=format_ts(utc_now())).on_conflict_ignore())
            session = await self._load_session(session_id)
        if session is None:  # pragma: no cover - sessions are never deleted
            raise HostError("not_found.session")
        holder = session.member_with_id(member.id)
        if holder is not None and holder.kind != member.kind:
            # The unique index on (session, id) kept the other kind's row. Within
            # a session an id names one principal: `to`, receipts' `by` and task
            # assignees are ids, and must stay unambiguous.
            raise HostError("conflict.member_id")
        return session

    async def _load_session(self, session_id: str) -> Session | None:
        """The session and its members, in one query."""
        return await self.sql.session(session_id)

    # --- messages ---------------------------------------------------------------

    async def append_message(self, draft: MessageDraft, deliver_to: list[str]) -> AppendResult:
        message = Message(
            id=draft.id or str(uuid.uuid4()),
            session_id=draft.session_id,
            seq=0,  # the session's counter gives the seq, in the transaction
            type=draft.type,
            sender=draft.sender,
            to=draft.to,
            in_reply_to=draft.in_reply_to,
            client_id=draft.client_id,
            payload=draft.payload,
            ts=format_ts(utc_now()),
            status=draft.status,
        )
        conflict: IntegrityError | None = None
        # Group commit: the store's writer task takes the write turn and a pooled
        # connection of its own, and gives it back; this task holds none to release.
        async with guarded(self.db, "append_message", release=False):
            try:
                seq = await self.sql.append(message, list(dict.fromkeys(deliver_to)), write_statements(draft.writes, utc_now()))
            except IntegrityError as error:
                conflict = error
        if conflict is not None:
            # The unique index on (session, sender, client_id), or the
            # primary key for a preset id: a resend, or a second copy that
            # raced the first. Our transaction, seq included, was rolled
            # back; answer with the stored message (read in this task, so released).
            async with guarded(self.db, "append_message"):
                existing = await self._existing(draft)
                if existing is None:
                    raise conflict
            return AppendResult(existing, duplicate=True)
        if seq is None:
            raise HostError("not_found.session")
        message.seq = seq  # the one Message, built before its seq was known; nothing else holds it
        return AppendResult(message, duplicate=False)

    async def _existing(self, draft: MessageDraft) -> Message | None:
        """The stored message ``draft`` repeats: same client_id, or same preset id."""
        if draft.client_id is not None:
            return await self.sql.message_by_client_id(draft.session_id, draft.sender.id, draft.client_id)
        if draft.id is not None:
            found = await self.sql.message_by_id(draft.id)
            if found is not None and found.session_id == draft.session_id and found.sender.id == draft.sender.id:
                return found
        return None

    async def find_message(self, session_id: str, sender_id: str, client_id: str) -> Message | None:
        async with guarded(self.db, "find_message"):
            return await self.sql.message_by_client_id(session_id, sender_id, client_id)

    async def get_message(self, message_id: str) -> Message | None:
        async with guarded(self.db, "get_message"):
            return await self.sql.message_by_id(message_id)

    async def messages_after(self, session_id: str, since_seq: int, limit: int) -> list[Message]:
        async with guarded(self.db, "messages_after"):
            return await self.sql.messages_after(session_id, since_seq, max(limit, 0))

    async def wire_messages_after(self, session_id: str, since_seq: int, limit: int) -> list[dict[str, Any]]:
        """:meth:`messages_after`, each message already in its wire form (``to_wire``).

        Not part of the host's ``Store`` protocol: the host's replay uses it when a
        store has it, and builds no model for a message it only sends on.
        """
        async with guarded(self.db, "messages_after"):
            return await self.sql.wire_messages_after(session_id, since_seq, max(limit, 0))

    async def messages_before(self, session_id: str, before_seq: int | None, limit: int) -> list[Message]:
        where = MessageRow.session_id == session_id
        if before_seq is not None:
            where &= MessageRow.seq < before_seq
        async with guarded(self.db, "messages_before"):
            rows = await self._all(MessageRow.select().where(where).order_by(MessageRow.seq.desc()).limit(max(limit, 0)))
        return [_message(row) for row in reversed(rows)]

    async def message_at(self, session_id: str, seq: int) -> Message | None:
        async with guarded(self.db, "message_at"):
            row = await self._first(MessageRow.select().where((MessageRow.session_id == session_id) & (MessageRow.seq == seq)))
        return None if row is None else _message(row)

    async def record_receipt(self, session_id: str, seq: int, member_id: str, status: ReceiptStatus) -> None:
        async with guarded(self.db, "record_receipt"), self._write():
            row = await self._first(MessageRow.select(MessageRow.id).where((MessageRow.session_id == session_id) & (MessageRow.seq == seq)))
            if row is None:
                raise HostError("not_found.message")
            # One row per (message, member, status): "delivered" and "read" are
            # both kept, and repeating a receipt changes nothing.
            await self._run(
                ReceiptRow.insert(
                    message_id=row.id,
                    session_id=session_id,
                    seq=seq,
                    member_id=member_id,
                    status=status,
                    at=format_ts(utc_now()),
                ).on_conflict_ignore()
            )

    # --- agent deliveries -------------------------------------------------------

    async def pending_deliveries(self, agent_id: str, limit: int, after: str | None = None) -> list[Message]:
        """Unacked messages for ``agent_id``, oldest delivery first.

        With ``after`` (the last message id of the previous page) the page starts
        after that message's delivery row, acked or not. An ``after`` that is no
        delivery of this agent gives an empty page rather than starting over, so
        a pager can never loop.
        """
        where = (DeliveryRow.agent_id == agent_id) & (DeliveryRow.acked == False)  # noqa: E712 - SQL, not Python
        if after is not None:
            marker = DeliveryRow.alias()
            where &= DeliveryRow.pk > marker.select(marker.pk).where((marker.agent_id == agent_id) & (marker.message_id == after))
        async with guarded(self.db, "pending_deliveries"):
            rows = await self._all(
                MessageRow.select().join(DeliveryRow, on=(DeliveryRow.message_id == MessageRow.id)).where(where).order_by(DeliveryRow.pk).limit(max(limit, 0))
            )
        return [_message(row) for row in rows]

    async def count_pending_deliveries(self) -> int:
        async with guarded(self.db, "count_pending_deliveries"):
            count: int = await self.db.count(DeliveryRow.select().where(DeliveryRow.acked == False).bind(self.db))  # noqa: E712
        return count

    async def unacked_agents(self, message_id: str) -> list[str]:
        async with guarded(self.db, "unacked_agents"):
            rows = await self._all(DeliveryRow.select(DeliveryRow.agent_id).where(
                (DeliveryRow.message_id == message_id) & (DeliveryRow.acked == False)))  # noqa: E712
        return sorted({row.agent_id for row in rows})

    async def ack_delivery(self, agent_id: str, message_id: str) -> bool:
        mine = (DeliveryRow.agent_id == agent_id) & (DeliveryRow.message_id == message_id)
        async with guarded(self.db, "ack_delivery"), self._write():
            count = await self._run(DeliveryRow.update(acked=True, acked_at=format_ts(utc_now())).where(mine & (DeliveryRow.acked == False)))  # noqa: E712
            if count:
                return True
            # Acked before (a second ack is harmless), or never this agent's.
            return await self._first(DeliveryRow.select(DeliveryRow.pk).where(mine)) is not None

    # --- contexts and tasks -----------------------------------------------------

    async def put_context(self, record: ContextRecord) -> None:
        now = utc_now()
        async with guarded(self.db, "put_context"), _session_must_exist(), self._write():
            # Expired contexts of the session are no use to anyone: drop them here.
            await self._run(ContextRow.delete().where((ContextRow.session_id == record.session_id) & (ContextRow.expires_ms <= _epoch_ms(now))))
            await self._run(
                ContextRow.insert(
                    session_id=record.session_id,
                    context_id=record.context_id,
                    data=record.data,
                    targets=list(record.targets),
                    created_by=record.created_by,
                    expires_ms=_epoch_ms(record.expires_at),
                    message_id=record.message_id,
                    updated_at=format_ts(now),
                ).on_conflict(
                    conflict_target=[ContextRow.session_id, ContextRow.context_id],
                    preserve=[ContextRow.data, ContextRow.targets, ContextRow.created_by, ContextRow.expires_ms, ContextRow.message_id, ContextRow.updated_at],
                )
            )

    async def list_contexts(self, session_id: str, agent_id: str, now: datetime) -> list[ContextRecord]:
        async with guarded(self.db, "list_contexts"):
            rows = await self._all(
                ContextRow.select().where((ContextRow.session_id == session_id) & (ContextRow.expires_ms > _epoch_ms(now))).order_by(ContextRow.pk)
            )
        # Targets are a JSON list: filtering them here keeps the query the same
        # on SQLite and PostgreSQL, and a session holds few live contexts.
        return [_context(row) for row in rows if agent_id in row.targets]

    async def get_task(self, session_id: str, task_id: str) -> dict[str, Any] | None:
        async with guarded(self.db, "get_task"):
            row = await self._first(TaskRow.select().where((TaskRow.session_id == session_id) & (TaskRow.task_id == task_id)))
        return None if row is None else dict(row.document)

    async def put_task(self, session_id: str, task_id: str, document: dict[str, Any]) -> None:
        async with guarded(self.db, "put_task"), _session_must_exist(), self._write():
            await self._run(
                TaskRow.insert(session_id=session_id, task_id=task_id, document=document, updated_at=format_ts(utc_now())).on_conflict(
                    conflict_target=[TaskRow.session_id, TaskRow.task_id],
                    preserve=[TaskRow.document, TaskRow.updated_at],
                )
            )

    # --- query helpers ----------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[None]:
        """A write transaction, after this process's earlier writers on SQLite.

        ``BEGIN IMMEDIATE`` on SQLite takes the write lock at once, so two
        writers wait in turn instead of one failing to upgrade.
        """
        transaction = self.db.atomic("IMMEDIATE") if is_sqlite(self.db) else self.db.atomic()
        async with self.sql.writing(), transaction:
            yield

    async def _all(self, query: Any) -> list[Any]:
        """Run a query that returns rows (a select, or a write with RETURNING)."""
        rows: list[Any] = await self.db.list(query.bind(self.db))
        return rows

    async def _first(self, query: Any) -> Any | None:
        rows = await self._all(query.limit(1))
        return rows[0] if rows else None

    async def _run(self, query: Any) -> Any:
        """Run a write; returns the row count (update, delete) or the new key (insert)."""
        return await self.db.aexecute(query)


@asynccontextmanager
async def _session_must_exist() -> AsyncIterator[None]:
    """Turn a foreign-key violation on ``session_id`` into ``not_found.session``."""
    try:
        yield
    except IntegrityError as exc:
        if is_foreign_key_violation(exc):
            raise HostError("not_found.session") from exc
        raise


# --- rows to host types ----------------------------------------------------------


def _unique_members(members: Iterable[Member]) -> list[Member]:
    """Members in order, each id once (the first kind given wins)."""
    seen: dict[str, Member] = {}
    for member in members:
        seen.setdefault(member.id, member)
    return list(seen.values())


def _session(row: Any, members: Iterable[Any]) -> Session:
    return Session(
        id=row.id,
        title=row.title,
        created_by=row.created_by,
        created_at=row.created_at,
        members=[Member(id=m.member_id, kind=m.kind) for m in members],
        last_seq=int(row.last_seq),
        metadata=row.metadata or {},
    )


def _message(row: Any) -> Message:
    return Message(
        id=row.id,
        session_id=row.session_id,
        seq=int(row.seq),
        type=row.type,
        sender=Member(id=row.sender_id, kind=row.sender_kind),
        to=row.recipient,
        in_reply_to=row.in_reply_to,
        client_id=row.client_id,
        payload=row.payload,
        ts=row.ts,
        status=row.status,
    )


def _context(row: Any) -> ContextRecord:
    return ContextRecord(
        session_id=row.session_id,
        context_id=row.context_id,
        data=row.data,
        targets=tuple(row.targets),
        created_by=row.created_by,
        expires_at=datetime.fromtimestamp(row.expires_ms / 1000, tz=UTC),
        message_id=row.message_id,
    )


def _epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
