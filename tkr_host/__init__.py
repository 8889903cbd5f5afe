"""tkr-host: the real-time layer for agent chat.

``__all__`` below is the whole public surface: plugins, examples and clients
import from ``tkr_host`` and nothing deeper (tests/test_public_api.py checks
every first-party one). Each name is documented in docs/host-api.md. Modules
whose names start with ``_`` are the runtime and may change at any time.
"""

from __future__ import annotations

from tkr_host._presence import AgentStatus
from tkr_host._streams import OpenStream
from tkr_host._version import __version__
from tkr_host.api import ConnectionView, HostAPI, MessageContext, MessageType, StoreGuard
from tkr_host.cli import add_config_argument, load_config
from tkr_host.cluster import ClusterHandlers, ClusterState, stream_record
from tkr_host.config import ConfigError, Settings
from tkr_host.defaults.routes import error_response, http_principal
from tkr_host.errors import ErrorCode, HostError
from tkr_host.hookspecs import hookimpl
from tkr_host.room_index import RoomIndex
from tkr_host.telemetry import HostMetrics
from tkr_host.types import (
    AppendResult,
    ContextRecord,
    Handshake,
    Member,
    Message,
    MessageDraft,
    Principal,
    PrincipalKind,
    RateLimiter,
    ReceiptStatus,
    RecoveryStrategy,
    SecurityEvent,
    Session,
    Store,
    TaskWrite,
    format_ts,
    has_hidden_characters,
    utc_now,
)

__all__ = [
    "AgentStatus",
    "AppendResult",
    "ClusterHandlers",
    "ClusterState",
    "ConfigError",
    "ConnectionView",
    "ContextRecord",
    "ErrorCode",
    "Handshake",
    "HostAPI",
    "HostError",
    "HostMetrics",
    "Member",
    "Message",
    "MessageContext",
    "MessageDraft",
    "MessageType",
    "OpenStream",
    "Principal",
    "PrincipalKind",
    "RateLimiter",
    "ReceiptStatus",
    "RecoveryStrategy",
    "RoomIndex",
    "SecurityEvent",
    "Session",
    "Settings",
    "Store",
    "StoreGuard",
    "TaskWrite",
    "__version__",
    "add_config_argument",
    "error_response",
    "format_ts",
    "has_hidden_characters",
    "hookimpl",
    "http_principal",
    "load_config",
    "stream_record",
    "utc_now",
]
