"""Versioned schema migrations, run by ``playhouse.migrations.Runner``.

peewee's runner reads numbered ``.py`` files from a directory; here the steps
are a list in this module instead, so that they ship inside the package and
cannot be lost or shadowed. Each step is a name and an ``up(migrator, db)``
function, and the runner records applied names in ``schema_migrations``.

A step declares frozen copies of the tables it touches, never the query
models of :mod:`tkr_store_peewee.models`, so old steps keep meaning what they
meant when they were written. To change the schema, append a step and change
the query models to match.

Steps are synchronous peewee code: :func:`apply_migrations` runs them inside
``db.run`` (a greenlet), under a lock (``BEGIN IMMEDIATE`` on SQLite, an
advisory lock on PostgreSQL) so that host nodes starting together apply each
step exactly once.
"""

# playhouse ships no types, so peewee's Model is Any to mypy.
# mypy: allow-subclassing-any

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from peewee import (
    SQL,
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    Model,
    TextField,
)
from playhouse.migrations import Migration, Runner

from tkr_store_peewee.database import is_sqlite

HISTORY_TABLE = "schema_migrations"
#: Key of the PostgreSQL advisory lock held while migrating, per schema.
LOCK_NAME = "tkr_store_peewee.migrate"


@dataclass(frozen=True)
class Step:
    """One migration: ``name`` sorts by its number prefix (``0001_initial``)."""

    name: str
    up: Callable[[Any, Any], None]
    #: Run the step in a savepoint of its own (the runner's ``atomic``).
    atomic: bool = True


def _initial(migrator: Any, db: Any) -> None:
    """Create every table, with its constraints and indexes."""

    class Base(Model):
        class Meta:
            database = db

    class Sessions(Base):
        pk = AutoField()
        id = CharField(max_length=64, unique=True)
        title = TextField(default="")
        created_by = CharField(max_length=200)
        created_at = CharField(max_length=32)
        last_seq = BigIntegerField(default=0)
        metadata = TextField(default="{}")

        class Meta:
            table_name = "sessions"

    class Members(Base):
        pk = AutoField()
        session_id = CharField(max_length=64)
        member_id = CharField(max_length=200, index=True)
        kind = CharField(max_length=16)
        joined_at = CharField(max_length=32)

        class Meta:
            table_name = "members"
            indexes = ((("session_id", "member_id"), True),)
            constraints = (_fk("session_id", "sessions", "id"),)

    class Messages(Base):
        id = CharField(max_length=64, primary_key=True)
        session_id = CharField(max_length=64)
        seq = BigIntegerField()
        type = CharField(max_length=64)
        sender_id = CharField(max_length=200)
        sender_kind = CharField(max_length=16)
        recipient = CharField(max_length=200, null=True)
        in_reply_to = CharField(max_length=64, null=True)
        client_id = CharField(max_length=64, null=True)
        payload = TextField()
        ts = CharField(max_length=32)
        status = CharField(max_length=16, default="complete")

        class Meta:
            table_name = "messages"
            # The second index is the idempotency key: a NULL client_id never
            # collides, on SQLite and on PostgreSQL alike.
            indexes = (
                (("session_id", "seq"), True),
                (("session_id", "sender_id", "client_id"), True),
            )
            constraints = (_fk("session_id", "sessions", "id"),)

    class Receipts(Base):
        pk = AutoField()
        message_id = CharField(max_length=64)
        session_id = CharField(max_length=64)
        seq = BigIntegerField()
        member_id = CharField(max_length=200)
        status = CharField(max_length=16)
        at = CharField(max_length=32)

        class Meta:
            table_name = "receipts"
            indexes = ((("message_id", "member_id", "status"), True),)
            constraints = (_fk("message_id", "messages", "id"),)

    class Deliveries(Base):
        pk = AutoField()
        agent_id = CharField(max_length=200)
        message_id = CharField(max_length=64)
        session_id = CharField(max_length=64)
        created_at = CharField(max_length=32)
        acked = BooleanField(default=False)
        acked_at = CharField(max_length=32, null=True)

        class Meta:
            table_name = "deliveries"
            indexes = (
                (("agent_id", "message_id"), True),
                (("agent_id", "acked", "pk"), False),
            )
            constraints = (_fk("message_id", "messages", "id"),)

    class Contexts(Base):
        pk = AutoField()
        session_id = CharField(max_length=64)
        context_id = TextField()
        data = TextField()
        targets = TextField(default="[]")
        created_by = CharField(max_length=200)
        expires_ms = BigIntegerField()
        message_id = CharField(max_length=64, null=True)
        updated_at = CharField(max_length=32)

        class Meta:
            table_name = "contexts"
            indexes = ((("session_id", "context_id"), True),)
            constraints = (_fk("session_id", "sessions", "id"),)

    class Tasks(Base):
        task_id = TextField(primary_key=True)
        session_id = CharField(max_length=64, index=True)
        document = TextField()
        updated_at = CharField(max_length=32)

        class Meta:
            table_name = "tasks"
            constraints = (_fk("session_id", "sessions", "id"),)

    # One by one, parents first: create_tables() sorts by model name, as it
    # only follows ForeignKeyField and cannot see the SQL constraints.
    for model in (Sessions, Members, Messages, Receipts, Deliveries, Contexts, Tasks):
        model.create_table()


