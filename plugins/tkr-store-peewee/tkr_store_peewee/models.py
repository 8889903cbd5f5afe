"""Query-side peewee models of the store's tables.

The models are not bound to a database: one process may run several stores
(tests do, to act as two host nodes), so every query is bound to its store's
database when it runs (see ``PeeweeStore``). They declare no foreign keys,
indexes or constraints either: the schema, with all of those, is created by
:mod:`tkr_store_peewee.migrations`, which keeps its own frozen copy of each
table. A change to a table needs a new migration step *and* a change here.
"""

# playhouse ships no types, so peewee's Model is Any to mypy.
# mypy: allow-subclassing-any

from __future__ import annotations

import json
from typing import Any

from peewee import AutoField, BigIntegerField, BooleanField, CharField, CompositeKey, Model, TextField


class JSONText(TextField):
    """JSON kept as text, the same on SQLite and PostgreSQL.

    ``ensure_ascii`` stays on: PostgreSQL text cannot hold a NUL character and
    UTF-8 cannot hold a lone surrogate, while their ``\\u`` escapes are plain ASCII.
    """

    def db_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"))

    def python_value(self, value: Any) -> Any:
        if value is None:
            return None
        return json.loads(value)


class BaseModel(Model):
    class Meta:
        database = None
        legacy_table_names = False


class SessionRow(BaseModel):
    pk = AutoField()  # creation order: list_sessions sorts by it
    id = CharField(max_length=64)
    title = TextField()
    created_by = CharField(max_length=200)
    created_at = CharField(max_length=32)
    last_seq = BigIntegerField()
    metadata = JSONText()

    class Meta:
        table_name = "sessions"


class MemberRow(BaseModel):
    pk = AutoField()  # join order
    session_id = CharField(max_length=64)
    member_id = CharField(max_length=200)
    kind = CharField(max_length=16)
    joined_at = CharField(max_length=32)

    class Meta:
        table_name = "members"


class MessageRow(BaseModel):
    id = CharField(max_length=64, primary_key=True)
    session_id = CharField(max_length=64)
    seq = BigIntegerField()
    type = CharField(max_length=64)
    sender_id = CharField(max_length=200)
    sender_kind = CharField(max_length=16)
    recipient = CharField(max_length=200, null=True)  # the wire's `to`
    in_reply_to = CharField(max_length=64, null=True)
    client_id = CharField(max_length=64, null=True)
    payload = JSONText()
    ts = CharField(max_length=32)
    status = CharField(max_length=16)

    class Meta:
        table_name = "messages"


class ReceiptRow(BaseModel):
    pk = AutoField()
    message_id = CharField(max_length=64)
    session_id = CharField(max_length=64)
    seq = BigIntegerField()
    member_id = CharField(max_length=200)
    status = CharField(max_length=16)
    at = CharField(max_length=32)

    class Meta:
        table_name = "receipts"


class DeliveryRow(BaseModel):
    pk = AutoField()  # creation order: pending deliveries go out oldest first
    agent_id = CharField(max_length=200)
    message_id = CharField(max_length=64)
    session_id = CharField(max_length=64)
    created_at = CharField(max_length=32)
    acked = BooleanField()
    acked_at = CharField(max_length=32, null=True)

    class Meta:
        table_name = "deliveries"


class ContextRow(BaseModel):
    pk = AutoField()
    session_id = CharField(max_length=64)
    context_id = TextField()
    data = JSONText()
    targets = JSONText()  # a JSON list of agent ids
    created_by = CharField(max_length=200)
    # Milliseconds since the epoch: compared as integers on both databases,
    # with no timezone conversion in either driver.
    expires_ms = BigIntegerField()
    message_id = CharField(max_length=64, null=True)
    updated_at = CharField(max_length=32)

    class Meta:
        table_name = "contexts"


class TaskRow(BaseModel):
    session_id = CharField(max_length=64)
    task_id = TextField()
    document = JSONText()
    updated_at = CharField(max_length=32)

    class Meta:
        table_name = "tasks"
        primary_key = CompositeKey("session_id", "task_id")
