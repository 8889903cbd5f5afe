"""Hypercorn's ``read_timeout`` kept with one deadline per connection, not a task per read.

Hypercorn's asyncio server reads each connection in ``TCPServer._read_data``, through
``asyncio.wait_for(reader.read(…), read_timeout)``. On Python 3.11 ``wait_for`` wraps every
read in a task of its own, with a timer, so each frame a client sends costs a task, an
extra turn of the event loop and about 1.5 KiB per connection while it waits: 4.6 % of the
host's CPU per send in ``make bench`` (docs/performance.md, "CPU per send (fourth session)").
Python 3.12's ``wait_for`` makes no task; until the host runs there, this module gives
Hypercorn's loop the same bound with the standard library's ``asyncio.timeout``: one
context per connection, moved to *now + read_timeout* before each read and cleared
after it, so the bound covers the read alone, as Hypercorn's does.

What it keeps of Hypercorn's loop, line for line: the reads of ``MAX_RECV`` bytes until the
end of the stream, the errors that end the loop (a connection error, an OS error, a TLS
error, the timeout), each read handed to the protocol as ``RawData`` outside the bound, and
``Closed`` handed to it at the end. With ``read_timeout`` unset it runs Hypercorn's own
loop. It touches Hypercorn's internals, so it is behind the transport's version-range
check (:func:`tkr_host._versions.check_versions`) and :func:`install_read_deadline`
refuses to start on a Hypercorn whose loop is not the one read here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from ssl import SSLError
from typing import Any

from hypercorn.asyncio import tcp_server as hypercorn_tcp_server
from hypercorn.events import Closed, RawData

from tkr_host._versions import TransportVersionError

#: Hypercorn's own read loop, which this replaces (kept for ``read_timeout = None``).
_HYPERCORN_READ_DATA: Callable[[Any], Awaitable[None]] = hypercorn_tcp_server.TCPServer._read_data
#: Every name Hypercorn's loop uses, as read in the tested version: a loop that uses other
#: names (another step, another error caught) is not the one replaced here (checked at start-up).
_HYPERCORN_LOOP_NAMES = frozenset({"reader", "at_eof", "asyncio", "wait_for", "read", "MAX_RECV", "config", "read_timeout",
                                   "protocol", "handle", "RawData", "Closed", "ConnectionError", "OSError",
                                   "TimeoutError", "SSLError"})


async def read_with_one_deadline(server: Any) -> None:
    """``TCPServer._read_data`` with ``read_timeout`` as one rescheduled deadline."""
    read_timeout = server.config.read_timeout
    if read_timeout is None:
        await _HYPERCORN_READ_DATA(server)
        return
    reader: asyncio.StreamReader = server.reader
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(None) as deadline:
            while not reader.at_eof():
                deadline.reschedule(loop.time() + read_timeout)
                try:
                    data = await reader.read(hypercorn_tcp_server.MAX_RECV)
                except (ConnectionError, OSError, SSLError):
                    break
                # The protocol's handling is outside the bound, as in Hypercorn's loop.
                deadline.reschedule(None)
                await server.protocol.handle(RawData(data))
    except TimeoutError:
        if not deadline.expired():
            raise  # from the protocol's handling, which Hypercorn's loop lets through too
        # The connection sent nothing for read_timeout seconds: closed below, as by Hypercorn.
    await server.protocol.handle(Closed())


def install_read_deadline() -> None:
    """Make Hypercorn's asyncio server read through :func:`read_with_one_deadline`."""
    tcp_server = hypercorn_tcp_server.TCPServer
    current = tcp_server.__dict__.get("_read_data")
    if current is read_with_one_deadline:
        return
    if current is not _HYPERCORN_READ_DATA or not isinstance(getattr(hypercorn_tcp_server, "MAX_RECV", None), int):
        raise TransportVersionError("hypercorn.asyncio.tcp_server.TCPServer no longer reads through _read_data and "
                                    "MAX_RECV: read_timeout cannot be kept with one deadline per connection")
    names = set(current.__code__.co_names)
    if names != _HYPERCORN_LOOP_NAMES:
        changed = sorted(names ^ _HYPERCORN_LOOP_NAMES)
        raise TransportVersionError(f"hypercorn's TCPServer._read_data is not the loop tkr-host read (it differs in "
                                    f"{', '.join(changed)}): read_timeout cannot be kept with one deadline per connection")
    setattr(tcp_server, "_read_data", read_with_one_deadline)  # noqa: B010 (the one method Hypercorn reads by)
