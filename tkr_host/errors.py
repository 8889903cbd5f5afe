"""The one error shape of the host: ``HostError`` and the table behind it.

Every failure a client can see is a :class:`HostError`. Its category and severity
come from its code, through :data:`CATEGORIES`, :data:`CATALOG` (the core's codes)
and :data:`PLUGIN_CODES` (each plugin's, from its ``error_codes`` hook), so that every
``rate_limit.*`` error behaves the same way wherever it is raised. ``to_wire``
renders the Error object of PROTOCOL.md; nothing else reaches a client, so no
stack trace or internal detail can leak.
"""

from __future__ import annotations

import json
import random
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
    """An error code's defaults: its message, hint and severity, and when it is
    raised (``when``, the row of docs/protocol.md's table of codes).

    A ``HostError`` raised with its own message or hint keeps them; these fill
    in what it leaves out.
    """

    message: str
    hint: str | None = None
    severity: Severity | None = None
    when: str = ""


#: The codes the core raises. A plugin's codes are the plugin's: it returns them
#: from its ``error_codes`` hook (tkr_host.plugins registers them at start-up).
#: An unlisted ``category.reason`` code takes its category's defaults.
CATALOG: dict[str, ErrorCode] = {
    "auth.required": ErrorCode(
        "No credentials were sent.", "Send a token in the `auth` payload or an Authorization: Bearer header.",
        when="a connect or HTTP request carried no credential",
    ),
    "auth.invalid": ErrorCode(
        "The credentials are not valid.", "Check the token; sign in again to get a new one.",
        when="no plugin accepted the credential",
    ),
    "auth.expired": ErrorCode(
        "The token has expired.", "Sign in again to get a fresh token, then reconnect.",
        when="the token has expired",
    ),
    "permission.namespace": ErrorCode(
        "This namespace is not open to your kind of principal.", "Connect to /chat, or use an agent credential for /agents.",
        when="a principal that is not an agent connected to `/agents`",
    ),
    "permission.not_member": ErrorCode(
        "You are not a member of this session.", "Ask the session's creator to invite you.",
        when="the principal is not a member of the session",
    ),
    "permission.invite": ErrorCode(
        "Only the session's creator may invite members.", "Ask the session's creator to invite them.",
        when="someone other than the session's creator sent `session:invite`",
    ),
    "validation.payload": ErrorCode(
        "The payload is not valid.", "Fix the fields named in details, then send again.",
        when="a payload field is missing, unknown, of the wrong type or out of range",
    ),
    "validation.not_object": ErrorCode(
        "The payload must be a JSON object.", "Send a single JSON object as the event's argument.",
        when="the event did not carry exactly one JSON object",
    ),
    "validation.too_large": ErrorCode(
        "The payload is too large.", "Send less data in one event, or split it.",
        when="the payload is over `host.max_payload_bytes`, or a streamed reply over its limit",
    ),
    "validation.unknown_event": ErrorCode(
        "This namespace does not know that event.", "Check the event name against the protocol.",
        when="the namespace has no such event; `details.events` lists the ones it has",
    ),
    "validation.unknown_type": ErrorCode(
        "No plugin provides that message type.", "Use a registered type such as `text`, or install the plugin that adds it.",
        when="no plugin provides the message type; `details.types` lists the ones there are",
    ),
    "validation.recipient": ErrorCode(
        "`to` must name an agent that is a member of the session.", "Invite the agent first, or leave `to` out.",
        when="`to` (or a context target, a task assignee) is not an agent of the session",
    ),
    "not_found.session": ErrorCode(
        "There is no such session.", "Check the session id, or list your sessions.",
        when="there is no such session",
    ),
    "not_found.message": ErrorCode(
        "There is no such message.", "Check the message id or seq.",
        when="there is no such message (`in_reply_to`, `message:receipt`, `message:ack`)",
    ),
    "not_found.namespace": ErrorCode(
        "There is no such namespace.", "Connect to /chat, /agents or /tasks.",
        when="a connect to a namespace the host does not serve",
    ),
    "protocol.reserved_event": ErrorCode(
        "That event name is reserved by Socket.IO.", "Use one of the protocol's event names.",
        when="the client sent an event with a reserved name",
    ),
    "protocol.malformed": ErrorCode(
        "The packet could not be parsed.", "Use an official Socket.IO client.",
        when="a packet that cannot be parsed or is not one a client may send; the connection is closed",
    ),
    "protocol.connect_timeout": ErrorCode(
        "No namespace was connected in time.", "Connect a namespace right after the handshake.",
        when="no namespace was connected in time; the session is closed (in the log only: there is no namespace to send it to)",
    ),
    "protocol.shutting_down": ErrorCode(
        "The host is shutting down.", "Reconnect in a moment; another node or the restarted host will answer.", "info",
        when="the host is draining: connects are refused, open sockets get it as an `error` event",
    ),
    "rate_limit.exceeded": ErrorCode(
        "Too many messages.", "Wait, then send again with the same client_id; queued messages are kept.",
        when="too many messages from one principal (`tkr-ratelimit`)",
    ),
    "rate_limit.connect": ErrorCode(
        "Too many connects from this address.", "Wait before reconnecting.",
        when="too many connects from one address (`tkr-ratelimit`)",
    ),
    "rate_limit.sessions": ErrorCode(
        "Too many new sessions.", "Wait before creating another session.",
        when="too many new sessions from one principal (`tkr-ratelimit`)",
    ),
    "rate_limit.streams": ErrorCode(
        "Too many streams are open on this connection.", "End an open stream before starting another.",
        when="an agent already holds 16 streams open on this connection; end one first",
    ),
    "not_found.stream": ErrorCode(
        "There is no open stream with that id.", "Start a stream with stream:start and use the message_id it returns.",
        when="`stream:chunk` or `stream:end` names no open stream of this agent; `stream:stop` names no reply being streamed in that session",
    ),
    "conflict.stream_closed": ErrorCode(
        "A member stopped this stream.", "Stop writing to it; the reply was stored as it was, with status `stopped`.",
        when="`stream:chunk` or `stream:end` for a stream a member stopped (`stream:stop`); `details.message_id` names it",
    ),
    "not_found.task": ErrorCode(
        "There is no such task.", "Check the task id, or create the task first.",
        when="there is no such task (in this session)",
    ),
    "conflict.member_id": ErrorCode(
        "A member of another kind already holds that id in this session.", "Within a session an id names one principal; invite another id.",
        when="`session:invite` of an id that a member of another kind already holds in the session",
    ),
    "agent.stream_aborted": ErrorCode(
        "The agent disconnected while replying.", "The partial reply was kept; ask again if you need the rest.",
        when="an agent disconnected while streaming a reply",
    ),
    "protocol.not_connected": ErrorCode(
        "This socket is not connected to the namespace.", "Connect the namespace before sending events.",
        when="an event arrived from a socket the host does not know in that namespace",
    ),
    "protocol.already_connected": ErrorCode(
        "This socket is connected to the namespace already.", "Use the connection you have; disconnect it before connecting again.",
        when="a connect to a namespace the socket is connected to already; the first connection stays",
    ),
    "store.unavailable": ErrorCode(
        "The message store is unavailable.", "Your message is kept; it will be sent again shortly.",
        when=("the database does not answer, or `tkr-recovery`'s circuit breaker is open (`details.breaker = \"open\"`, "
              "with `retry_after`); send again with the same `client_id`"),
    ),
    "internal.error": ErrorCode(
        "An unexpected error happened on the host.", None,
        when="an unexpected failure; quote the `request_id`",
    ),
}

