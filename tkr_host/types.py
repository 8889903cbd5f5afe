"""The public data types of the host: principals, sessions, messages, and the
Protocols that plugins implement (Store, RateLimiter, RecoveryStrategy).
MessageType and MessageContext name the host, so they live in tkr_host.api.

Plugins import these from ``tkr_host`` and nothing else, so this module is the
contract between the host and third parties.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

PrincipalKind = Literal["user", "agent", "service"]
MessageStatus = Literal["complete", "incomplete", "stopped"]
ReceiptStatus = Literal["delivered", "read"]

#: The largest integer every client holds exactly (JavaScript's
#: ``Number.MAX_SAFE_INTEGER``). Every integer field of every event and route
#: lies in ``0..MAX_SAFE_INTEGER`` or a narrower range, so no value can reach the
#: store's 64-bit columns out of range.
MAX_SAFE_INTEGER = 2**53 - 1


#: Unicode categories no principal id may hold: controls (C0, DEL, C1), format
#: characters (bidi overrides, zero-width spaces), surrogates, and line and
#: paragraph separators. They hide in logs and on screens, so that ``bob`` and
#: ``bob\u200b`` would look like one principal.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def has_hidden_characters(text: str) -> bool:
    return any(unicodedata.category(char) in HIDDEN_CATEGORIES for char in text)


def _visible(value: str) -> str:
    if has_hidden_characters(value):
        raise ValueError("must not hold control or invisible characters")
    return value


#: A principal id as an auth plugin or a client may give it.
PrincipalId = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_visible)]


def principal_key(who: Principal | Member) -> str:
    """``kind:id``: one principal's key wherever principals are counted (rate
    limits), so that ``user:bot1`` never uses up ``agent:bot1``'s budget."""
    return f"{who.kind}:{who.id}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_ts(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, as PROTOCOL.md requires."""
    # isoformat, not strftime: a few timestamps are made for every message sent.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


@functools.lru_cache(maxsize=4096)
def _member(member_id: str, kind: PrincipalKind) -> Member:
    """The Member of a principal, made once: Member is frozen, so one instance can be shared."""
    return Member(id=member_id, kind=kind)


class Principal(BaseModel):
    """Who is on the other end of a connection, as an auth plugin found it."""

    model_config = ConfigDict(frozen=True)

    id: PrincipalId
    kind: PrincipalKind = "user"
    name: str = ""
    roles: tuple[str, ...] = ()

    def member(self) -> Member:
        # Every send and join asks for it: one frozen Member per principal, not a validation per call.
        return _member(self.id, self.kind)

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name or self.id, "roles": list(self.roles)}


class Member(BaseModel):
    """A session member: a principal id and kind.

    The two together name a principal: ``user:bot1`` and ``agent:bot1`` are two
    principals, and every membership check compares both (docs/protocol.md,
    "Principals of different kinds").
    """

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=200)
    kind: PrincipalKind = "user"


@dataclass(frozen=True)
class Handshake:
    """What a namespace connect offers an auth plugin.

    ``token`` comes from the Socket.IO ``auth`` payload or an ``Authorization:
    Bearer`` header, never from the URL. ``peer`` is the client address as the
    host trusts it (see the guard plugin for proxies).
    """

    namespace: str
    token: str | None
    headers: Mapping[str, str]
    peer: str
    auth: Mapping[str, Any] = field(default_factory=dict)


