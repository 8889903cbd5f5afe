"""Fixtures: the same host tests run on the memory backend and on a real Redis.

Redis runs when ``TKR_TEST_REDIS_URL`` is set (for instance
``redis://127.0.0.1:6379/0``) and is skipped, saying why, when it is not. A set
URL whose server does not answer fails the test. Each Redis test gets a key
prefix of its own, and its keys are deleted afterwards.

The host fixtures (``tkr_host``, ``tkr_client``, ``tkr_settings``…), ``redis_url``
(which pings the server) and ``room`` come from tkr-host's pytest plugin. With ``--import-mode=importlib`` tests cannot import
this module, so helpers are fixtures.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import tkr_ratelimit
from redis.asyncio import Redis

from tkr_host.testing import deep_merge, delete_redis_keys

BACKENDS = ["memory", "redis"]



@pytest.fixture
def tkr_plugins() -> list[Any]:
    # Already loaded through its entry point; listed so the host's plugin set is explicit.
    return [tkr_ratelimit]


@pytest.fixture
async def redis_table(redis_url: str) -> AsyncIterator[Callable[..., dict[str, Any]]]:
    """``redis_table(prefix=None)``: a ``[plugins.ratelimit]`` table for the test Redis, under a
    fresh key prefix unless one is given. Every key left under those prefixes is deleted afterwards."""
    prefixes: list[str] = []

    def make(prefix: str | None = None) -> dict[str, Any]:
        prefix = prefix or f"tkr-test:{uuid.uuid4().hex}:"
        prefixes.append(prefix)
        return {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix}

    yield make
    for prefix in prefixes:
        await delete_redis_keys(redis_url, f"{prefix}*")


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the test Redis, to look at the keys a test made."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=BACKENDS)
def ratelimit_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The backend part of the ``[plugins.ratelimit]`` table, once per backend."""
    if request.param == "memory":
        return {"backend": "memory"}
    make: Callable[..., dict[str, Any]] = request.getfixturevalue("redis_table")
    return make()


@pytest.fixture
def tkr_settings(tkr_settings: dict[str, Any], ratelimit_backend: dict[str, Any]) -> dict[str, Any]:
    """The host's settings with the parametrized backend; ``tkr_settings`` markers set the limits."""
    return deep_merge(tkr_settings, {"plugins": {"ratelimit": ratelimit_backend}})


