"""SQLite faults while 20 clients keep sending: acked == stored.

Two real faults, each twice during the load, with the host in its own process:

* **locked**: another connection (this test process, as another program would)
  holds ``BEGIN EXCLUSIVE`` on the file for 1.5 s;
* **unwritable**: the host process's file-size limit (``RLIMIT_FSIZE``, set from
  outside with ``prlimit``) drops to 0 for 1.5 s. The kernel then refuses every
  write to a regular file with ``EFBIG``, so SQLite's writes to its WAL fail as on
  a full disk. This is the honest way to make a file unwritable as root:
  permissions do not stop root (``CAP_DAC_OVERRIDE``), ``chattr +i`` needs
  ``CAP_LINUX_IMMUTABLE`` and a filesystem that supports it, and a read-only
  remount touches the machine. The host logs through a pipe, which the limit
  does not touch.

Clients resend a refused send with the same ``client_id`` after ``retry_after``.
At the end the set of acked ids equals the set of stored ids, every client_id is
stored once, seqs run 1..N without a gap, and every client saw every seq.
"""

from __future__ import annotations

import asyncio
import resource
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tkr_host.testing import TkrClient, connect_client, make_token

CLIENTS = 20
MESSAGES = 30
#: Acked messages at which each fault starts (of CLIENTS × MESSAGES = 600).
FAULT_AT = (150, 400)
FAULT_S = 1.5
#: A writer gives up on a lock at once instead of waiting 5 s, so the fault is
#: seen; the breaker half-opens after 1 s instead of 5 s, so the test is short.
PLUGINS: dict[str, Any] = {"recovery": {"breaker_reset_s": 1.0}}

needs_prlimit = pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="setting another process's RLIMIT_FSIZE needs Linux prlimit")

def sqlite_store(tmp_path: Path) -> dict[str, Any]:
    return {"url": f"sqlite:///{tmp_path / 'tkr.db'}", "sqlite_busy_timeout_s": 0.05}


def hold_write_lock(path: Path, seconds: float) -> None:
    """Hold SQLite's write lock from another connection, as another process would."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        connection.execute("ROLLBACK")
    finally:
        connection.close()


class FileSizeLimit:
    """Set another process's RLIMIT_FSIZE soft limit, and put it back."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.original = resource.prlimit(pid, resource.RLIMIT_FSIZE)

    def zero(self) -> None:
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (0, self.original[1]))

    def restore(self) -> None:
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, self.original)


async def test_a_locked_sqlite_file(tmp_path: Path, served_host: Callable[..., Awaitable[Any]], run_load: Callable[..., Awaitable[Any]]) -> None:
    host = await served_host(sqlite_store(tmp_path), PLUGINS)

    async def lock(progress: Any) -> None:
        for at in FAULT_AT:
            await progress.reached(at)
            await asyncio.to_thread(hold_write_lock, tmp_path / "tkr.db", FAULT_S)

    result = await run_load(host.url, clients=CLIENTS, messages=MESSAGES, fault=lock, tag="locked")
    stored = await host.stored(result.session_id)
    result.counts["host_store_unavailable"] = int(await host.metric("tkr_errors_total", code="store.unavailable"))
    result.counts["host_messages_stored"] = int(await host.metric("tkr_messages_stored_total", type="text"))
    result.counts["breaker_opened"] = host.log_count("store circuit breaker opens")
    print(result.report("sqlite locked", stored))
    result.check(stored)
    assert result.refusals(), "the lock refused nothing: the fault did not happen"
    assert set(result.refusals()) == {"store.unavailable"}
    assert result.counts["host_store_unavailable"] == result.refusals()["store.unavailable"]
    assert result.counts["host_messages_stored"] == len(stored)


@needs_prlimit
async def test_an_unwritable_sqlite_file(tmp_path: Path, served_host: Callable[..., Awaitable[Any]],
                                         run_load: Callable[..., Awaitable[Any]]) -> None:
    host = await served_host(sqlite_store(tmp_path), PLUGINS)
    limit = FileSizeLimit(host.pid)

    async def unwritable(progress: Any) -> None:
        for at in FAULT_AT:
            await progress.reached(at)
            limit.zero()
            try:
                await asyncio.sleep(FAULT_S)
            finally:
                limit.restore()

    try:
        result = await run_load(host.url, clients=CLIENTS, messages=MESSAGES, fault=unwritable, tag="unwritable")
    finally:
        if host.running():
            limit.restore()
    stored = await host.stored(result.session_id)
    result.counts["host_store_unavailable"] = int(await host.metric("tkr_errors_total", code="store.unavailable"))
    result.counts["host_messages_stored"] = int(await host.metric("tkr_messages_stored_total", type="text"))
    print(result.report("sqlite unwritable", stored))
    result.check(stored)
    assert result.refusals(), "the unwritable file refused nothing: the fault did not happen"
    assert set(result.refusals()) == {"store.unavailable"}
    assert result.counts["host_store_unavailable"] == result.refusals()["store.unavailable"]
    assert result.counts["host_messages_stored"] == len(stored)


@needs_prlimit
async def test_an_unwritable_sqlite_file_is_answered_store_unavailable(tmp_path: Path, served_host: Callable[..., Awaitable[Any]]) -> None:
    """A COMMIT the disk refuses is rolled back by SQLite itself, and peewee's
    ROLLBACK after it fails: the store still answers ``store.unavailable``, so
    the retry and the breaker see it (``session:create`` goes through ``atomic()``)."""
    host = await served_host(sqlite_store(tmp_path), PLUGINS)
    alice = TkrClient(await connect_client(host.url, make_token("alice")), "alice", "/chat")
    limit = FileSizeLimit(host.pid)
    try:
        limit.zero()
        try:
            refused = await alice.call("session:create", {"title": "on an unwritable file"})
        finally:
            limit.restore()
        again = await alice.call("session:create", {"title": "on a writable file again"})
    finally:
        await alice.close()
    assert again["ok"], again
    assert not refused["ok"]
    assert refused["error"]["code"] == "store.unavailable", refused["error"]
