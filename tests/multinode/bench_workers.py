"""Two workers against one, with Redis and PostgreSQL: the figures of docs/operations.md, "Two workers".

    .venv/bin/python tests/multinode/bench_workers.py [--clients 40 --rooms 4 --messages 50 --rounds 2]

Runs bench/'s own load generator (bench.load, its worker processes and its
``drive`` step) against ``tkr-host serve`` with ``workers = 1`` and then
``workers = 2``, each with ``[plugins.redis]`` on $TKR_TEST_REDIS_URL and the
store on $TKR_TEST_POSTGRES_DSN (a schema of its own, dropped afterwards),
alternating ``rounds`` times, and prints sends/s, deliveries/s and ack latency
of each run and the median two/one ratio. Bounded: every step of bench.run has
its timeout, and the servers are stopped (SIGTERM, then SIGKILL) whatever happens.
Not a pytest test (the name does not start with ``test_``): a duration is not
something a test may assert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.load import WorkerPlan  # noqa: E402
from bench.run import WorkerHandle, drive, plan_clients, stop_workers  # noqa: E402
from bench.servers import PERMISSIVE_TABLES, Server, free_port, installed_plugins, wait_ready  # noqa: E402

BIN = Path(sys.executable).parent


def config(directory: Path, port: int, workers: int, dsn: str, schema: str, redis_url: str, channel: str) -> Path:
    installed = installed_plugins()
    text = (
        f'bind = ["127.0.0.1:{port}"]\nworkers = {workers}\ngraceful_timeout = 5\n'
        "[host]\ndrain_timeout_s = 2\nmax_connections_per_address = 0\nmax_unconnected_sessions_per_address = 10000\n"
        '[plugins.auth_jwt]\nsecret = "env:TKR_JWT_SECRET"\n'
        f'[plugins.store_peewee]\nurl = "{dsn}"\npg_schema = "{schema}"\n'
        f'[plugins.redis]\nurl = "{redis_url}"\nchannel = "{channel}"\n'
    )
    for name, table in PERMISSIVE_TABLES.items():
        if name in installed:
            text += f"[plugins.{name}]\n{table}"
    path = directory / f"workers{workers}.toml"
    path.write_text(text)
    return path


def spawn(path: Path, log_path: Path, directory: str, secret: str) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen([str(BIN / "tkr-host"), "serve", "--config", str(path)], stdout=log, stderr=subprocess.STDOUT,
                                cwd=directory, env={**os.environ, "TKR_JWT_SECRET": secret})


async def ready_on_every_worker(url: str, workers: int, timeout: float = 60.0) -> None:
    """/readyz from each worker: a worker still starting would leave the other to take the load."""
    import aiohttp

    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only workers {sorted(seen)} answered /readyz")
        async with aiohttp.ClientSession() as http:
            answers = await asyncio.gather(*(http.get(f"{url}/readyz") for _ in range(8)), return_exceptions=True)
            for answer in answers:
                if isinstance(answer, aiohttp.ClientResponse):
                    if answer.status == 200:
                        seen.add(answer.headers.get("x-tkr-worker", "one"))
                    answer.release()
        await asyncio.sleep(0.1)


async def one_run(workers: int, args: argparse.Namespace, dsn: str, redis_url: str) -> dict[str, Any]:
    secret = secrets.token_urlsafe(48)
    schema, channel = f"tkr_bench_{uuid.uuid4().hex[:10]}", f"tkr-bench-{uuid.uuid4().hex[:10]}"
    text = ("benchmark message " * 6)[:100]
    with tempfile.TemporaryDirectory(prefix="tkr-workers-") as directory:
        port = free_port()
        path = config(Path(directory), port, workers, dsn, schema, redis_url, channel)
        log_path = Path(directory) / "server.log"
        process = spawn(path, log_path, directory, secret)
        server = Server(target=f"workers={workers}", url=f"http://127.0.0.1:{port}", process=process, log_path=log_path,
                        config_text=path.read_text())
        handles: list[WorkerHandle] = []
        try:
            await wait_ready(server)
            await ready_on_every_worker(server.url, workers)
            plans = plan_clients(args.clients, args.rooms)
            deadline = time.monotonic() + 600
            handles = [WorkerHandle(WorkerPlan(index=i, url=server.url, jwt_secret=secret, clients=tuple(plans[i::args.load_workers]),
                                               messages=args.messages, window=args.window, text=text, ack_timeout_s=30.0,
                                               deadline=deadline))
                       for i in range(args.load_workers)]
            args.settle, args.ack_timeout = 5.0, 30.0  # what drive() reads of bench.run's options
            figures = await drive(server.target, server, handles, args)
            return {key: figures[key] for key in ("sends_per_s", "deliveries_per_s", "ack_p50_ms", "ack_p99_ms", "lost", "failed_sends")}
        finally:
            stop_workers(handles)
            server.stop()
            await drop_schema(dsn, schema)


async def drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--load-workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    dsn, redis_url = os.environ.get("TKR_TEST_POSTGRES_DSN"), os.environ.get("TKR_TEST_REDIS_URL")
    if not dsn or not redis_url:
        print("set TKR_TEST_POSTGRES_DSN and TKR_TEST_REDIS_URL", file=sys.stderr)
        return 2
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for workers in (1, 2):
            result = await one_run(workers, args, dsn, redis_url)
            runs[workers].append(result)
            print(f"workers={workers}: {json.dumps(result)}", flush=True)
    for key in ("sends_per_s", "deliveries_per_s", "ack_p50_ms", "ack_p99_ms"):
        one = statistics.median(r[key] for r in runs[1])
        two = statistics.median(r[key] for r in runs[2])
        print(f"{key}: one worker {one:.1f}, two workers {two:.1f}, two/one {two / one:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
