"""``python -m bench.run``: the same load against the bare server and the host.

For each target in turn (``--targets bare,host`` by default) it starts the server
on a fresh port, measures the RSS an idle connection costs, drives the chat load
from worker processes, stops the server, and finally prints one table with the
host/bare ratio of each figure and writes it all to ``bench/results/<timestamp>.json``.
bench/README.md says what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from bench.load import ClientPlan, WorkerPlan, worker_main
from bench.servers import TARGETS, Server, cpu_seconds, installed_plugins, machine_busy_seconds, rss_kib, start_server, wait_ready

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Seconds each setup step (connect, create, join, idle connects) may take.
STEP_TIMEOUT_S = 120.0
#: Idle connections opened and closed before the RSS baseline, so that lazy
#: imports and first-use caches are not charged to the measured connections.
IDLE_WARMUP_PER_WORKER = 3
IDLE_SETTLE_S = 1.5
#: Pause between targets, so one's aftermath does not land on the other.
COOL_DOWN_S = 2.0
#: What is running now, so that even an interrupted clean-up can finish the job.
LIVE_SERVERS: list[Server] = []
LIVE_WORKERS: list[WorkerHandle] = []
#: Workers outlive the run's deadline by this much, so the run's own timeout fires first and stops them.
WORKER_GRACE_S = 10.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Benchmark tkr-host against a bare python-socketio server.")
    parser.add_argument("--clients", type=int, default=40, help="Socket.IO clients sending (default 40)")
    parser.add_argument("--rooms", type=int, default=4, help="sessions the clients are spread over (default 4)")
    parser.add_argument("--messages", type=int, default=50, help="text messages each client sends (default 50)")
    parser.add_argument("--window", type=int, default=4, help="messages a client may have without an ack (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument("--idle", type=int, default=200, help="idle connections for the memory figure; 0 skips it (default 200)")
    parser.add_argument("--text-bytes", type=int, default=100, help="length of each message's text (default 100)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait for late deliveries after the last ack (default 5)")
    parser.add_argument("--ack-timeout", type=float, default=30.0, help="seconds before an unanswered send counts as an error (default 30)")
    parser.add_argument("--timeout", type=float, default=600.0, help="hard limit for the whole run, in seconds (default 600)")
    parser.add_argument("--targets", default="bare,host", help="comma-separated, run in this order (default bare,host)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON result goes (default bench/results)")
    args = parser.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    problems = [f"unknown target {t!r}" for t in args.targets if t not in TARGETS]
    if args.rooms < 1 or args.clients < 2 * args.rooms:
        problems.append("every room needs at least two clients: --clients must be at least 2 × --rooms")
    for name in ("messages", "window", "workers", "text_bytes"):
        if getattr(args, name) < 1:
            problems.append(f"--{name.replace('_', '-')} must be at least 1")
    if args.idle < 0 or args.settle < 0 or args.ack_timeout <= 0 or args.timeout <= 0:
        problems.append("--idle and --settle must not be negative, --ack-timeout and --timeout must be positive")
    if problems:
        parser.error("; ".join(problems))
    return args


def plan_clients(clients: int, rooms: int) -> list[ClientPlan]:
    """Client i is in room i mod R; the first client of each room creates it."""
    names = [f"load-{i:04d}" for i in range(clients)]
    members: dict[int, list[str]] = {}
    for i, name in enumerate(names):
        members.setdefault(i % rooms, []).append(name)
    return [
        ClientPlan(name=name, room=i % rooms, creator=i < rooms, invites=tuple(members[i % rooms][1:]) if i < rooms else ())
        for i, name in enumerate(names)
    ]


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0–100)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# --- worker processes ------------------------------------------------------------------


class WorkerHandle:
    """A load generator process and its end of the pipe."""

    def __init__(self, plan: WorkerPlan) -> None:
        context = multiprocessing.get_context("spawn")
        self.plan = plan
        self.pipe, child = context.Pipe()
        self.process: BaseProcess = context.Process(target=worker_main, args=(child, plan), name=f"bench-load-{plan.index}", daemon=True)
        self.process.start()
        child.close()

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    async def request(self, command: str, argument: Any = None, timeout: float = STEP_TIMEOUT_S) -> Any:
        self.pipe.send((command, argument))
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self.pipe.poll, 0.25):
            if not self.process.is_alive():
                raise RuntimeError(f"load worker {self.plan.index} died (exit code {self.process.exitcode}) during {command}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"load worker {self.plan.index} did not finish {command} within {timeout:.0f} s")
        status, result = self.pipe.recv()
        if status != "ok":
            raise RuntimeError(f"load worker {self.plan.index} failed {command}:\n{result}")
        return result


def stop_workers(workers: list[WorkerHandle], grace_s: float = 5.0) -> None:
    """Ask every worker to close, then terminate, then kill: never leaves one behind.

    A worker reads "close" between commands only, so one stuck in a command is
    terminated after ``grace_s``; its sockets die with it.
    """
    for worker in workers:
        if worker.process.is_alive():
            with contextlib.suppress(OSError):
                worker.pipe.send(("close", None))
    for end in (None, BaseProcess.terminate, BaseProcess.kill):
        deadline = time.monotonic() + grace_s
        for worker in workers:
            if end is not None and worker.process.is_alive():
                end(worker.process)
            worker.process.join(max(0.0, deadline - time.monotonic()))
    for worker in workers:
        worker.pipe.close()


async def on_all(workers: list[WorkerHandle], command: str, argument: Callable[[WorkerHandle], Any] | Any = None,
                 timeout: float = STEP_TIMEOUT_S) -> list[Any]:
    def arg(worker: WorkerHandle) -> Any:
        return argument(worker) if callable(argument) else argument

    return list(await asyncio.gather(*(worker.request(command, arg(worker), timeout) for worker in workers)))


def cpu_of(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) or 0.0 for pid in pids)


# --- one target ------------------------------------------------------------------------


async def measure_idle(server: Server, workers: list[WorkerHandle], count: int) -> dict[str, Any]:
    """RSS of the server before and after ``count`` idle, authenticated ``/chat`` connections."""
    await on_all(workers, "idle_open", IDLE_WARMUP_PER_WORKER)
    await on_all(workers, "idle_close")
    await asyncio.sleep(IDLE_SETTLE_S)
    before = rss_kib(server.pid)
    shares = [count // len(workers) + (1 if i < count % len(workers) else 0) for i in range(len(workers))]
    opened = await on_all(workers, "idle_open", lambda w: shares[w.plan.index])
    await asyncio.sleep(IDLE_SETTLE_S)
    after = rss_kib(server.pid)
    await on_all(workers, "idle_close")
    total = sum(o["opened"] for o in opened)
    errors = [e for o in opened for e in o["errors"]]
    if errors:
        raise RuntimeError(f"{count - total} of {count} idle connections failed, e.g. {errors[0]}")
    per_connection = (after - before) / total if before is not None and after is not None and total else None
    return {"idle_connections": total, "idle_errors": errors[:5], "rss_before_idle_kib": before, "rss_with_idle_kib": after,
            "idle_kib_per_connection": per_connection}


async def run_target(target: str, args: argparse.Namespace, deadline: float, servers: list[Server], workers: list[WorkerHandle]) -> dict[str, Any]:
    """Everything measured for one target; servers and workers go into the caller's lists for cleanup."""
    secret = secrets.token_urlsafe(48)
    text = ("benchmark message " * (args.text_bytes // 18 + 1))[: args.text_bytes]
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix=f"tkr-bench-{target}-") as directory:
        server = start_server(target, Path(directory), secret)
        servers.append(server)
        try:
            await wait_ready(server)
            log(f"{target}: serving on {server.url} (pid {server.pid})")
            plans = plan_clients(args.clients, args.rooms)
            mine = [tuple(plans[i::args.workers]) for i in range(args.workers)]
            handles = [
                WorkerHandle(WorkerPlan(index=i, url=server.url, jwt_secret=secret, clients=mine[i], messages=args.messages,
                                        window=args.window, text=text, ack_timeout_s=args.ack_timeout,
                                        deadline=deadline + WORKER_GRACE_S))
                for i in range(args.workers)
            ]
            workers.extend(handles)
            if args.idle:
                figures.update(await measure_idle(server, handles, args.idle))
                log(f"{target}: {figures['idle_connections']} idle connections: "
                    f"{fmt(figures['idle_kib_per_connection'], 1)} KiB of RSS each")
            figures.update(await drive(target, server, handles, args))
            return figures
        except Exception:
            log(f"{target}: server log tail:\n{server.log_tail()}")
            raise
        finally:
            stop_workers(workers)
            workers.clear()
            code = server.stop()
            servers.remove(server)
            figures["server_exit_code"] = code
            figures["server_config"] = server.config_text
            figures["server_warnings"] = server.warnings()
            log(f"{target}: stopped (exit code {code}, {len(figures['server_warnings'])} warnings or errors in its log)")


async def drive(target: str, server: Server, workers: list[WorkerHandle], args: argparse.Namespace) -> dict[str, Any]:
    connected = await on_all(workers, "connect")
    errors = [e for c in connected for e in c["errors"]]
    if errors:
        raise RuntimeError(f"{len(errors)} load clients could not connect, e.g. {errors[0]}")
    sessions: dict[int, str] = {}
    for created in await on_all(workers, "create"):
        sessions.update(created)
    await on_all(workers, "join", sessions)
    log(f"{target}: {args.clients} clients in {args.rooms} sessions; sending {args.messages} each, window {args.window}")
    await asyncio.sleep(0.5)

    worker_pids = [w.pid for w in workers]
    rss_before = rss_kib(server.pid)
    server_cpu, load_cpu, machine_cpu = cpu_seconds(server.pid), cpu_of(worker_pids), machine_busy_seconds()
    sent = await on_all(workers, "send", timeout=STEP_TIMEOUT_S + args.clients * args.messages * args.ack_timeout)
    acked: dict[str, int] = {}
    for part in sent:
        acked.update(part["acked"])
    room_of = {plan.name: plan.room for plan in plan_clients(args.clients, args.rooms)}
    room_total: dict[int, int] = {}
    for name, count in acked.items():
        room_total[room_of[name]] = room_total.get(room_of[name], 0) + count
    expected = {name: room_total[room_of[name]] - count for name, count in acked.items()}
    settled = await on_all(workers, "settle", {"expected": expected, "timeout_s": args.settle}, timeout=STEP_TIMEOUT_S + args.settle)
    server_cpu_used = (cpu_seconds(server.pid) or 0.0) - (server_cpu or 0.0)
    load_cpu_used = cpu_of(worker_pids) - load_cpu
    machine_after = machine_busy_seconds()
    other_cpu_used = machine_after - machine_cpu - server_cpu_used - load_cpu_used if machine_after is not None and machine_cpu is not None else None
    rss_after = rss_kib(server.pid)

    started = min(part["started"] for part in sent)
    finished = max(part["finished"] for part in sent)
    last_delivery = max([s["last_delivery"] for s in settled] + [finished])
    latencies = [value for part in sent for value in part["latencies_ms"]]
    send_errors: dict[str, int] = {}
    for part in sent:
        for code, count in part["errors"].items():
            send_errors[code] = send_errors.get(code, 0) + count
    total_acked = sum(acked.values())
    received = sum(s["received"] for s in settled)
    send_wall = finished - started
    delivery_wall = last_delivery - started
    return {
        "sends_per_s": total_acked / send_wall if send_wall > 0 else None,
        "deliveries_per_s": received / delivery_wall if delivery_wall > 0 else None,
        "ack_p50_ms": percentile(latencies, 50),
        "ack_p99_ms": percentile(latencies, 99),
        "ack_max_ms": max(latencies, default=None),
        "lost": sum(s["missing"] for s in settled),
        "server_cpu_ms_per_send": server_cpu_used * 1000 / total_acked if total_acked else None,
        "server_cpu_percent": 100 * server_cpu_used / delivery_wall if delivery_wall > 0 else None,
        "load_cpu_percent": 100 * load_cpu_used / delivery_wall if delivery_wall > 0 else None,
        "other_cpu_percent": 100 * max(0.0, other_cpu_used) / delivery_wall if other_cpu_used is not None and delivery_wall > 0 else None,
        "failed_sends": sum(send_errors.values()),
        "sent": args.clients * args.messages,
        "acked": total_acked,
        "send_errors": send_errors,
        "expected_deliveries": sum(s["expected"] for s in settled),
        "received_deliveries": received,
        "extra_deliveries": sum(s["extra"] for s in settled),
        "duplicate_deliveries": sum(s["duplicates"] for s in settled),
        "out_of_order_deliveries": sum(s["out_of_order"] for s in settled),
        "foreign_deliveries": sum(s["foreign"] for s in settled),
        "send_wall_s": send_wall,
        "delivery_wall_s": delivery_wall,
        "rss_before_load_kib": rss_before,
        "rss_after_load_kib": rss_after,
    }


# --- report ------------------------------------------------------------------------------

#: (key, label, digits, has a host/bare ratio) of the figures in the table, in order.
TABLE = [
    ("sends_per_s", "sends/s", 0, True),
    ("deliveries_per_s", "deliveries/s", 0, True),
    ("ack_p50_ms", "ack latency p50 (ms)", 1, True),
    ("ack_p99_ms", "ack latency p99 (ms)", 1, True),
    ("lost", "lost messages", 0, True),
    ("failed_sends", "failed or refused sends", 0, False),
    ("idle_kib_per_connection", "RSS per idle connection (KiB)", 1, True),
    ("server_cpu_ms_per_send", "server CPU per send (ms)", 2, True),
    ("server_cpu_percent", "server CPU (% of one core)", 0, False),
    ("load_cpu_percent", "load generator CPU (% of one core)", 0, False),
    ("other_cpu_percent", "other processes' CPU (% of one core)", 0, False),
]


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    host, bare = results.get("host"), results.get("bare")
    if not host or not bare:
        return {}
    out: dict[str, float | None] = {}
    for key, _, _, has_ratio in TABLE:
        if not has_ratio:
            continue
        h, b = host.get(key), bare.get(key)
        out[key] = h / b if isinstance(h, int | float) and isinstance(b, int | float) and b else None
    return out


def table(results: dict[str, dict[str, Any]], ratio: dict[str, float | None]) -> str:
    targets = list(results)
    header = ["figure", *targets] + (["host/bare"] if ratio else [])
    rows = [header]
    for key, label, digits, has_ratio in TABLE:
        row = [label, *(fmt(results[t].get(key), digits) for t in targets)]
        if ratio:
            row.append(fmt(ratio.get(key), 2) if has_ratio else "")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    def package(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "commit": commit or None,
        "host_plugins": installed_plugins(),
        "packages": {name: package(name) for name in ("tkr-host", "python-socketio", "python-engineio", "hypercorn", "quart", "peewee", "aiosqlite")},
    }


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- main -------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    started = datetime.now(UTC)
    deadline = time.monotonic() + args.timeout
    env = environment()
    log(f"{env['cpus']} CPUs, load average {' '.join(f'{x:.2f}' for x in env['loadavg'])}")
    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    servers, workers = LIVE_SERVERS, LIVE_WORKERS
    try:
        async with asyncio.timeout(args.timeout):
            for i, target in enumerate(args.targets):
                if i:
                    await asyncio.sleep(COOL_DOWN_S)
                try:
                    results[target] = await run_target(target, args, deadline, servers, workers)
                except Exception as exc:
                    failures[target] = f"{type(exc).__name__}: {exc}"
                    log(f"{target}: FAILED: {failures[target]}")
    except TimeoutError:
        failures["run"] = f"the run did not finish within --timeout {args.timeout:.0f} s"
        log(failures["run"])
    finally:
        # Normally empty already; after a timeout or an interrupt, nothing is left running.
        stop_workers(workers)
        for server in servers:
            server.stop()

    ratio = ratios(results)
    if results:
        print(table(results, ratio))
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
        "params": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "environment": env,
        "results": results,
        "host_over_bare": ratio,
        "failures": failures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse_args())))
    except KeyboardInterrupt:
        # A second Ctrl-C may have cut the clean-up short: finish it, without waiting.
        for worker in LIVE_WORKERS:
            worker.process.kill()
        for server in LIVE_SERVERS:
            server.process.kill()
        log("interrupted: servers and workers stopped, no result written")
        sys.exit(130)