class Session(BaseModel):
    """A conversation between members; ``last_seq`` is its newest message's seq."""

    id: str
    title: str = ""
    created_by: str
    created_at: str
    members: list[Member] = Field(default_factory=list)
    last_seq: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)

    def has_member(self, member: Member) -> bool:
        """Whether ``member``, id *and* kind, belongs to the session."""
        # What Member's equality compares, without pydantic's __eq__ per member (2 % of a send's CPU).
        member_id, kind = member.id, member.kind
        return any(m.id == member_id and m.kind == kind for m in self.members)

    def member_with_id(self, member_id: str) -> Member | None:
        """The member holding ``member_id``: within a session an id names one principal."""
        return next((m for m in self.members if m.id == member_id), None)

    def is_creator(self, member: Member) -> bool:
        return member.id == self.created_by and self.has_member(member)

    def agent_ids(self) -> list[str]:
        return [m.id for m in self.members if m.kind == "agent"]

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Message(BaseModel):
    """A stored message, exactly as it goes over the wire."""

    id: str
    session_id: str
    seq: int
    type: str
    sender: Member
    to: str | None = None
    in_reply_to: str | None = None
    client_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    ts: str
    status: MessageStatus = "complete"

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass
class MessageDraft:
    """A message on its way to the store: everything but ``seq`` and ``ts``.

    A MessageType handler may change ``payload`` (to normalise it) and ``to``.
    ``id`` is set in advance for streamed replies, whose id is announced at
    ``stream:start``.
    """

    session_id: str
    type: str
    sender: Member
    payload: dict[str, Any]
    client_id: str | None = None
    to: str | None = None
    in_reply_to: str | None = None
    status: MessageStatus = "complete"
    id: str | None = None
    #: Rows the store saves in the same transaction as the message (a task's new
    #: document, a context), so that they and the message commit together or
    #: not at all. A type's handler adds them, typically from a ``check``.
    writes: list[TaskWrite | ContextRecord] = field(default_factory=list)


@dataclass(frozen=True)
class TaskWrite:
    """A task document to save with its message: ``(session_id, task_id)`` is
    inserted or replaced."""

    session_id: str
    task_id: str
    document: dict[str, Any]


@dataclass(frozen=True)
class AppendResult:
    """What ``Store.append_message`` did: the stored message, and whether it was
    already there under the same ``(sender, session, client_id)``."""

    message: Message
    duplicate: bool


@dataclass(frozen=True)
class ContextRecord:
    """Shared context of a session, visible to ``targets`` until ``expires_at``."""

    session_id: str
    context_id: str
    data: dict[str, Any]
    targets: tuple[str, ...]
    created_by: str
    expires_at: datetime
    message_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "context_id": self.context_id,
            "data": self.data,
            "targets": list(self.targets),
            "created_by": self.created_by,
            "expires_at": format_ts(self.expires_at),
            "message_id": self.message_id,
        }


# --- the Protocols plugins implement ----------------------------------------


