"""``tkr-host serve``: Hypercorn with the config file's top-level keys.

A worker runs with Hypercorn's ``worker_serve`` and a shutdown trigger of our
own, so that SIGTERM drains: new connects are refused, in-flight acks finish,
sockets are closed, the store is closed, and the process exits 0. With
``workers > 1``, :mod:`tkr_host.workers` starts that many such workers on
sockets it binds once, and each drains in the same way.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import TYPE_CHECKING, Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Sockets
from hypercorn.utils import wrap_app

from tkr_host import lifecycle, logs
from tkr_host.app import TkrApp, create_app
from tkr_host.config import Settings, load_settings

if TYPE_CHECKING:
    from tkr_host.workers import WorkerHeader

log = logging.getLogger(__name__)


def serve(config_path: str | None) -> int:
    settings = load_settings(config_path)
    logs.configure(settings.host.log_level, settings.host.log_format)
    config = hypercorn_config(settings)
    if config.workers > 1:
        from tkr_host import workers

        return workers.run(str(config_path) if config_path else None, config, worker_main)
    app = create_app(settings)
    tune_gc()
    asyncio.run(_serve(app, config))
    return 0


#: The collector's youngest-generation threshold while serving (CPython's default: 700).
GC_THRESHOLD_YOUNG = 50_000


def tune_gc() -> None:
    """The garbage collector for a server, set once the app and its plugins are loaded.

    Measured in docs/performance.md ("The garbage collector", fourth session):
    with CPython's default, the objects of the sends in flight outlive the
    frequent young collections, are promoted, and set off full collections that
    walk the whole heap (every module, every socket's objects): -15 % CPU per
    send with a threshold of 50,000, and closing 10,000 sockets no longer
    spends 14-30 % of its time collecting. Reference counting frees acyclic
    garbage at once; only cycles wait up to 50,000 allocations longer.
    ``gc.freeze()`` moves what start-up made (modules, models, plugins) out of
    the collector's walks for good: it lives as long as the process anyway.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD_YOUNG, middle, oldest)
    log.info("garbage collector: %d start-up objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold())


def hypercorn_config(settings: Settings) -> Any:
    config = settings.hypercorn_config()
    # Handed a logger, Hypercorn adds no handler of its own: its lines come out
    # through the host's, in the host's format (text or JSON), once.
    if config.errorlog == "-":
        config.errorlog = logging.getLogger("hypercorn.error")
    if config.accesslog == "-":
        config.accesslog = logging.getLogger("hypercorn.access")
    return config


async def _serve(app: TkrApp | WorkerHeader, config: Any, sockets: Sockets | None = None) -> None:
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
    # What hypercorn.asyncio.serve does, plus the sockets a parent bound for its workers.
    asgi = wrap_app(app, config.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]  # Quart's ASGI types are its own
    await worker_serve(asgi, config, sockets=sockets, shutdown_trigger=shutdown_trigger)
    log.info("tkr-host stopped")


def worker_main(config_path: str | None, sockets: Sockets) -> None:
    """One worker: the single-worker serve, on the parent's sockets."""
    from tkr_host.workers import WorkerHeader

    settings = load_settings(config_path)
    logs.configure(settings.host.log_level, settings.host.log_format)
    app = create_app(settings)
    tune_gc()
    asyncio.run(_serve(WorkerHeader(app), hypercorn_config(settings), sockets))
