"""``python -m bench.idle_memory``: where a host's memory per idle WebSocket goes, and what closing them all costs.

Starts one host (the bench's config: every installed plugin, SQLite) under
:mod:`bench.traced_host`, opens a few JS sockets and closes them (warm-up), then
takes a tracemalloc snapshot and a census (tasks, objects by type), opens
``--count`` idle JS sockets (``bench/node/load.js``, mode "idle"), takes a
second one, and prints the difference grouped by file and line, per socket,
with the RSS growth beside it. Then it closes every socket at once and reports
the host's CPU seconds and the time until its ``tkr_connections`` gauge reads
0. ``--no-trace`` runs the host as ``tkr-host`` (tracing slows every
allocation, so the close is timed without it).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp

from bench import servers
from bench.jsload import NodeLoad, idle_plan
from bench.servers import BENCH_DIR, BIN, Server, cpu_seconds, free_port, rss_kib, wait_ready, write_config

SETTLE_S = 1.5
#: A snapshot and the census taken with it (tasks, objects by type, traced bytes).
Census = tuple[tracemalloc.Snapshot, dict[str, Any]]
STEP_TIMEOUT_S = 600.0
GAUGE = re.compile(r'^tkr_connections\{namespace="/chat"\} ([0-9.e+]+)$', re.M)


def start_host(directory: Path, secret: str, trace: bool) -> Server:
    port = free_port()
    config = write_config(directory, port)
    command = [sys.executable, str(BENCH_DIR / "traced_host.py")] if trace else [str(BIN / "tkr-host")]
    env = {key: value for key, value in os.environ.items() if not key.startswith("TKR_")}
    env.update(TKR_JWT_SECRET=secret, TKR_TRACE_DIR=str(directory))
    log_path = directory / "host.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([*command, "serve", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=directory, env=env)
    return Server("host", f"http://127.0.0.1:{port}", process, log_path, config.read_text())


async def snapshot(server: Server, directory: Path, index: int) -> Census:
    """Ask the traced host for snapshot ``index`` and wait until it is written."""
    server.process.send_signal(signal.SIGUSR1)
    census = directory / f"{index}.json"
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not census.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the host wrote no snapshot")
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)  # the .json is written last: let its write finish
    return tracemalloc.Snapshot.load(str(directory / f"{index}.snapshot")), json.loads(census.read_text())


async def open_connections(http: aiohttp.ClientSession, url: str) -> float:
    async with http.get(url + "/metrics") as response:
        match = GAUGE.search(await response.text())
    return float(match.group(1)) if match else 0.0


STDLIB = ("/lib/python3", "<frozen", "<string>")


def is_stdlib(filename: str) -> bool:
    return "site-packages" not in filename and any(mark in filename for mark in STDLIB)


def component(traceback: tracemalloc.Traceback) -> tuple[str, str]:
    """(who asked, what was made): the package of the newest frame outside the
    standard library, and the stdlib module that allocated (or "own")."""
    frames = list(reversed(list(traceback)))  # the allocation first
    made = "own"
    if is_stdlib(frames[0].filename):
        made = frames[0].filename.rsplit("/", 1)[-1].removesuffix(".py")
    for frame in frames:
        name = frame.filename
        if is_stdlib(name):
            continue
        tail = name.split("site-packages/")[-1].split("wt-perf/")[-1]
        if tail in ("tkr_host/cli.py", "tkr_host/serve.py"):  # the bottom of every stack: the event loop's own work
            break
        return tail.split("/")[0] if not tail.startswith("plugins/") else "/".join(tail.split("/")[:2]), made
    return "asyncio (the loop's callbacks: transports, streams)", made


def report_components(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, count: int) -> None:
    totals: collections.Counter[tuple[str, str]] = collections.Counter()
    for stat in after.compare_to(before, "traceback"):
        totals[component(stat.traceback)] += stat.size_diff
    by_package: collections.Counter[str] = collections.Counter()
    for (package, _), size in totals.items():
        by_package[package] += size
    print("\n== traced growth per socket, by the package that asked (and what the stdlib made for it) ==")
    for package, size in by_package.most_common():
        if abs(size) / count < 20:
            continue
        parts = ", ".join(f"{made} {s / count:.0f} B" for (p, made), s in totals.most_common() if p == package and abs(s) / count >= 50)
        print(f"{size / count / 1024:7.2f} KiB  {package}: {parts}")


def report_diff(before: Census, after: Census, count: int, top: int) -> None:
    for group in ("filename", "lineno"):
        stats = after[0].compare_to(before[0], group)
        total = sum(s.size_diff for s in stats)
        print(f"\n== traced growth by {group}: {total / count / 1024:.2f} KiB per socket ==")
        for stat in stats[:top]:
            frame = stat.traceback[0]
            where = frame.filename.split("site-packages/")[-1].split("wt-perf/")[-1]
            where = where if group == "filename" else f"{where}:{frame.lineno}"
            print(f"{stat.size_diff / count:9.0f} B  {stat.count_diff / count:6.2f} blocks  {where}")
    report_components(before[0], after[0], count)
    stats = after[0].compare_to(before[0], "traceback")
    print("\n== the largest growths with their callers ==")
    for stat in stats[:top // 2]:
        print(f"{stat.size_diff / count:9.0f} B  {stat.count_diff / count:6.2f} blocks")
        for frame in reversed(list(stat.traceback)[-6:]):  # the allocation first
            print(f"      {frame.filename.split('site-packages/')[-1].split('wt-perf/')[-1]}:{frame.lineno}")
    for key in ("tasks", "types"):
        grown = {name: after[1][key].get(name, 0) - before[1][key].get(name, 0) for name in after[1][key]}
        print(f"\n== {key} per socket ==")
        for name, diff in sorted(grown.items(), key=lambda item: -item[1])[:top if key == "types" else 20]:
            if diff > 0:
                print(f"{diff / count:8.2f}  {name}")


def start_profiler(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy on ``pid`` (native frames too, so that the garbage collector shows) until SIGINT."""
    command = [str(BIN / "py-spy"), "record", "--rate", "200", "--native", "--pid", str(pid), "--format", "raw", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def keep_snapshots(directory: Path, keep: Path) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    for item in directory.glob("[01].*"):
        shutil.copy(item, keep / item.name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--profile-close", type=Path, help="py-spy the host while the sockets close (raw format, to this file)")
    parser.add_argument("--keep", type=Path, help="copy the snapshots and censuses to this directory")
    args = parser.parse_args()
    servers.READY_TIMEOUT_S = 120.0  # a traced host starts slowly on a busy machine
    secret = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="tkr-idle-") as tmp:
        directory = Path(tmp)
        server = start_host(directory, secret, not args.no_trace)
        try:
            await wait_ready(server)
            warm = await NodeLoad.start(idle_plan(server.url, secret, 20, "warm"))
            await warm.answer("open", STEP_TIMEOUT_S)
            await warm.stop()
            await asyncio.sleep(SETTLE_S)
            rss_before = rss_kib(server.pid) or 0
            before = None if args.no_trace else await snapshot(server, directory, 0)
            idle = await NodeLoad.start(idle_plan(server.url, secret, args.count, "idle"))
            opened = await idle.answer("open", STEP_TIMEOUT_S)
            await asyncio.sleep(SETTLE_S)
            rss_after = rss_kib(server.pid) or 0
            after = None if args.no_trace else await snapshot(server, directory, 1)
            print(f"opened {opened['opened']} (errors {len(opened['errors'])}, extensions {opened.get('extensions')!r}); "
                  f"RSS {rss_before} -> {rss_after} KiB: {(rss_after - rss_before) / args.count:.1f} KiB per socket")
            if args.keep is not None:
                keep_snapshots(directory, args.keep)
            if before is not None and after is not None:
                report_diff(before, after, args.count, args.top)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=STEP_TIMEOUT_S)) as http:
                spy = None
                if args.profile_close is not None:
                    spy = start_profiler(server.pid, args.profile_close)
                    await asyncio.sleep(1.0)  # py-spy attaches
                cpu_start, start = cpu_seconds(server.pid) or 0.0, time.monotonic()
                await idle.say("close")
                await idle.answer("closed", STEP_TIMEOUT_S)
                while await open_connections(http, server.url) > 0:
                    if time.monotonic() - start > STEP_TIMEOUT_S:
                        raise RuntimeError("the sockets did not all close")
                    await asyncio.sleep(0.1)
                elapsed, cpu = time.monotonic() - start, (cpu_seconds(server.pid) or 0.0) - cpu_start
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes its samples on SIGINT
                    await asyncio.to_thread(spy.wait, 60)
            await idle.stop()
            print(f"\nclosing {args.count} at once: {elapsed:.2f} s until tkr_connections = 0, "
                  f"host CPU {cpu:.2f} s ({cpu / args.count * 1000:.3f} ms per socket)")
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