#: Codes registered by plugins: code -> (plugin name, entry). Process-wide, as
#: ``HostError`` is built anywhere; each plugin manager checks its own plugins
#: for duplicates before it adds them (:func:`tkr_host.plugins.register_error_codes`).
PLUGIN_CODES: dict[str, tuple[str, ErrorCode]] = {}


def lookup(code: str) -> ErrorCode | None:
    """The defaults of ``code``: the core's, else the plugin's that registered it."""
    known = CATALOG.get(code)
    if known is not None:
        return known
    registered = PLUGIN_CODES.get(code)
    return registered[1] if registered else None


def code_problem(code: str) -> str | None:
    """Why ``code`` is not a valid error code, or None."""
    category, _, reason = code.partition(".")
    if category not in CATEGORIES or not reason:
        return f"error code {code!r} is not `category.reason` with a known category ({', '.join(CATEGORIES)})"
    return None


def new_request_id() -> str:
    """A short, sortable id that links a client's error to the server log.

    Inside an event it is the event's own id (see :mod:`tkr_host.logs`), so the
    error ack and the event's log lines carry the same one.
    """
    return current_request_id() or make_request_id()


def make_request_id() -> str:
    # Every event gets one, so it must be cheap: it links a log line to an ack
    # and guards nothing, so the process's PRNG (reseeded by Python after a
    # fork) does, not a system call to the OS's random source per event.
    return f"{int(time.time() * 1000):x}-{random.getrandbits(32):08x}"


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
        problem = code_problem(self.code)
        if problem is not None:
            raise ValueError(problem)
        super().__init__(self.code)

    @property
    def category(self) -> str:
        return self.code.partition(".")[0]

    def __str__(self) -> str:
        return f"{self.code}: {self.to_wire()['message']}"

    def to_wire(self) -> dict[str, Any]:
        """The Error object of PROTOCOL.md, ready to be sent."""
        category = CATEGORIES[self.category]
        known = lookup(self.code)
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