def _fk(column: str, table: str, target: str) -> Any:
    """A table constraint ``FOREIGN KEY (column) REFERENCES table (target)``.

    Declared as SQL rather than as ``ForeignKeyField`` so that the column stays
    a plain value on the model side (no lazy loads outside the async bridge).
    """
    return SQL(f'FOREIGN KEY ("{column}") REFERENCES "{table}" ("{target}") ON DELETE CASCADE')


def _tasks_by_session(migrator: Any, db: Any) -> None:
    """Key tasks by ``(session_id, task_id)`` (PROTOCOL.md 1.1), so that a task id
    is unique within its session only and never tells one session of another's.

    Neither database changes a primary key in place on both, so the rows move to a
    new table that then takes the old one's name.
    """

    class TasksBySession(Model):
        session_id = CharField(max_length=64)
        task_id = TextField()
        document = TextField()
        updated_at = CharField(max_length=32)

        class Meta:
            database = db
            table_name = "tasks_by_session"
            primary_key = CompositeKey("session_id", "task_id")
            constraints = (_fk("session_id", "sessions", "id"),)

    TasksBySession.create_table()
    db.execute_sql("INSERT INTO tasks_by_session (session_id, task_id, document, updated_at)"
                   " SELECT session_id, task_id, document, updated_at FROM tasks")
    db.execute_sql("DROP TABLE tasks")
    db.execute_sql("ALTER TABLE tasks_by_session RENAME TO tasks")


#: Every migration, oldest first. Append; never edit or reorder a released step.
STEPS: tuple[Step, ...] = (Step("0001_initial", _initial), Step("0002_tasks_by_session", _tasks_by_session))


class _StepMigration(Migration):
    """A runner entry whose ``path`` field carries the :class:`Step` itself.

    The runner only needs ``path`` to be set and ``load()`` to return an object
    with ``up`` (and optionally ``atomic``), which a Step is.
    """

    __slots__ = ()

    def load(self) -> Step:
        step: Step = self.path
        return step


class StepRunner(Runner):
    """``playhouse.migrations.Runner`` over an in-code list of steps."""

    def __init__(self, db: Any, steps: Sequence[Step]) -> None:
        names = [step.name for step in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"migration names repeat: {names}")
        super().__init__(db, directory="", table_name=HISTORY_TABLE)
        self.steps = tuple(steps)

    def migrations(self) -> list[Migration]:
        return [_StepMigration(index, step.name, step, None) for index, step in enumerate(self.steps)]


async def apply_migrations(db: Any, steps: Sequence[Step] = STEPS, pg_schema: str | None = None) -> list[str]:
    """Apply the pending steps, in order, under a lock; return their names.

    The caller releases the connection (``db.aclose()``) afterwards.
    """
    runner = StepRunner(db, steps)
    if is_sqlite(db):
        # IMMEDIATE takes the write lock first, so a second process waits here
        # and then finds every step recorded.
        async with db.atomic("IMMEDIATE"):
            applied: list[str] = await db.run(runner.up)
        return applied
    async with db.atomic():
        # The lock is released at commit; the key is per schema, so stores in
        # different schemas of one database do not wait for each other.
        await db.aexecute_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{LOCK_NAME}:{pg_schema or ''}",))
        if pg_schema is not None:
            await db.aexecute_sql(f'CREATE SCHEMA IF NOT EXISTS "{pg_schema}"')
        applied = await db.run(runner.up)
    return applied