@runtime_checkable
class Store(Protocol):
    """Persistence of sessions, members, messages, agent deliveries, contexts and tasks.

    Every method is a coroutine and releases its database connection before it
    returns. Errors that may pass (a locked or restarting database) are raised as
    ``HostError("store.unavailable")``; the recovery plugin retries them.

    A store may set ``ordered_appends = True`` when the appends of a session
    take their seqs in the order ``append_message`` is called (the seq is
    taken, or the append queued, before its first await). The host then holds
    no session lock across the commit of a message without checks or side
    effects, and orders the emits itself; without it the lock is held.
    """

    async def start(self) -> None:
        """Open the database and apply migrations when configured to."""

    async def close(self) -> None:
        """Close every connection; called once at shutdown."""

    async def ping(self) -> None:
        """Raise when the database does not answer (used by ``/readyz``)."""

    async def migrate(self) -> list[str]:
        """Apply pending schema migrations; return the names applied."""

    async def create_session(self, title: str, created_by: Member, members: list[Member], metadata: dict[str, Any]) -> Session:
        """Create a session whose members include ``created_by``."""

    async def get_session(self, session_id: str) -> Session | None:
        """The session with its members and ``last_seq``, or None."""

    async def list_sessions(self, member: Member) -> list[Session]:
        """Every session ``member`` (that id with that kind) belongs to, newest first."""

    async def add_member(self, session_id: str, member: Member) -> Session:
        """Add ``member`` (no-op when already there) and return the session.

        Within a session an id names one principal: raise
        ``HostError("conflict.member_id")`` when a member of another kind holds it.
        """

    async def append_message(self, draft: MessageDraft, deliver_to: list[str]) -> AppendResult:
        """Store ``draft`` with the next gapless seq of its session.

        In one transaction: when ``draft.client_id`` was already used by the same
        sender in the same session, return that message with ``duplicate=True``
        and change nothing; else take ``seq`` from the session's counter, insert the
        message, insert a pending delivery for each agent id in ``deliver_to``, and
        save ``draft.writes`` (a task, a context). They commit together or not at all.
        """

    async def find_message(self, session_id: str, sender_id: str, client_id: str) -> Message | None:
        """The message ``sender_id`` sent to the session under ``client_id``, or None.

        The pipeline asks before rate limiting, because a duplicate is free.
        """

    async def get_message(self, message_id: str) -> Message | None:
        """The message with that id, or None."""

    async def messages_after(self, session_id: str, since_seq: int, limit: int) -> list[Message]:
        """Up to ``limit`` messages with ``seq > since_seq``, oldest first."""

    async def messages_before(self, session_id: str, before_seq: int | None, limit: int) -> list[Message]:
        """Up to ``limit`` messages with ``seq < before_seq`` (or the latest), oldest first."""

    async def message_at(self, session_id: str, seq: int) -> Message | None:
        """The message with that seq in that session, or None."""

    async def record_receipt(self, session_id: str, seq: int, member_id: str, status: ReceiptStatus) -> None:
        """Remember that ``member_id`` has the message at ``seq`` ``delivered`` or ``read``."""

    async def pending_deliveries(self, agent_id: str, limit: int, after: str | None = None) -> list[Message]:
        """Messages addressed to ``agent_id`` that it has not acked, oldest first.

        ``after`` is the id of the last message of the previous page: the page
        starts after that message's delivery, acked or not.
        """

    async def count_pending_deliveries(self) -> int:
        """How many deliveries to agents are not acked yet, over every agent
        (``tkr_pending_agent_deliveries``)."""

    async def unacked_agents(self, message_id: str) -> list[str]:
        """The agents that have a delivery of ``message_id`` they have not acked, sorted.

        A resent ``client_id`` is emitted again to these (PROTOCOL.md, Message).
        """

    async def ack_delivery(self, agent_id: str, message_id: str) -> bool:
        """Mark the delivery of ``message_id`` to ``agent_id`` as done.

        True when the agent has that delivery (pending until now, or acked
        before: acking twice is harmless); False when it never had one, and then
        nothing changes.
        """

    async def put_context(self, record: ContextRecord) -> None:
        """Insert or replace the context ``(session_id, context_id)``."""

    async def list_contexts(self, session_id: str, agent_id: str, now: datetime) -> list[ContextRecord]:
        """Contexts of the session that have not expired at ``now`` and target ``agent_id``."""

    async def get_task(self, session_id: str, task_id: str) -> dict[str, Any] | None:
        """The task ``task_id`` of the session, or None. Tasks are keyed by
        ``(session_id, task_id)``: two sessions may use one id."""

    async def put_task(self, session_id: str, task_id: str, document: dict[str, Any]) -> None:
        """Insert or replace the task document ``(session_id, task_id)``."""


class RateLimiter(Protocol):
    """Decides whether an action may happen now.

    ``action`` is ``"message"``, ``"connect"`` or ``"session"``; ``key`` is a
    principal as ``kind:id`` (see :func:`principal_key`) or a client address. Return None to allow, or the seconds to
    wait before trying again.
    """

    async def hit(self, action: str, key: str) -> float | None: ...


class RecoveryStrategy(Protocol):
    """Runs an operation and decides what to do when it fails.

    ``handles`` names the error categories it applies to (``"store"``,
    ``"agent"``…). ``run`` calls ``operation`` and returns its result, or raises a
    ``HostError`` the client can act on.
    """

    name: str
    handles: frozenset[str]

    async def run(self, operation: Callable[[], Awaitable[Any]], context: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class SecurityEvent:
    """Something the guard plugin scores: an auth failure, a rate-limit hit, a
    malformed packet, a refused namespace or room."""

    kind: Literal["auth_failure", "rate_limited", "malformed_packet", "access_denied", "reserved_event"]
    peer: str
    principal_id: str | None = None
    sid: str | None = None
    namespace: str | None = None
    detail: str = ""
