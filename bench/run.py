"""``python -m bench.run``: the same loads against tkr-host, bare python-socketio and Node socket.io.

Round after round (``--rounds``, 3), each target in turn (``--targets
bare,host,node``) is started on a fresh port; with each client kind in turn
(``--client-kinds py,js``) it measures the RSS of idle connections and drives
the chat load; the host also answers the replay and streaming scenarios
(:mod:`bench.scenarios`). The report gives the median of the rounds, the ratios
of the host to each baseline, prints a table, and writes it all to
``bench/results/<timestamp>.json``. ``BENCH_QUICK=1`` (or ``--quick``) makes every
load small, for a fast look or a smoke test. bench/README.md says what each
figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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

from bench.jsload import NodeLoad, idle_plan, load_plan, node_ready
from bench.load import ClientPlan, WorkerPlan, worker_main
from bench.report import medians, percentile, ratios, table
from bench.servers import TARGETS, Server, cpu_seconds, installed_plugins, machine_busy_seconds, start_server, tree_cpu_seconds, wait_ready
from bench.servers import tree_rss_kib as rss_kib

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENT_KINDS = ("py", "js")
#: Seconds each setup step (connect, create, join, idle connects) may take.
STEP_TIMEOUT_S = 180.0
#: Idle connections opened and closed before the RSS baseline, so that lazy
#: imports and first-use caches are not charged to the measured connections.
IDLE_WARMUP_PER_WORKER = 3
IDLE_SETTLE_S = 1.5
#: Pause between targets, so one's aftermath does not land on the other.
COOL_DOWN_S = 2.0
#: What is running now, so that even an interrupted clean-up can finish the job.
LIVE_SERVERS: list[Server] = []
LIVE_WORKERS: list[WorkerHandle] = []
LIVE_NODE: list[NodeLoad] = []
#: Workers outlive the run's deadline by this much, so the run's own timeout fires first and stops them.
WORKER_GRACE_S = 10.0

#: The issue's load (50 clients in 10 sessions, 200 messages each, 8 acks in
#: flight), and the small one of BENCH_QUICK=1.
FULL = {"clients": 50, "rooms": 10, "messages": 200, "window": 8, "idle": 1000, "rounds": 3,
        "stream_agents": 20, "stream_chunks": 100, "replay": 500}
QUICK = {"clients": 8, "rooms": 2, "messages": 10, "window": 2, "idle": 20, "rounds": 1,
         "stream_agents": 2, "stream_chunks": 10, "replay": 50}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Benchmark tkr-host against bare python-socketio and Node socket.io.")
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
                        help="the small loads (also BENCH_QUICK=1); explicit knobs still win")
    parser.add_argument("--clients", type=int, help=f"Socket.IO clients sending (default {FULL['clients']})")
    parser.add_argument("--rooms", type=int, help=f"sessions the clients are spread over (default {FULL['rooms']})")
    parser.add_argument("--messages", type=int, help=f"text messages each client sends (default {FULL['messages']})")
    parser.add_argument("--window", type=int, help=f"messages a client may have without an ack (default {FULL['window']})")
    parser.add_argument("--idle", type=int, help=f"idle connections for the memory figure; 0 skips it (default {FULL['idle']})")
    parser.add_argument("--rounds", type=int, help=f"rounds, each target in turn in each; the report takes the median (default {FULL['rounds']})")
    parser.add_argument("--replay", type=int, help=f"missed messages a join replays, host only; 0 skips it (default {FULL['replay']})")
    parser.add_argument("--stream-agents", type=int, help=f"agents streaming at once, host only; 0 skips it (default {FULL['stream_agents']})")
    parser.add_argument("--stream-chunks", type=int, help=f"chunks each agent streams (default {FULL['stream_chunks']})")
    parser.add_argument("--stream-members", type=int, default=5, help="members of each streaming session, the agent included (default 5)")
    parser.add_argument("--stream-interval", type=float, default=0.02, help="seconds between an agent's chunks (default 0.02)")
    parser.add_argument("--workers", type=int, default=2, help="python load generator processes (default 2)")
    parser.add_argument("--host-workers", type=int, default=1, help="the host's Hypercorn workers; CPU and RSS are summed over them (default 1)")
    parser.add_argument("--redis-url", help="with --host-workers above 1: the Redis of [plugins.redis] (a channel of the run's own)")
    parser.add_argument("--text-bytes", type=int, default=100, help="length of each message's text (default 100)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait for late deliveries after the last ack (default 5)")
    parser.add_argument("--ack-timeout", type=float, default=30.0, help="seconds before an unanswered send counts as an error (default 30)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="hard limit for the whole run, in seconds (default 3600)")
    parser.add_argument("--targets", default="bare,host,node", help="comma-separated, run in this order in each round (default bare,host,node)")
    parser.add_argument("--client-kinds", default="py,js", help="py (python-socketio) and/or js (socket.io-client in Node) (default py,js)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON result goes (default bench/results)")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.client_kinds = [k.strip() for k in args.client_kinds.split(",") if k.strip()]
    problems = [f"unknown target {t!r}" for t in args.targets if t not in TARGETS]
    problems += [f"unknown client kind {k!r}" for k in args.client_kinds if k not in CLIENT_KINDS]
    if ("node" in args.targets or "js" in args.client_kinds) and (why := node_ready()):
        problems.append(why)
    if args.rooms < 1 or args.clients < 2 * args.rooms:
        problems.append("every room needs at least two clients: --clients must be at least 2 × --rooms")
    for name in ("messages", "window", "workers", "text_bytes", "rounds", "stream_chunks"):
        if getattr(args, name) < 1:
            problems.append(f"--{name.replace('_', '-')} must be at least 1")
    if args.host_workers < 1 or (args.host_workers > 1 and not args.redis_url):
        problems.append("--host-workers must be at least 1, and above 1 it needs --redis-url (workers share sessions through Redis)")
    if args.stream_members < 2:
        problems.append("--stream-members must be at least 2 (the agent and one watcher)")
    if min(args.idle, args.replay, args.stream_agents) < 0 or args.settle < 0 or args.stream_interval < 0 or args.ack_timeout <= 0 or args.timeout <= 0:
        problems.append("counts, --settle and --stream-interval must not be negative, --ack-timeout and --timeout must be positive")
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


# --- the figures of one load ---------------------------------------------------------------


class CpuMeter:
    """CPU of the server, of the load generators and of everything else, from one moment on."""

    def __init__(self, server_pid: int, load_pids: list[int]) -> None:
        self.server_pid, self.load_pids = server_pid, load_pids
        self.server, self.load, self.machine = tree_cpu_seconds(server_pid) or 0.0, cpu_of(load_pids), machine_busy_seconds()

    def used(self) -> tuple[float, float, float | None]:
        """(server, load generators, other processes) CPU seconds since the start."""
        server = (tree_cpu_seconds(self.server_pid) or 0.0) - self.server
        load = cpu_of(self.load_pids) - self.load
        machine = machine_busy_seconds()
        other = machine - self.machine - server - load if machine is not None and self.machine is not None else None
        return server, load, other


def load_figures(acked: int, sent: int, received: int, lost: int, latencies: Sequence[float] | None, p50: float | None, p99: float | None,
                 send_wall: float, delivery_wall: float, cpu: tuple[float, float, float | None], send_errors: dict[str, int],
                 counts: dict[str, Any]) -> dict[str, Any]:
    """The figures of a chat load, the same for both client kinds."""
    server_cpu, load_cpu, other_cpu = cpu
    return {
        "sends_per_s": acked / send_wall if send_wall > 0 else None,
        "deliveries_per_s": received / delivery_wall if delivery_wall > 0 else None,
        "ack_p50_ms": percentile(latencies, 50) if latencies is not None else p50,
        "ack_p99_ms": percentile(latencies, 99) if latencies is not None else p99,
        "lost": lost,
        "failed_sends": sum(send_errors.values()),
        "server_cpu_ms_per_send": server_cpu * 1000 / acked if acked else None,
        "server_cpu_ms_per_delivery": server_cpu * 1000 / received if received else None,
        "server_cpu_percent": 100 * server_cpu / delivery_wall if delivery_wall > 0 else None,
        "load_cpu_percent": 100 * load_cpu / delivery_wall if delivery_wall > 0 else None,
        "other_cpu_percent": 100 * max(0.0, other_cpu) / delivery_wall if other_cpu is not None and delivery_wall > 0 else None,
        "sent": sent,
        "acked": acked,
        "received_deliveries": received,
        "send_errors": send_errors,
        "send_wall_s": send_wall,
        "delivery_wall_s": delivery_wall,
        **counts,
    }


# --- the python client kind -----------------------------------------------------------------


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
    return idle_figures(before, after, total)


def idle_figures(before: int | None, after: int | None, total: int) -> dict[str, Any]:
    per_connection = (after - before) / total if before is not None and after is not None and total else None
    return {"idle_connections": total, "rss_before_idle_kib": before, "rss_with_idle_kib": after, "idle_kib_per_connection": per_connection}


async def drive_py(target: str, server: Server, workers: list[WorkerHandle], args: argparse.Namespace) -> dict[str, Any]:
    connected = await on_all(workers, "connect")
    errors = [e for c in connected for e in c["errors"]]
    if errors:
        raise RuntimeError(f"{len(errors)} load clients could not connect, e.g. {errors[0]}")
    sessions: dict[int, str] = {}
    for created in await on_all(workers, "create"):
        sessions.update(created)
    await on_all(workers, "join", sessions)
    log(f"{target} [py]: {args.clients} clients in {args.rooms} sessions; sending {args.messages} each, window {args.window}")
    await asyncio.sleep(0.5)

    meter = CpuMeter(server.pid, [w.pid for w in workers])
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
    cpu = meter.used()

    started = min(part["started"] for part in sent)
    finished = max(part["finished"] for part in sent)
    last_delivery = max([s["last_delivery"] for s in settled] + [finished])
    send_errors: dict[str, int] = {}
    for part in sent:
        for code, count in part["errors"].items():
            send_errors[code] = send_errors.get(code, 0) + count
    counts = {name: sum(s[name] for s in settled) for name in ("expected", "extra", "duplicates", "out_of_order", "foreign")}
    return load_figures(sum(acked.values()), args.clients * args.messages, sum(s["received"] for s in settled), sum(s["missing"] for s in settled),
                        [v for part in sent for v in part["latencies_ms"]], None, None, finished - started, last_delivery - started, cpu,
                        send_errors, counts)


async def host_scenarios(server: Server, workers: list[WorkerHandle], args: argparse.Namespace) -> dict[str, Any]:
    """Replay and streaming, the host only (bench.scenarios)."""
    figures: dict[str, Any] = {}
    if args.replay:
        got = await workers[0].request("replay", {"messages": args.replay})
        figures.update(got)
        log(f"host: a join replaying {got['replay_messages']} messages took {got['replay_server_ms']:.1f} ms server side")
    if args.stream_agents:
        shares = [args.stream_agents // len(workers) + (1 if i < args.stream_agents % len(workers) else 0) for i in range(len(workers))]
        busy = [w for w in workers if shares[w.plan.index]]
        parts = await on_all(busy, "stream", lambda w: {"agents": shares[w.plan.index], "members": args.stream_members,
                                                       "chunks": args.stream_chunks, "interval_s": args.stream_interval})
        latencies = [v for part in parts for v in part["latencies_ms"]]
        wall = max(p["finished"] for p in parts) - min(p["started"] for p in parts)
        received = sum(p["chunks_received"] for p in parts)
        figures.update({
            "chunk_rate_per_s": received / wall if wall > 0 else None,
            "chunk_p50_ms": percentile(latencies, 50),
            "chunk_p99_ms": percentile(latencies, 99),
            "chunks_lost": sum(p["chunks_expected"] for p in parts) - received,
            "chunks_sent": sum(p["chunks_sent"] for p in parts),
            "chunks_received": received,
        })
        log(f"host: {args.stream_agents} agents streamed; chunk p99 {figures['chunk_p99_ms']:.1f} ms")
    return figures


# --- the JS client kind -----------------------------------------------------------------------


async def measure_idle_js(server: Server, count: int, secret: str) -> dict[str, Any]:
    warm = await NodeLoad.start(idle_plan(server.url, secret, IDLE_WARMUP_PER_WORKER, "warm"))
    LIVE_NODE.append(warm)
    try:
        await warm.answer("open", STEP_TIMEOUT_S)
    finally:
        await warm.stop()
        LIVE_NODE.remove(warm)
    await asyncio.sleep(IDLE_SETTLE_S)
    before = rss_kib(server.pid)
    idle = await NodeLoad.start(idle_plan(server.url, secret, count, "idle-js"))
    LIVE_NODE.append(idle)
    try:
        opened = await idle.answer("open", STEP_TIMEOUT_S)
        await asyncio.sleep(IDLE_SETTLE_S)
        after = rss_kib(server.pid)
    finally:
        await idle.stop()
        LIVE_NODE.remove(idle)
    if opened["errors"]:
        raise RuntimeError(f"{count - opened['opened']} of {count} idle JS connections failed, e.g. {opened['errors'][0]}")
    return {**idle_figures(before, after, opened["opened"]), "compression": opened.get("extensions") or "none"}


async def drive_js(target: str, server: Server, args: argparse.Namespace, secret: str, text: str, deadline: float) -> dict[str, Any]:
    plan = load_plan(server.url, secret, plan_clients(args.clients, args.rooms), args.messages, args.window, text, args.ack_timeout,
                     args.settle, deadline)
    load = await NodeLoad.start(plan)
    LIVE_NODE.append(load)
    try:
        ready = await load.answer("ready", STEP_TIMEOUT_S)
        log(f"{target} [js]: {args.clients} clients in {args.rooms} sessions (compression: {ready.get('extensions') or 'none'})")
        await asyncio.sleep(0.5)
        meter = CpuMeter(server.pid, [load.pid])
        await load.say("go")
        done = await load.answer("done", STEP_TIMEOUT_S + args.clients * args.messages * args.ack_timeout)
        cpu = meter.used()
    finally:
        await load.stop()
        LIVE_NODE.remove(load)
    counts = {name: done[name] for name in ("expected", "extra", "duplicates", "out_of_order", "foreign")}
    figures = load_figures(done["acked"], args.clients * args.messages, done["received"], done["missing"], None, done["ack_p50_ms"],
                           done["ack_p99_ms"], done["send_wall_s"], done["delivery_wall_s"], cpu, done["errors"], counts)
    figures["compression"] = ready.get("extensions") or "none"
    return figures


# --- one target ------------------------------------------------------------------------


def prefixed(kind: str, figures: dict[str, Any]) -> dict[str, Any]:
    return {f"{kind}.{key}": value for key, value in figures.items()}


async def run_target(target: str, args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    """Everything measured for one target in one round: each client kind against a server of its own.

    A server of its own, because RSS does not fall when connections close: the
    second kind's idle connections would reuse the memory the first kind's left
    behind, and its RSS per idle connection would read a fraction of the truth
    (4.8 KiB for the host's JS sockets after the Python ones, 20261201T213114Z).
    """
    secret = secrets.token_urlsafe(48)
    text = ("benchmark message " * (args.text_bytes // 18 + 1))[: args.text_bytes]
    figures: dict[str, Any] = {"server_exit_code": [], "server_warnings": [], "server_config": None}
    for kind in ("py", "js"):
        if kind not in args.client_kinds:
            continue
        with tempfile.TemporaryDirectory(prefix=f"tkr-bench-{target}-") as directory:
            server = start_server(target, Path(directory), secret, args.host_workers, args.redis_url)
            LIVE_SERVERS.append(server)
            try:
                await wait_ready(server)
                log(f"{target}: serving on {server.url} (pid {server.pid}) for the {kind} clients")
                if kind == "py":
                    figures.update(await run_py(target, server, args, secret, text, deadline))
                else:
                    if args.idle:
                        idle = await measure_idle_js(server, args.idle, secret)
                        figures.update(prefixed("js", idle))
                        log(f"{target} [js]: {idle['idle_connections']} idle connections: {idle['idle_kib_per_connection'] or 0:.1f} KiB of RSS each")
                    figures.update(prefixed("js", await drive_js(target, server, args, secret, text, deadline)))
            except Exception:
                log(f"{target}: server log tail:\n{server.log_tail()}")
                raise
            finally:
                stop_workers(LIVE_WORKERS)
                LIVE_WORKERS.clear()
                code = server.stop()
                LIVE_SERVERS.remove(server)
                warnings = server.warnings()
                figures["server_exit_code"].append(code)
                figures["server_warnings"].extend(warnings)
                figures["server_config"] = server.config_text if target != "node" else None
                log(f"{target}: stopped (exit code {code}, {len(warnings)} warnings or errors in its log)")
    return figures


async def run_py(target: str, server: Server, args: argparse.Namespace, secret: str, text: str, deadline: float) -> dict[str, Any]:
    plans = plan_clients(args.clients, args.rooms)
    mine = [tuple(plans[i::args.workers]) for i in range(args.workers)]
    handles = [
        WorkerHandle(WorkerPlan(index=i, url=server.url, jwt_secret=secret, clients=mine[i], messages=args.messages, window=args.window,
                                text=text, ack_timeout_s=args.ack_timeout, deadline=deadline + WORKER_GRACE_S))
        for i in range(args.workers)
    ]
    LIVE_WORKERS.extend(handles)
    figures: dict[str, Any] = {}
    try:
        if args.idle:
            idle = await measure_idle(server, handles, args.idle)
            figures.update(prefixed("py", idle))
            log(f"{target} [py]: {idle['idle_connections']} idle connections: {idle['idle_kib_per_connection'] or 0:.1f} KiB of RSS each")
        figures.update(prefixed("py", await drive_py(target, server, handles, args)))
        figures["py.compression"] = "not offered"
        if target == "host":
            figures.update(await host_scenarios(server, handles, args))
    finally:
        stop_workers(handles)
        LIVE_WORKERS.clear()
    return figures


# --- report ------------------------------------------------------------------------------


PACKAGES = ("tkr-host", "python-socketio", "python-engineio", "hypercorn", "quart", "peewee", "aiosqlite", "wsproto")


def node_version() -> str | None:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


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
        "packages": {name: package(name) for name in PACKAGES},
        "node": node_version(),
    }


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- main -------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    started = datetime.now(UTC)
    deadline = time.monotonic() + args.timeout
    env = environment()
    log(f"{env['cpus']} CPUs, load average {' '.join(f'{x:.2f}' for x in env['loadavg'])}; {args.rounds} round(s) of {', '.join(args.targets)}")
    rounds: list[dict[str, dict[str, Any]]] = []
    failures: dict[str, str] = {}
    try:
        async with asyncio.timeout(args.timeout):
            for number in range(1, args.rounds + 1):
                results: dict[str, dict[str, Any]] = {}
                rounds.append(results)
                for i, target in enumerate(args.targets):
                    if i or number > 1:
                        await asyncio.sleep(COOL_DOWN_S)
                    log(f"round {number}: {target}")
                    try:
                        results[target] = await run_target(target, args, deadline)
                    except Exception as exc:
                        failures[f"round {number} {target}"] = f"{type(exc).__name__}: {exc}"
                        log(f"{target}: FAILED: {type(exc).__name__}: {exc}")
    except TimeoutError:
        failures["run"] = f"the run did not finish within --timeout {args.timeout:.0f} s"
        log(failures["run"])
    finally:
        # Normally empty already; after a timeout or an interrupt, nothing is left running.
        stop_workers(LIVE_WORKERS)
        for load in list(LIVE_NODE):
            await load.stop()
        for server in LIVE_SERVERS:
            server.stop()

    median = medians(rounds)
    by_baseline: dict[str, dict[str, float | None]] = {base: ratios(median, base) for base in ("bare", "node") if base in median and "host" in median}
    if median:
        print(table(median, args.client_kinds, by_baseline))
    report = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.run", *sys.argv[1:]]) + (" (BENCH_QUICK=1)" if os.environ.get("BENCH_QUICK") else ""),
        "params": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "environment": env,
        "median": median,
        "host_over_bare": by_baseline.get("bare", {}),
        "host_over_node": by_baseline.get("node", {}),
        "rounds": rounds,
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
        for load in LIVE_NODE:
            with contextlib.suppress(ProcessLookupError):
                load.process.kill()
        for server in LIVE_SERVERS:
            server.process.kill()
        log("interrupted: servers and load generators stopped, no result written")
        sys.exit(130)
