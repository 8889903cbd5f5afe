"""``tkr-host serve``: Hypercorn with the config file's top-level keys.

One worker runs in this process with ``hypercorn.asyncio.serve``, so that
SIGTERM drains: new connects are refused, in-flight acks finish, sockets are
closed, the store is closed, and the process exits 0. With ``workers > 1``,
Hypercorn's own ``run`` forks workers that import ``tkr_host.asgi:app``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from hypercorn.asyncio import serve as hypercorn_serve

from tkr_host import lifecycle, logs
from tkr_host.app import TkrApp, create_app
from tkr_host.config import load_settings

log = logging.getLogger(__name__)


def serve(config_path: str | None) -> int:
    settings = load_settings(config_path)
    logs.configure(settings.host.log_level, settings.host.log_format)
    config = settings.hypercorn_config()
    # Handed a logger, Hypercorn adds no handler of its own: its lines come out
    # through the host's, in the host's format (text or JSON), once.
    if config.errorlog == "-":
        config.errorlog = logging.getLogger("hypercorn.error")
    if config.accesslog == "-":
        config.accesslog = logging.getLogger("hypercorn.access")
    if config.workers > 1:
        from hypercorn.run import run

        if config_path:
            os.environ["TKR_CONFIG"] = str(config_path)
        config.application_path = "tkr_host.asgi:app"
        return run(config)
    app = create_app(settings)
    asyncio.run(_serve(app, config))
    return 0


async def _serve(app: TkrApp, config: object) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def shutdown_trigger() -> None:
        await stop.wait()
        log.info("signal received: draining")
        await lifecycle.drain(app.host)

    binds = ", ".join(getattr(config, "bind", []))
    log.info("tkr-host serving on %s", binds)
    await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger)  # type: ignore[arg-type]
    log.info("tkr-host stopped")
