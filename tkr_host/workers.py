"""``tkr-host serve`` with ``workers > 1``: worker processes that each drain as one does.

The parent binds the listening sockets once and starts ``workers`` processes
(``spawn``: nothing of the parent's event loop or store is inherited). Each
worker builds its own app and serves the shared sockets exactly as a
single-worker ``tkr-host serve`` does, with the same SIGTERM drain. The parent
owns no app: on SIGTERM or SIGINT it passes SIGTERM to every worker and waits;
it exits 0 when every worker did. SIGHUP is passed on as it is (each worker's
plugins reload, as with one worker). A worker that dies on its own takes the
others down too (SIGTERM, so they drain), and the parent exits with its status:
a supervisor restarts the whole unit rather than running one worker short.

Every response, WebSocket handshakes included, carries ``x-tkr-worker: <pid>``,
so an operator (and the tests) can see which worker answered.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from hypercorn.config import Sockets

log = logging.getLogger(__name__)

WORKER_HEADER = b"x-tkr-worker"

ASGIApp = Any  # an ASGI application: (scope, receive, send) -> Awaitable[None]


class WorkerHeader:
    """ASGI middleware: name this worker's pid in every response and WebSocket accept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.host = app.host  # the drain reaches the host through the app it serves
        self._value = str(os.getpid()).encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_named(message: dict[str, Any]) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", []), (WORKER_HEADER, self._value)]}
            await send(message)

        await self.app(scope, receive, send_named)


def run(config_path: str | None, config: Any, worker_main: Callable[[str | None, Sockets], None]) -> int:
    """Start ``config.workers`` workers on sockets bound here; return the exit status.

    Each worker runs ``worker_main`` (``tkr_host.serve.worker_main``: a worker is the
    single-worker serve), handed in so that this module need not import serve.
    """
    sockets = config.create_sockets()
    context = multiprocessing.get_context("spawn")
    workers: list[BaseProcess] = []
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        if not stopping:
            log.info("signal %d received: draining %d workers", signum, len(workers))
        stopping = True
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)

    def pass_on(signum: int, _frame: Any) -> None:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    # SIGHUP reloads (tkr-flags reads its flags again): each worker does it itself.
    signal.signal(signal.SIGHUP, pass_on)
    try:
        for index in range(config.workers):
            started = context.Process(target=worker_main, args=(config_path, sockets), name=f"tkr-worker-{index}")
            started.start()
            workers.append(started)
        log.info("tkr-host started %d workers: %s", len(workers), ", ".join(str(worker.pid) for worker in workers))
        status = 0
        running = list(workers)
        while running:
            for ended in wait([worker.sentinel for worker in running]):
                worker = next(worker for worker in running if worker.sentinel == ended)
                worker.join()
                running.remove(worker)
                code = worker.exitcode or 0
                if code != 0 and status == 0:
                    status = code if code > 0 else 128 - code  # killed by a signal: 128 + its number
                    log.error("worker %s exited with %s: stopping the others", worker.pid, worker.exitcode)
                    stop(signal.SIGTERM, None)
        return status
    finally:
        for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
            sock.close()
