"""The test kit's servers (part of the ``tkr_host.testing`` pytest plugin, which re-exports all of it):
the PostgreSQL and Redis fixtures that ping their server first, a Redis key prefix of a test's
own with its clean-up, and the loop counts that depend on where the suite runs.

Tests run in parallel (pytest-xdist, docs/testing.md "Speed") and share one PostgreSQL and one
Redis with the other workers and with other checkouts' runs, so nothing here is global: each
test gets a schema (the store's ``pg_schema``) or a key prefix of its own, and removes it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest

POSTGRES_ENV = "TKR_TEST_POSTGRES_DSN"
REDIS_ENV = "TKR_TEST_REDIS_URL"


# --- how much work a loop does ---------------------------------------------------------


def full_run() -> bool:
    """True in CI (``CI=true``, as CI services set it) or with ``TKR_TEST_FULL=1``: loops run their full counts."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes") for name in ("CI", "TKR_TEST_FULL"))


def loop_count(full: int, local: int) -> int:
    """``full`` in CI, ``local`` otherwise. A test derives its thresholds from the count it got,
    never from either constant, so that both runs check the same promise."""
    return full if full_run() else local


# --- PostgreSQL --------------------------------------------------------------------------


def postgres_answers(dsn: str, timeout: float = 5.0) -> str | None:
    """``None`` when the PostgreSQL server of ``dsn`` accepts a connection, else why not.

    Probed in a thread with its own event loop, so that a sync fixture can call it from
    inside a running loop (an async fixture's ``request.getfixturevalue``)."""
    try:
        import asyncpg  # type: ignore[import-untyped]  # installed with tkr-store-peewee
    except ImportError:
        return "asyncpg is not installed (it comes with tkr-store-peewee)"

    async def probe() -> None:
        connection = await asyncpg.connect(dsn, timeout=timeout)
        await connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(asyncio.run, probe()).result()
        except Exception as exc:  # any failure to answer reads the same
            return f"{type(exc).__name__}: {exc}"
    return None


def server_from_env(variable: str, server: str, example: str, answers: Callable[[str], str | None]) -> str:
    """The address in ``variable``: skip (saying what to set, like ``example``) when it is unset,
    fail when the ``server`` there does not answer (``answers`` says why not)."""
    address = os.environ.get(variable)
    if not address:
        pytest.skip(f"{variable} is not set: {server} tests need {example}")
    problem = answers(address)
    if problem is not None:
        pytest.fail(f"{variable}={address} is set, but {server} does not answer: {problem}")
    return address


@pytest.fixture
def postgres_dsn() -> str:
    """The test PostgreSQL: skips when ``TKR_TEST_POSTGRES_DSN`` is unset, fails when it does not answer."""
    return server_from_env(POSTGRES_ENV, "PostgreSQL", "a DSN such as postgresql://postgres@127.0.0.1:5432/test", postgres_answers)


# --- Redis -------------------------------------------------------------------------------


def redis_answers(url: str, timeout: float = 3.0) -> str | None:
    """``None`` when the Redis server of ``url`` answers ``PING``, else why not (plain RESP: no client library needed)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout) as probe:
            probe.sendall(b"PING\r\n")
            reply = probe.recv(64)
    except OSError as exc:
        return str(exc)
    return None if reply.startswith(b"+PONG") else f"answered {reply!r} to PING"


@pytest.fixture
def redis_url() -> str:
    """The test Redis: skips when ``TKR_TEST_REDIS_URL`` is unset, fails when it does not answer."""
    return server_from_env(REDIS_ENV, "Redis", "a URL such as redis://127.0.0.1:6379/0", redis_answers)


async def delete_redis_keys(url: str, match: str) -> int:
    """Delete the keys of the Redis at ``url`` that match the glob ``match`` (a test's own prefix,
    ``"<prefix>*"``); return how many went. Never a ``FLUSHDB``: other tests share the server."""
    from redis.asyncio import Redis  # installed with the plugins that use Redis (tkr-redis, guard, ratelimit)

    client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        keys = [key async for key in client.scan_iter(match=match)]
        return int(await client.delete(*keys)) if keys else 0
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix (or pub/sub channel name) of this test's own, ``tkr-test-<hex>``. When
    ``TKR_TEST_REDIS_URL`` is set, every key under it is deleted afterwards; the fixture needs no
    server itself, so a test of an unreachable Redis can name its channel with it too."""
    prefix = f"tkr-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    url = os.environ.get(REDIS_ENV)
    if url and redis_answers(url) is None:
        await delete_redis_keys(url, f"{prefix}*")
