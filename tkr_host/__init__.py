"""tkr-host: the real-time layer for agent chat.

Plugins import what they need from here: ``hookimpl`` and the public types.
"""

from __future__ import annotations

from tkr_host.config import ConfigError
from tkr_host.defaults.routes import error_response, http_principal
from tkr_host.errors import HostError
from tkr_host.hookspecs import hookimpl
from tkr_host.host import Host
from tkr_host.types import (
    AppendResult,
    ContextRecord,
    Handshake,
    Member,
    Message,
    MessageContext,
    MessageDraft,
    MessageType,
    Principal,
    RateLimiter,
    RecoveryStrategy,
    SecurityEvent,
    Session,
    Store,
    TaskWrite,
    format_ts,
    utc_now,
)

__version__ = "0.1.0"

__all__ = [
    "AppendResult",
    "ConfigError",
    "ContextRecord",
    "Handshake",
    "Host",
    "HostError",
    "Member",
    "Message",
    "MessageContext",
    "MessageDraft",
    "MessageType",
    "Principal",
    "RateLimiter",
    "RecoveryStrategy",
    "SecurityEvent",
    "Session",
    "Store",
    "TaskWrite",
    "__version__",
    "error_response",
    "format_ts",
    "hookimpl",
    "http_principal",
    "utc_now",
]
