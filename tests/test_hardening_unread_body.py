"""``tkr_host.frames.answer_with_unread_body_dropped`` under a real Hypercorn, with no app
of the host's: an answer that leaves a long body unread, or an app that raises before it
reads it, must not hold the connection (Hypercorn queues at most ten pieces of a body and
puts ``http.disconnect`` behind them when the response ends). ``read_timeout`` is unset,
as in Hypercorn's own default, so nothing else would close the connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from tkr_host.frames import answer_with_unread_body_dropped
from tkr_host.testing import bound_listener, closed_by_server

BODY_BYTES = 2 * 1_048_576


#: How long the apps below take before they answer, as the host's refusal does (a log line,
#: a security event, the session closed): long enough for the body to fill Hypercorn's queue.
#: Part of the scenario, not a wait for a condition.
APP_WORK_S = 0.2


async def refusing(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.sleep(APP_WORK_S)
    await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Bad Request"})


async def raising(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.sleep(APP_WORK_S)
    raise RuntimeError("the app failed before it read the body")


@contextlib.asynccontextmanager
async def served(app: Any, wrapped: bool) -> AsyncIterator[int]:
    kept: list[asyncio.Task[None]] = []

    def spawn(coro: Any) -> None:  # as the host's spawn: a task, referenced while it runs
        kept.append(asyncio.ensure_future(coro))

    async def entry(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        elif wrapped:
            await answer_with_unread_body_dropped(app, scope, receive, send, spawn)
        else:
            await app(scope, receive, send)

    listener = bound_listener()
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]
    config.loglevel = "CRITICAL"  # the raising app's traceback is Hypercorn's to log, and expected here
    config.graceful_timeout = 1.0
    stop = asyncio.Event()
    task = asyncio.ensure_future(hypercorn_serve(entry, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        yield port
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 10)


async def post_long_body(port: int, within: float = 15) -> tuple[bytes, bool]:
    """A POST whose whole body is sent at once: the status line, and whether the server let the connection go."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: {BODY_BYTES}\r\n\r\n".encode() + b"x" * BODY_BYTES)
        async with asyncio.timeout(10):
            status_line = await reader.readline()
        return status_line, await closed_by_server(reader, within)
    finally:
        writer.close()


@pytest.mark.parametrize(("app", "status"), [(refusing, b"400"), (raising, b"500")], ids=["refused", "raised"])
async def test_an_unread_long_body_does_not_hold_the_connection(app: Any, status: bytes) -> None:
    async with served(app, wrapped=True) as port:
        status_line, closed = await post_long_body(port)
    assert status_line.startswith(b"HTTP/1.1 " + status), status_line
    assert closed, "the connection was held after its response"


async def test_without_it_hypercorn_holds_the_connection() -> None:
    """The reason for the wrapper, shown on the same Hypercorn: the refusal's connection is held."""
    async with served(refusing, wrapped=False) as port:
        status_line, closed = await post_long_body(port, within=3)
    assert status_line.startswith(b"HTTP/1.1 400"), status_line
    assert not closed, "Hypercorn let the connection go by itself: the wrapper may no longer be needed"
