"""PostgreSQL stopped for real, and started again, while 20 clients keep sending.

The host (``tkr-host serve`` in its own process) stores in a schema of its own
on the server of ``TKR_TEST_POSTGRES_DSN``. Once a quarter of the load is acked,
the test stops that server with ``pg_ctlcluster … stop`` (fast mode: sessions are
ended, open transactions rolled back), waits 2 s, and starts it again. The
server is started again in a ``finally``, and the test waits until it accepts
connections, whatever happened, because the other PostgreSQL tests use it too.

Unset ``TKR_TEST_POSTGRES_DSN``: skipped. Set but unreachable: the test fails.
A DSN that names no local cluster ``pg_ctlcluster`` manages: skipped, since
there is no server this test may stop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import pytest

POSTGRES_ENV = "TKR_TEST_POSTGRES_DSN"
CLIENTS = 20
MESSAGES = 30
STOP_AT = 150
DOWN_S = 2.0
#: The breaker half-opens after 1 s instead of 5 s, so clients resend sooner.
PLUGINS: dict[str, Any] = {"recovery": {"breaker_reset_s": 1.0}}
LOCAL_HOSTS = {None, "", "127.0.0.1", "localhost", "::1"}


def postgres_dsn() -> str:
    dsn = os.environ.get(POSTGRES_ENV)
    if not dsn:
        pytest.skip(f"{POSTGRES_ENV} is not set: this test needs a local PostgreSQL it may stop, such as postgresql://postgres@127.0.0.1:5432/test")
    return dsn


def local_cluster(dsn: str) -> tuple[str, str]:
    """The (version, name) of the pg_ctlcluster cluster serving ``dsn``."""
    parts = urlsplit(dsn)
    if parts.hostname not in LOCAL_HOSTS:
        pytest.skip(f"{POSTGRES_ENV} names {parts.hostname}, not a local server this test may stop")
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        pytest.skip("stopping PostgreSQL needs pg_lsclusters and pg_ctlcluster (Debian's postgresql-common)")
    port = parts.port or 5432
    listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=30, check=True)
    for line in listed.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == str(port):
            return fields[0], fields[1]
    pytest.skip(f"no local cluster listens on port {port}: {listed.stdout.strip()}")


async def pg_ctlcluster(cluster: tuple[str, str], action: str, *options: str) -> subprocess.CompletedProcess[str]:
    args = ["pg_ctlcluster", "--skip-systemctl-redirect", *options, *cluster, action]
    return await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, timeout=120)


async def wait_accepting(dsn: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = await asyncpg.connect(dsn, timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
            continue
        await connection.close()
        return


async def ensure_running(cluster: tuple[str, str], dsn: str) -> None:
    """Start the cluster unless it runs (status 0), then wait until it accepts connections."""
    status = await pg_ctlcluster(cluster, "status")
    if status.returncode != 0:
        started = await pg_ctlcluster(cluster, "start")
        assert started.returncode == 0, f"pg_ctlcluster start failed: {started.stdout}{started.stderr}"
    await wait_accepting(dsn)


async def drop_schema(dsn: str, schema: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


async def test_postgresql_stopped_and_started(served_host: Callable[..., Awaitable[Any]], run_load: Callable[..., Awaitable[Any]]) -> None:
    dsn = postgres_dsn()
    await wait_accepting(dsn, timeout=5)  # set and unreachable: fail, do not skip
    cluster = local_cluster(dsn)
    schema = f"tkr_fault_{uuid.uuid4().hex[:12]}"
    host = None
    outages: list[float] = []

    async def stop_and_start(progress: Any) -> None:
        await progress.reached(STOP_AT)
        try:
            stopped = await pg_ctlcluster(cluster, "stop", "-m", "fast")
            assert stopped.returncode == 0, f"pg_ctlcluster stop failed: {stopped.stdout}{stopped.stderr}"
            began = time.monotonic()
            await asyncio.sleep(DOWN_S)
        finally:
            await ensure_running(cluster, dsn)
        outages.append(time.monotonic() - began)

    try:
        # A connection that cannot be had is given up on after 2 s instead of 10 s.
        host = await served_host({"url": dsn, "pg_schema": schema, "acquire_timeout_s": 2.0}, PLUGINS)
        result = await run_load(host.url, clients=CLIENTS, messages=MESSAGES, fault=stop_and_start, tag="pg")
        stored = await host.stored(result.session_id)
        result.counts["host_store_unavailable"] = int(await host.metric("tkr_errors_total", code="store.unavailable"))
        result.counts["host_messages_stored"] = int(await host.metric("tkr_messages_stored_total", type="text"))
        result.counts["breaker_opened"] = host.log_count("store circuit breaker opens")
        result.counts["outage_s"] = round(outages[0], 1)
        print(result.report("postgresql stopped", stored))
        # A commit whose answer was lost with the server is stored but refused;
        # its resend is acked as a duplicate and not broadcast again, so other
        # clients may fetch it by its seq gap (PROTOCOL.md): allowed here.
        result.check(stored, gap_fetches_allowed=True)
        assert result.refusals(), "stopping PostgreSQL refused nothing: the fault did not happen"
        assert result.refusals()["store.unavailable"], result.refusals()
        assert result.counts["host_store_unavailable"] == result.refusals()["store.unavailable"]
        # A PostgreSQL loss is store.unavailable and nothing else (PROTOCOL.md):
        # never internal.error.
        assert set(result.refusals()) == {"store.unavailable"}, result.refusals()
    finally:
        if host is not None:
            await host.stop()
        await ensure_running(cluster, dsn)
        await drop_schema(dsn, schema)
