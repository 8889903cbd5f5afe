"""tkr-client: the Python client and agent SDK of tkr-host.

``ChatClient`` is for people and scripts, ``Agent`` for agent authors. Every
failure is a :class:`TkrError` (a subclass per category).
"""

from __future__ import annotations

from tkr_client.agent import Agent
from tkr_client.backoff import Backoff
from tkr_client.connection import StateChange
from tkr_client.errors import (
    AgentError,
    AuthError,
    ClientError,
    ConflictError,
    InternalError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    StoreError,
    StreamStopped,
    TkrError,
    ValidationError,
)
from tkr_client.replies import Reply, ReplyStream
from tkr_client.tasks import Task
from tkr_client.types import AgentStatus, Chunk, Message, SentMessage, Session

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentError",
    "AgentStatus",
    "AuthError",
    "Backoff",
    "Chunk",
    "ClientError",
    "ConflictError",
    "InternalError",
    "Message",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "QueueFullError",
    "RateLimitError",
    "Reply",
    "ReplyStream",
    "SentMessage",
    "Session",
    "StateChange",
    "StoreError",
    "StreamStopped",
    "Task",
    "TkrError",
    "ValidationError",
]
