"""The running host: settings, plugin manager and services that plugins are handed.

``Host`` holds state, not logic. Plugins receive it in every hook and read
``host.settings``, ``host.config(name)``, ``host.store`` and ``host.sio``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy
from pydantic import BaseModel

from tkr_host.cluster import ClusterState, LocalCluster
from tkr_host.config import ConfigError, Settings, load_settings
from tkr_host.errors import HostError
from tkr_host.plugins import notify, validate_plugin_tables
from tkr_host.presence import Presence
from tkr_host.rooms import task_room
from tkr_host.sequencer import SessionSequencer
from tkr_host.sessions import SessionCache
from tkr_host.streams import StreamRegistry
from tkr_host.telemetry import HostMetrics
from tkr_host.types import MessageType, Principal, RateLimiter, SecurityEvent, Store

if TYPE_CHECKING:
    from tkr_host.dispatch import Dispatcher
    from tkr_host.server import TkrServer

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")
StoreGuard = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


@dataclass
class Connection:
    """One socket in one namespace, and who is behind it."""

    sid: str
    namespace: str
    principal: Principal
    peer: str
    sessions: set[str] = field(default_factory=set)
    #: ``time.monotonic()`` of the socket's last application event (or its
    #: connect); the guard plugin closes sockets idle for too long.
    last_event_at: float = field(default_factory=time.monotonic)


class Host:
    """What a running tkr-host is made of."""

    def __init__(self, settings: Settings, pm: pluggy.PluginManager, plugin_settings: dict[str, BaseModel]) -> None:
        self.settings = settings
        self.pm = pm
        self.plugin_settings = plugin_settings
        self.sio: TkrServer
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
        #: circuit breaker here.
        self.store_guard: StoreGuard | None = None
        self.presence = Presence()
        self.sessions = SessionCache()
        self.streams = StreamRegistry()
        #: The view every node shares (presence, streams, agents); a plugin's
        #: ``cluster_state`` replaces this one-node default at start-up.
        self.cluster: ClusterState = LocalCluster(self)
        self.dispatcher: Dispatcher
        #: Per-host state of plugins, by plugin name (guards, limiters…).
        self.extensions: dict[str, Any] = {}
        #: Prometheus metrics; plugins add theirs to ``metrics.registry``.
        self.metrics = HostMetrics()

    # --- services -------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise HostError("store.unavailable", message="The host has no store yet.")
        return self._store

    @store.setter
    def store(self, store: Store) -> None:
        self._store = store

    def config(self, name: str, model: type[ModelT] | None = None) -> ModelT:
        """The validated ``[plugins.<name>]`` table of a plugin."""
        settings = self.plugin_settings[name]
        if model is not None and not isinstance(settings, model):
            raise TypeError(f"plugin {name} settings are {type(settings).__name__}, not {model.__name__}")
        return settings  # type: ignore[return-value]

    async def store_call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run a store operation through the store guard, when one is installed."""
        if self.store_guard is None:
            return await operation()
        result: T = await self.store_guard(operation)
        return result

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
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, namespace)
            await self.sio.emit("error", error.to_wire(), to=sid, namespace=namespace)
            if eio_sid is not None:
                await self.sio.close_transport(eio_sid)
        except Exception:
            log.exception("disconnecting %s from %s failed", sid, namespace)

    async def publish_task(self, document: dict[str, Any], to: str | None = None) -> None:
        """Send ``task:update`` to the task's ``/tasks`` subscribers (or one socket)."""
        await self.sio.emit("task:update", {"task": document}, to=to, room=None if to else task_room(document["session_id"], document["task_id"]),
                            namespace="/tasks")

    async def streams_of(self, session_id: str) -> list[dict[str, Any]]:
        """The session's agent replies still being streamed, on any node, as ``session:join`` reports them."""
        return await self.cluster.streams(session_id)

    def connection(self, sid: str, namespace: str) -> Connection | None:
        return self.connections.get((namespace, sid))

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keep a reference, log its failure."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def feature_enabled(self, name: str, principal: Principal) -> bool:
        """Whether the feature flag ``name`` is on for ``principal``; off when no plugin knows it."""
        for answer in self.pm.hook.feature_flag(host=self, name=name, principal=principal):
            if answer is not None:
                return bool(answer)
        return False

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

    # --- observers ------------------------------------------------------------

    async def security_event(self, event: SecurityEvent) -> None:
        await notify(self.pm.hook.on_security_event, host=self, event=event)

    async def report_error(self, error: HostError, context: dict[str, Any]) -> None:
        await notify(self.pm.hook.on_error, host=self, error=error, context=context)
