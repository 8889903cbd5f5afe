"""tkr-client: the Python client and agent SDK of tkr-host.

``ChatClient`` is for people and scripts, ``Agent`` for agent authors. Every
failure is a :class:`TkrError` (a subclass per category).
"""

from __future__ import annotations

from tkr_client.agent import Agent
from tkr_client.chat import ChatClient
from tkr_client.connection import Backoff, ClientState, StateChange
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
from tkr_client.events import Event
from tkr_client.queue import MemoryQueue, OfflineQueue, SqliteQueue
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
    "ChatClient",
    "Chunk",
    "ClientError",
    "ClientState",
    "ConflictError",
    "Event",
    "InternalError",
    "MemoryQueue",
    "Message",
    "NotFoundError",
    "OfflineQueue",
    "PermissionDeniedError",
    "ProtocolError",
    "QueueFullError",
    "RateLimitError",
    "Reply",
    "ReplyStream",
    "SentMessage",
    "Session",
    "SqliteQueue",
    "StateChange",
    "StoreError",
    "StreamStopped",
    "Task",
    "TkrError",
    "ValidationError",
]
