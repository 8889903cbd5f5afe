"""``create_app(settings)``: wire the plugin manager, Socket.IO, Quart and the
namespaces into one ASGI app. No logic lives here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import socketio
from quart import Quart

from tkr_host import lifecycle
from tkr_host._host import Host
from tkr_host.config import Settings, load_settings
from tkr_host.dispatch import Dispatcher
from tkr_host.frames import FrameGuard
from tkr_host.namespaces import all_namespaces
from tkr_host.plugins import make_plugin_manager, validate_plugin_tables
from tkr_host.server import TkrServer

#: Engine.IO's own limit: a larger packet closes the sender's connection.
MAX_HTTP_BUFFER_SIZE = 1_048_576


class TkrApp(socketio.ASGIApp):  # type: ignore[misc]
    """The ASGI app, with the running host attached for tests and embedders.

    Engine.IO traffic passes the FrameGuard first (tkr_host/frames.py).
    """

    host: Host
    frame_guard: FrameGuard

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] in ("http", "websocket") and (path if path.endswith("/") else path + "/").startswith(self.engineio_path):
            await self.frame_guard(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _engineio(self, scope: Any, receive: Any, send: Any) -> None:
        await self.engineio_server.handle_request(scope, receive, send)


def build_server(host: Host) -> TkrServer:
    """The Socket.IO server of ``host``, with the client manager a plugin chose."""
    settings = host.settings
    cors: list[str] | None = settings.host.cors_allowed_origins or None
    sio = TkrServer(
        async_mode="asgi",
        client_manager=host.pm.hook.client_manager(host=host),
        # Serve every namespace so that unknown ones can be refused with a
        # proper Error instead of python-socketio's bare string.
        namespaces="*",
        cors_allowed_origins=cors,
        ping_interval=settings.host.ping_interval_s,
        ping_timeout=settings.host.ping_timeout_s,
        max_http_buffer_size=MAX_HTTP_BUFFER_SIZE,
        # Hypercorn's workers share one listening socket, so long-polling
        # requests of one client can land on different workers: serve
        # WebSocket only there (PROTOCOL.md, Transport).
        transports=["websocket"] if int(settings.hypercorn.get("workers", 1)) > 1 else ["polling", "websocket"],
        logger=False,
        engineio_logger=False,
    )
    sio.host = host
    return sio


def build_dispatcher(host: Host) -> Dispatcher:
    """The dispatcher of ``host``, with every namespace installed on ``host.sio``."""
    dispatcher = Dispatcher(host)
    for spec in all_namespaces():
        dispatcher.install(spec)
    dispatcher.refuse_other_namespaces()
    return dispatcher


def create_app(settings: Settings | None = None, extra_plugins: Iterable[Any] = ()) -> TkrApp:
    settings = settings if settings is not None else load_settings(None)
    pm = make_plugin_manager(settings, extra_plugins)
    host = Host(settings, pm, validate_plugin_tables(pm, settings), server=build_server, dispatcher=build_dispatcher)
    sio = host.sio
    assert isinstance(sio, TkrServer)

    quart = Quart("tkr_host")
    quart.config["tkr_host"] = host
    pm.hook.register_blueprints(host=host, app=quart)

    @quart.before_serving
    async def _startup() -> None:
        await lifecycle.startup(host)

    @quart.after_serving
    async def _shutdown() -> None:
        await lifecycle.shutdown(host)

    # Lifespan events reach Quart only while ASGIApp's own on_startup and
    # on_shutdown are unset (DESIGN.md, traps).
    app = TkrApp(sio, other_asgi_app=quart, socketio_path="socket.io")
    app.host = host
    app.frame_guard = FrameGuard(app._engineio, sio.malformed, MAX_HTTP_BUFFER_SIZE, host.spawn)
    return app
