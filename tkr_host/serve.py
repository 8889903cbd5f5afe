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

from tkr_host import lifecycle
from tkr_host.app import TkrApp, create_app
from tkr_host.config import load_settings

log = logging.getLogger(__name__)


def serve(config_path: str | None) -> int:
    settings = load_settings(config_path)
    logging.basicConfig(level=settings.host.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Hypercorn's loggers have handlers of their own: do not print their lines twice.
    for name in ("hypercorn.error", "hypercorn.access"):
        logging.getLogger(name).propagate = False
    config = settings.hypercorn_config()
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
