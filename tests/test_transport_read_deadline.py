"""Hypercorn's ``read_timeout`` as the host keeps it (docs/configuration.md: "seconds a
connection may send nothing before Hypercorn drops it"; docs/performance.md: one deadline
per connection, so that a read makes no task of its own on Python 3.11).

The bound matters where a request is under way and Hypercorn's keep-alive timer is off:
here a long-polling POST whose body stops coming (a WebSocket that falls silent is closed
by engine.io's heartbeat first, and a request head that never ends by ``keep_alive_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from hypercorn.asyncio import tcp_server

from tkr_host import _read_deadline
from tkr_host._versions import TransportVersionError
from tkr_host.testing import RunningHost, TkrClient, closed_by_server

#: Heartbeats of 0.5 + 0.5 s let read_timeout be as short as a test wants (it must exceed their sum).
READ_TIMEOUT_S = 3.0
SHORT_READ_TIMEOUT = {"host": {"ping_interval_s": 0.5, "ping_timeout_s": 0.5}, "hypercorn": {"read_timeout": READ_TIMEOUT_S}}


async def engineio_sid(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/socket.io/?EIO=4&transport=polling") as response:
        opening = await response.text()
    assert opening.startswith("0{"), opening
    return str(json.loads(opening[1:])["sid"])


@pytest.mark.tkr_settings(SHORT_READ_TIMEOUT)
async def test_a_post_whose_body_stops_is_closed_and_one_still_sending_is_not(tkr_host: RunningHost) -> None:
    """A body that keeps coming holds its connection for longer than read_timeout in all (every
    read restarts the bound); once it stops, the connection is closed."""
    sid = await engineio_sid(tkr_host.url)
    host, port = tkr_host.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    loop = asyncio.get_running_loop()
    try:
        writer.write(f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: test\r\n"
                     "Content-Type: text/plain\r\nContent-Length: 10000\r\n\r\n".encode())
        until = loop.time() + READ_TIMEOUT_S * 2.5
        sent = 0
        while loop.time() < until:
            assert not reader.at_eof(), f"closed after {sent} bytes of body, while it was still coming"
            writer.write(b"3")
            await writer.drain()
            sent += 1
            with contextlib.suppress(TimeoutError):  # a pause far under the bound; anything from the server ends the test
                async with asyncio.timeout(READ_TIMEOUT_S / 12):
                    early = await reader.read(1)
                    pytest.fail(f"the server answered or closed mid-body after {sent} bytes: {early!r}")
        # Silent from now on: a deadline well past read_timeout, which a slow machine cannot
        # miss and a missing bound cannot meet.
        assert await closed_by_server(reader, READ_TIMEOUT_S * 5), "the stalled body's connection was never closed"
    finally:
        writer.close()


@contextlib.contextmanager
def tasks_made(loop: asyncio.AbstractEventLoop) -> Iterator[list[str]]:
    """The qualified names of the coroutines of every task made in ``loop`` meanwhile."""
    names: list[str] = []
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
        names.append(getattr(coro, "__qualname__", type(coro).__name__))
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        yield names
    finally:
        loop.set_task_factory(previous)


async def test_a_read_makes_no_task_of_its_own(tkr_host: RunningHost, tkr_client: Any) -> None:
    """With the host's read_timeout set (60 s by default), twenty acked events read twenty
    frames or more; none of those reads is wrapped in a task (Python 3.11's ``wait_for`` would)."""
    assert tkr_host.app.host.settings.hypercorn_config().read_timeout is not None
    alice: TkrClient = await tkr_client("alice")
    with tasks_made(asyncio.get_running_loop()) as names:
        for _ in range(20):
            await alice.ok("session:list")
    assert names, "the events made no task at all: the factory saw nothing"
    assert names.count("StreamReader.read") == 0, names


def test_a_hypercorn_whose_loop_is_not_the_one_read_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    async def another_loop(self: Any) -> None:  # the one stand-in: a Hypercorn release cannot be installed for one test
        return None

    monkeypatch.setattr(tcp_server.TCPServer, "_read_data", another_loop)
    with pytest.raises(TransportVersionError, match=r"TCPServer no longer reads through _read_data"):
        _read_deadline.install_read_deadline()
