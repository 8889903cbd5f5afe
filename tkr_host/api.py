"""What a plugin is handed: the :class:`HostAPI` Protocol, and the types that
name a message type's work (:class:`MessageType`, :class:`MessageContext`).

Every hook's ``host`` argument and ``MessageContext.host`` is typed as
``HostAPI``: plugins see these members and nothing else. The concrete host that
implements it (``tkr_host._host.Host``) owns the connections, presence, streams
and the sequencer; none of that is reachable from here, so a plugin cannot
come to depend on it. docs/host-api.md documents each member.

This module imports only leaf modules (types, errors, config, telemetry), never
the runtime: that is what keeps tkr_host's import graph free of cycles
(tests/test_public_api.py checks it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

from tkr_host.types import Message, MessageDraft, Principal, SecurityEvent, Session, Store

if TYPE_CHECKING:
    import pluggy
    import socketio

    from tkr_host.config import Settings
    from tkr_host.errors import HostError
    from tkr_host.telemetry import HostMetrics

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")

#: Wraps every store write: given the operation, runs it (perhaps again, perhaps
#: not at all) and returns its result. tkr-recovery installs one.
StoreGuard = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


@dataclass(frozen=True)
class ConnectionView:
    """A copy of one socket's state, as :meth:`HostAPI.list_connections` takes it.

    It is a snapshot: changing the host's connections is the host's job, and a
    plugin closes a socket with :meth:`HostAPI.disconnect_client`.
    """

    sid: str
    namespace: str
    principal: Principal
    peer: str
    sessions: frozenset[str]
    #: ``time.monotonic()`` of the socket's last application event (or its connect).
    last_event_at: float


class HostAPI(Protocol):
    """The host, as every hook and message type sees it."""

    @property
    def settings(self) -> Settings:
        """The host's validated settings (``[host]``, ``[hypercorn]``, the config path)."""

    @property
    def pm(self) -> pluggy.PluginManager:
        """The plugin manager, for a plugin that adds hookspecs of its own or calls a
        hook of another (tkr-web's ``web_renderers``, tkr-recovery's ``recovery_strategies``)."""

    @property
    def extensions(self) -> dict[str, Any]:
        """Per-host state of plugins, keyed by the plugin's name (or ``name.something``)."""

    @property
    def metrics(self) -> HostMetrics:
        """The host's Prometheus metrics; a plugin adds its own to ``metrics.registry``."""

    @property
    def store(self) -> Store:
        """The message store; raises ``store.unavailable`` before start-up chose one."""

    @property
    def client_manager(self) -> socketio.AsyncManager:
        """The Socket.IO client manager in use (what the ``client_manager`` hook returned, or the default)."""

    def config(self, name: str, model: type[ModelT] | None = None) -> ModelT:
        """The validated ``[plugins.<name>]`` table; ``TypeError`` when ``model`` is not its class."""

    def reload_config(self, name: str) -> BaseModel:
        """Read plugin ``name``'s table again from the config file; ``ConfigError`` keeps the old one."""

    async def store_call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run a store operation through the installed store guard (retries, breaker)."""

    def install_store_guard(self, guard: StoreGuard) -> None:
        """Make ``guard`` wrap every later :meth:`store_call` (one guard per host: the last wins)."""

    async def emit(self, event: str, data: Any, *, namespace: str, room: str | None = None, to: str | None = None) -> None:
        """Send ``event`` to a room, to one socket (``to``), or to the whole namespace, on every node."""

    async def publish_task(self, document: dict[str, Any], to: str | None = None) -> None:
        """Send ``task:update`` to the task's ``/tasks`` subscribers, or to one socket."""

    async def disconnect_client(self, sid: str, namespace: str, error: HostError) -> None:
        """Send ``error`` to the socket, then close its whole connection, transport included."""

    def list_connections(self, namespace: str | None = None) -> list[ConnectionView]:
        """Snapshots of this node's sockets (of one namespace, or all)."""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; the host keeps it, logs its failure, cancels it at shutdown."""

    def feature_enabled(self, name: str, principal: Principal) -> bool:
        """Whether feature flag ``name`` is on for ``principal`` (off when no plugin knows it)."""

    async def security_event(self, event: SecurityEvent) -> None:
        """Report something the guard should score (every ``on_security_event`` implementation sees it)."""

    async def report_error(self, error: HostError, context: dict[str, Any]) -> None:
        """Report an error to every ``on_error`` implementation (logging, alerting)."""


class MessageType(Protocol):
    """A kind of message: its name, its payload model, and what the host does with it.

    ``handle`` runs before the message is stored. It may raise ``HostError`` to
    refuse it, change ``draft.payload`` or ``draft.to``, add agents to
    ``ctx.deliver_to``, and append coroutines to ``ctx.after_store`` that run once
    the message is stored.

    ``handle`` may see a resend of a stored message (the same ``client_id``
    from the same sender): the host does not read the store before it. When
    ``handle`` refuses a resend, the host answers the stored message as the
    duplicate; when it accepts it, the append does, and ``ctx.after_store``
    does not run. ``ctx.checks`` never see a resend.
    """

    @property
    def name(self) -> str: ...

    @property
    def payload_model(self) -> type[BaseModel]: ...

    async def handle(self, ctx: MessageContext, draft: MessageDraft) -> None: ...


AfterStore = Callable[[Message], Awaitable[None]]
Check = Callable[[MessageDraft], Awaitable[None]]


@dataclass
class MessageContext:
    """What a MessageType handler sees and may change while a message is sent."""

    host: HostAPI
    principal: Principal
    session: Session
    namespace: str
    deliver_to: set[str] = field(default_factory=set)
    #: Run in order, under the session's lock, just before the message is
    #: appended: a check that depends on earlier messages (a task's state) is
    #: race-free there. Raise HostError to refuse; nothing is stored then.
    checks: list[Check] = field(default_factory=list)
    #: Run under the same lock once the message is stored and delivered, so the
    #: next message of the session sees their effect. Keep them short.
    after_store: list[AfterStore] = field(default_factory=list)


__all__ = ["AfterStore", "Check", "ConnectionView", "HostAPI", "MessageContext", "MessageType", "StoreGuard"]
