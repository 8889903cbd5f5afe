"""The one error shape of the host: ``HostError`` and the table behind it.

Every failure a client can see is a :class:`HostError`. Its category and severity
come from its code, through :data:`CATEGORIES` and :data:`CATALOG`, so that every
``rate_limit.*`` error behaves the same way wherever it is raised. ``to_wire``
renders the Error object of PROTOCOL.md; nothing else reaches a client, so no
stack trace or internal detail can leak.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from tkr_host.logs import current_request_id

Severity = Literal["info", "warning", "error", "critical"]


@dataclass(frozen=True)
class Category:
    """How every error of one category behaves by default."""

    severity: Severity
    recoverable: bool
    hint: str


CATEGORIES: dict[str, Category] = {
    "auth": Category("error", False, "Sign in again to get a fresh token, then reconnect."),
    "permission": Category("error", False, "Ask the session's creator for access."),
    "validation": Category("warning", False, "Fix the request as the message says, then send it again."),
    "rate_limit": Category("warning", True, "Wait a moment, then send again; queued messages are kept."),
    "not_found": Category("warning", False, "Check the id; it may have been mistyped or removed."),
    "conflict": Category("warning", False, "Reload the current state, then try again."),
    "agent": Category("error", True, "The agent may come back; ask again in a moment."),
    "store": Category("critical", True, "The host cannot save right now; your message is kept, retry shortly."),
    "protocol": Category("error", False, "The client broke the protocol; update or restart the client."),
    "internal": Category("critical", True, "Something went wrong on the host; try again, and quote the request id if it persists."),
}


@dataclass(frozen=True)
class ErrorCode:
    """The default message and hint of one error code."""

    message: str
    hint: str | None = None
    severity: Severity | None = None


# Codes the host itself raises. Plugins may raise any ``category.reason`` code;
# an unlisted code takes its category's defaults.
CATALOG: dict[str, ErrorCode] = {
    "auth.required": ErrorCode("No credentials were sent.", "Send a token in the `auth` payload or an Authorization: Bearer header."),
    "auth.invalid": ErrorCode("The credentials are not valid.", "Check the token; sign in again to get a new one."),
    "auth.expired": ErrorCode("The token has expired.", "Sign in again to get a fresh token, then reconnect."),
    "auth.banned": ErrorCode("This source is temporarily banned.", "Wait until the ban ends, then reconnect."),
    "permission.namespace": ErrorCode("This namespace is not open to your kind of principal.", "Connect to /chat, or use an agent credential for /agents."),
    "permission.not_member": ErrorCode("You are not a member of this session.", "Ask the session's creator to invite you."),
    "permission.invite": ErrorCode("Only the session's creator may invite members.", "Ask the session's creator to invite them."),
    "permission.task": ErrorCode("Only the task's creator, its assignee or the session's creator may change it.", "Ask one of them to make the change."),
    "validation.payload": ErrorCode("The payload is not valid.", "Fix the fields named in details, then send again."),
    "validation.not_object": ErrorCode("The payload must be a JSON object.", "Send a single JSON object as the event's argument."),
    "validation.too_large": ErrorCode("The payload is too large.", "Send less data in one event, or split it."),
    "validation.unknown_event": ErrorCode("This namespace does not know that event.", "Check the event name against the protocol."),
    "validation.unknown_type": ErrorCode("No plugin provides that message type.", "Use a registered type such as `text`, or install the plugin that adds it."),
    "validation.recipient": ErrorCode("`to` must name an agent that is a member of the session.", "Invite the agent first, or leave `to` out."),
    "not_found.session": ErrorCode("There is no such session.", "Check the session id, or list your sessions."),
    "not_found.message": ErrorCode("There is no such message.", "Check the message id or seq."),
    "not_found.namespace": ErrorCode("There is no such namespace.", "Connect to /chat, /agents or /tasks."),
    "protocol.reserved_event": ErrorCode("That event name is reserved by Socket.IO.", "Use one of the protocol's event names."),
    "protocol.malformed": ErrorCode("The packet could not be parsed.", "Use an official Socket.IO client."),
    "protocol.idle_timeout": ErrorCode("The connection was idle too long.", "Reconnect when you need the connection again.", "info"),
    "protocol.connect_timeout": ErrorCode("No namespace was connected in time.", "Connect a namespace right after the handshake."),
    "protocol.shutting_down": ErrorCode("The host is shutting down.", "Reconnect in a moment; another node or the restarted host will answer.", "info"),
    "rate_limit.exceeded": ErrorCode("Too many messages.", "Wait, then send again with the same client_id; queued messages are kept."),
    "rate_limit.connect": ErrorCode("Too many connects from this address.", "Wait before reconnecting."),
    "rate_limit.sessions": ErrorCode("Too many new sessions.", "Wait before creating another session."),
    "rate_limit.streams": ErrorCode("Too many streams are open on this connection.", "End an open stream before starting another."),
    "not_found.stream": ErrorCode("There is no open stream with that id.", "Start a stream with stream:start and use the message_id it returns."),
    "conflict.stream_closed": ErrorCode("A member stopped this stream.", "Stop writing to it; the reply was stored as it was, with status `stopped`."),
    "not_found.task": ErrorCode("There is no such task.", "Check the task id, or create the task first."),
    "conflict.task_state": ErrorCode("The task cannot move to that state.", "Reload the task; finished tasks take a new task naming them."),
    "conflict.member_id": ErrorCode("A member of another kind already holds that id in this session.",
                                "Within a session an id names one principal; invite another id."),
    "conflict.task_exists": ErrorCode("A task with that id already exists.", "Use action update, or pick a new task_id."),
    "agent.stream_aborted": ErrorCode("The agent disconnected while replying.", "The partial reply was kept; ask again if you need the rest."),
    "protocol.not_connected": ErrorCode("This socket is not connected to the namespace.", "Connect the namespace before sending events."),
    "protocol.already_connected": ErrorCode("This socket is connected to the namespace already.",
                                        "Use the connection you have; disconnect it before connecting again."),
    "store.unavailable": ErrorCode("The message store is unavailable.", "Your message is kept; it will be sent again shortly."),
    "internal.error": ErrorCode("An unexpected error happened on the host.", None),
}


def new_request_id() -> str:
    """A short, sortable id that links a client's error to the server log.

    Inside an event it is the event's own id (see :mod:`tkr_host.logs`), so the
    error ack and the event's log lines carry the same one.
    """
    return current_request_id() or make_request_id()


def make_request_id() -> str:
    return f"{int(time.time() * 1000):x}-{secrets.token_hex(4)}"


@dataclass(eq=False)  # exceptions compare and hash by identity
class HostError(Exception):
    """A failure that is shown to a client as the protocol's Error object.

    Only ``code`` is required: message, hint, severity and whether it is
    recoverable default to the catalog entry of the code and then its category.
    """

    code: str
    message: str | None = None
    hint: str | None = None
    retry_after: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    severity: Severity | None = None
    recoverable: bool | None = None
    request_id: str = field(default_factory=new_request_id)

    def __post_init__(self) -> None:
        category, _, reason = self.code.partition(".")
        if category not in CATEGORIES or not reason:
            raise ValueError(f"error code {self.code!r} is not `category.reason` with a known category")
        super().__init__(self.code)

    @property
    def category(self) -> str:
        return self.code.partition(".")[0]

    def __str__(self) -> str:
        return f"{self.code}: {self.to_wire()['message']}"

    def to_wire(self) -> dict[str, Any]:
        """The Error object of PROTOCOL.md, ready to be sent."""
        category = CATEGORIES[self.category]
        known = CATALOG.get(self.code)
        message = self.message or (known.message if known else self.code.replace(".", ": ").replace("_", " "))
        hint = self.hint or (known.hint if known and known.hint else category.hint)
        severity = self.severity or (known.severity if known and known.severity else category.severity)
        recoverable = category.recoverable if self.recoverable is None else self.recoverable
        error: dict[str, Any] = {
            "code": self.code,
            "category": self.category,
            "severity": severity,
            "message": message,
            "hint": hint,
            "recoverable": recoverable or self.retry_after is not None,
            "request_id": self.request_id,
            "details": _plain(self.details),
        }
        if self.retry_after is not None:
            error["retry_after"] = round(self.retry_after, 3)
        return error


def _plain(details: dict[str, Any]) -> Any:
    """``details`` as plain JSON: a value a plugin put there that JSON cannot
    hold becomes its text, so the ack can always be sent."""
    try:
        json.dumps(details)
        return details
    except (TypeError, ValueError):
        return json.loads(json.dumps(details, default=str))


def internal_error() -> HostError:
    """The error a client sees for an unexpected exception; the log holds the detail
    under the error's ``request_id`` (the event's, see :mod:`tkr_host.logs`)."""
    return HostError("internal.error")


def failure(error: HostError) -> dict[str, Any]:
    """An ack that reports ``error``."""
    return {"ok": False, "error": error.to_wire()}
