"""The host killed with SIGKILL in the middle of the load, then restarted.

``tkr-host serve`` runs in its own process on a SQLite file. Once a third of
the load is acked, the test kills it (no drain, no shutdown, in-flight sends
get no answer) and starts it again on the same port and file. Each client
notices the dropped connection, reconnects, sends ``session:join`` with
``since_seq`` = the last seq up to which it has seen everything, and resends
its unacked message with the same ``client_id``.

At the end every acked message is stored exactly once, every client_id is
stored once and acked (a send stored just before the kill is acked on resend as
a duplicate), seqs run 1..N without a gap, and each client's view (messages
received live, replayed by the join, and its own acks) covers every stored seq
without fetching a single gap.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

CLIENTS = 15
MESSAGES = 30
KILL_AT = 150


async def test_a_killed_host_loses_nothing_acked(tmp_path: Path, served_host: Callable[..., Awaitable[Any]],
                                                 run_load: Callable[..., Awaitable[Any]]) -> None:
    host = await served_host({"url": f"sqlite:///{tmp_path / 'tkr.db'}"})
    exits: list[int | None] = []

    async def kill_and_restart(progress: Any) -> None:
        await progress.reached(KILL_AT)
        await host.kill()
        exits.append(host.process.returncode)
        await host.start()

    result = await run_load(host.url, clients=CLIENTS, messages=MESSAGES, fault=kill_and_restart, tag="kill", call_timeout_s=5.0)
    stored = await host.stored(result.session_id)
    result.counts["host_starts"] = host.starts
    print(result.report("host killed", stored))
    assert exits == [-signal.SIGKILL]
    result.check(stored)
    assert result.totals()["reconnects"] >= CLIENTS, "a client never noticed the kill"
