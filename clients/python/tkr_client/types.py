"""The protocol's objects as the SDK hands them over: plain dicts, typed for editors and mypy."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

AgentState = Literal["idle", "thinking", "working", "waiting"]
TaskState = Literal["submitted", "working", "input-required", "auth-required", "completed", "failed", "canceled", "rejected"]
FINAL_TASK_STATES: frozenset[str] = frozenset({"completed", "failed", "canceled", "rejected"})


class Member(TypedDict):
    id: str
    kind: str


class Message(TypedDict):
    """A stored message (PROTOCOL.md "Message")."""

    id: str
    session_id: str
    seq: int
    type: str
    sender: Member
    to: str | None
    in_reply_to: str | None
    client_id: str | None
    payload: dict[str, Any]
    ts: str
    status: str


class Session(TypedDict):
    """A session (PROTOCOL.md "Session")."""

    id: str
    title: str
    created_by: str
    created_at: str
    members: list[Member]
    last_seq: int


class SentMessage(TypedDict):
    """What a send returns: the ack's message."""

    id: str
    seq: int
    ts: str


class Chunk(TypedDict):
    """A piece of a streamed reply (``message:chunk``)."""

    session_id: str
    message_id: str
    index: int
    delta: str


class AgentStatus(TypedDict):
    """An ``agent:status`` event."""

    session_id: str
    agent: Member
    state: AgentState
    detail: str | None
    ts: str
