"""The concrete host: the runtime behind :class:`tkr_host.HostAPI`.

Private: plugins are handed this object typed as ``HostAPI`` and see only those
members. Besides them it owns what the core works with: the live connections,
presence, open streams, the session sequencer and the session cache, the
Socket.IO server (``sio``) and the dispatcher's in-flight count.

It is built in one phase: ``Host(settings, pm, plugin_settings, server=...,
dispatcher=...)`` calls the two factories with itself, so no one assigns
``sio`` or ``dispatcher`` afterwards. Their types are the Protocols below, not
``TkrServer`` and ``Dispatcher``: those modules import this one, and naming them
here would close an import circle (tests/test_public_api.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pluggy
import socketio
from pydantic import BaseModel

from tkr_host._presence import Presence
from tkr_host._sequencer import SessionSequencer
from tkr_host._sessions import SessionCache
from tkr_host._streams import StreamRegistry
from tkr_host.api import ConnectionView, HostAPI, MessageType, StoreGuard
from tkr_host.cluster import ClusterState, LocalCluster
from tkr_host.config import ConfigError, Settings, load_settings
from tkr_host.errors import HostError
from tkr_host.plugins import notify, validate_plugin_tables
from tkr_host.rooms import task_room
from tkr_host.telemetry import HostMetrics
from tkr_host.types import Principal, RateLimiter, SecurityEvent, Store

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")


class SocketServer(Protocol):
    """What the core calls on the Socket.IO server (``tkr_host.server.TkrServer``)."""

    @property
    def manager(self) -> socketio.AsyncManager: ...

    async def emit(self, event: str, data: Any = None, to: str | None = None, room: str | None = None,
                   skip_sid: str | list[str] | None = None, namespace: str | None = None, callback: Any = None,
                   ignore_queue: bool = False) -> None: ...

    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None: ...

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None: ...

    def get_environ(self, sid: str, namespace: str | None = None) -> Any: ...

    def on(self, event: str, handler: Any = None, namespace: str | None = None) -> Any: ...

    async def close_transport(self, eio_sid: str) -> None: ...

    async def disconnect_socket(self, sid: str, namespace: str, error: dict[str, Any]) -> None: ...

    async def shutdown(self) -> None: ...


class EventCounter(Protocol):
    """What the core reads of the dispatcher (``tkr_host.dispatch.Dispatcher``)."""

    @property
    def inflight(self) -> int: ...


@dataclass
class Connection:
    """One socket in one namespace, and who is behind it (the live, mutable record)."""

    sid: str
    namespace: str
    principal: Principal
    peer: str
    sessions: set[str] = field(default_factory=set)
    #: ``time.monotonic()`` of the socket's last application event (or its
    #: connect); the guard plugin closes sockets idle for too long.
    last_event_at: float = field(default_factory=time.monotonic)

    def view(self) -> ConnectionView:
        return ConnectionView(self.sid, self.namespace, self.principal, self.peer, frozenset(self.sessions), self.last_event_at)


class Host:
    """What a running tkr-host is made of."""

    def __init__(self, settings: Settings, pm: pluggy.PluginManager, plugin_settings: dict[str, BaseModel], *,
                 server: Callable[[Host], SocketServer], dispatcher: Callable[[Host], EventCounter]) -> None:
        self._settings = settings
        self._pm = pm
        self.plugin_settings = plugin_settings
        self._store: Store | None = None
        self.message_types: dict[str, MessageType] = {}
        self.rate_limiter: RateLimiter | None = None
        self.connections: dict[tuple[str, str], Connection] = {}
        self.started = False
        self.draining = False
        #: Background tasks the host owns; cancelled at shutdown.
        self.tasks: set[asyncio.Task[Any]] = set()
        #: Keeps ``message`` emits of one session in ``seq`` order on this node.
        self.sequencer = SessionSequencer()
        #: Wraps every store write; the recovery plugin installs retries and a
        #: circuit breaker here (``install_store_guard``).
        self.store_guard: StoreGuard | None = None
        self.presence = Presence()
        self.sessions = SessionCache()
        self.streams = StreamRegistry()
        self._extensions: dict[str, Any] = {}
        self._metrics = HostMetrics()
        #: The view every node shares (presence, streams, agents); a plugin's
        #: ``cluster_state`` replaces this one-node default at start-up.
        self.cluster: ClusterState = LocalCluster(self.presence, self.streams, self._agents_online)
        # Last: both factories may read anything above.
        self.sio: SocketServer = server(self)
        self.dispatcher: EventCounter = dispatcher(self)

    # --- HostAPI: what plugins see -------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def pm(self) -> pluggy.PluginManager:
        return self._pm

    @property
    def extensions(self) -> dict[str, Any]:
        return self._extensions

    @property
    def metrics(self) -> HostMetrics:
        return self._metrics

    @property
    def store(self) -> Store:
        if self._store is None:
            raise HostError("store.unavailable", message="The host has no store yet.")
        return self._store

    @store.setter
    def store(self, store: Store) -> None:
        self._store = store

    @property
    def client_manager(self) -> socketio.AsyncManager:
        return self.sio.manager

    def config(self, name: str, model: type[ModelT] | None = None) -> ModelT:
        """The validated ``[plugins.<name>]`` table of a plugin."""
        settings = self.plugin_settings[name]
        if model is not None and not isinstance(settings, model):
            raise TypeError(f"plugin {name} settings are {type(settings).__name__}, not {model.__name__}")
        return settings  # type: ignore[return-value]

    def reload_config(self, name: str) -> BaseModel:
        """Read plugin ``name``'s table again from the config file and the environment.

        The new table is validated with the plugin's own model and replaces the
        one :meth:`config` returns. A missing file or a bad table raises
        ``ConfigError`` and leaves the old table in force.
        """
        if self.settings.config_path is None:
            raise ConfigError("the host was started without a config file: there is nothing to read again")
        fresh = load_settings(self.settings.config_path)
        self.plugin_settings[name] = validate_plugin_tables(self.pm, fresh)[name]
        return self.plugin_settings[name]

    async def store_call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run a store operation through the store guard, when one is installed."""
        if self.store_guard is None:
            return await operation()
        result: T = await self.store_guard(operation)
        return result

    def install_store_guard(self, guard: StoreGuard) -> None:
        self.store_guard = guard

    async def emit(self, event: str, data: Any, *, namespace: str, room: str | None = None, to: str | None = None) -> None:
        await self.sio.emit(event, data, to=to, room=room, namespace=namespace)

    async def publish_task(self, document: dict[str, Any], to: str | None = None) -> None:
        """Send ``task:update`` to the task's ``/tasks`` subscribers (or one socket)."""
        room = None if to else task_room(document["session_id"], document["task_id"])
        await self.sio.emit("task:update", {"task": document}, to=to, room=room, namespace="/tasks")

    async def disconnect_client(self, sid: str, namespace: str, error: HostError) -> None:
        """Tell a socket why, then close its whole connection, transport included.

        A socket this node does not hold is handed to the cluster, which asks
        the node that holds it.
        """
        if (namespace, sid) not in self.connections:
            try:
                await self.cluster.disconnect(sid, namespace, error)
            except Exception:
                log.exception("disconnecting %s from %s on another node failed", sid, namespace)
            return
        try:
            await self.sio.disconnect_socket(sid, namespace, error.to_wire())
        except Exception:
            log.exception("disconnecting %s from %s failed", sid, namespace)

    def _agents_online(self) -> list[Principal]:
        """The agents with a socket on this node (the one-node agent directory)."""
        return [conn.principal for (namespace, _), conn in list(self.connections.items()) if namespace == "/agents"]

    def list_connections(self, namespace: str | None = None) -> list[ConnectionView]:
        return [conn.view() for conn in list(self.connections.values()) if namespace is None or conn.namespace == namespace]

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keep a reference, log its failure."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def feature_enabled(self, name: str, principal: Principal) -> bool:
        """Whether the feature flag ``name`` is on for ``principal``; off when no plugin knows it."""
        for answer in self.pm.hook.feature_flag(host=self, name=name, principal=principal):
            if answer is not None:
                return bool(answer)
        return False

    async def security_event(self, event: SecurityEvent) -> None:
        await notify(self.pm.hook.on_security_event, host=self, event=event)

    async def report_error(self, error: HostError, context: dict[str, Any]) -> None:
        await notify(self.pm.hook.on_error, host=self, error=error, context=context)

    # --- the core's own ----------------------------------------------------------

    def connection(self, sid: str, namespace: str) -> Connection | None:
        return self.connections.get((namespace, sid))

    async def streams_of(self, session_id: str) -> list[dict[str, Any]]:
        """The session's agent replies still being streamed, on any node, as ``session:join`` reports them."""
        return await self.cluster.streams(session_id)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())


def _implements_host_api(host: Host) -> HostAPI:
    # mypy checks here that Host has every HostAPI member, with its signature.
    return host
