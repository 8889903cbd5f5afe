"""``tkr-host`` under tracemalloc, for the breakdown of memory per idle socket.

Run as ``python bench/traced_host.py serve --config X``: the host starts as
``tkr-host`` would, with ``tracemalloc`` tracing. On SIGUSR1 it writes a
snapshot and a census of the event loop's tasks and of live objects by type to
``$TKR_TRACE_DIR/<n>.snapshot`` / ``<n>.json`` (n = 0, 1, …), which
:mod:`bench.idle_memory` compares. Not used by ``make bench``: tracing slows
every allocation.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 8
_count = 0


def _census() -> dict[str, object]:
    gc.collect()
    types: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        types[f"{kind.__module__}.{kind.__qualname__}"] += 1
    tasks: collections.Counter[str] = collections.Counter()
    try:
        for task in asyncio.all_tasks(asyncio.get_running_loop()):
            coro = task.get_coro()
            tasks[getattr(coro, "__qualname__", repr(coro))] += 1
    except RuntimeError:  # the signal came outside the loop: no task census
        pass
    return {"types": dict(types), "tasks": dict(tasks), "traced": tracemalloc.get_traced_memory()[0]}


def _dump(_signum: int, _frame: FrameType | None) -> None:
    global _count
    directory = Path(os.environ["TKR_TRACE_DIR"])
    census = _census()
    tracemalloc.take_snapshot().dump(str(directory / f"{_count}.snapshot"))
    (directory / f"{_count}.json").write_text(json.dumps(census))
    _count += 1


def main() -> None:
    tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR1, _dump)
    from tkr_host.cli import main as host_main

    sys.argv = ["tkr-host", *sys.argv[1:]]
    sys.exit(host_main())


if __name__ == "__main__":
    main()
