"""Fixtures of the guard's tests.

Every test that runs a host runs twice, once per backend (``guard_backend``):
``memory``, and ``redis`` on ``$TKR_TEST_REDIS_URL`` with a key prefix of its
own. With the variable unset the Redis runs skip and say why; with it set and
Redis unreachable they fail.

The test hosts believe ``X-Forwarded-For`` from 127.0.0.1, so that a test can
play several client addresses (``connect_from``): the attacker is banned, the
admin on 127.0.0.1 is not. Helpers come as fixtures, since
``--import-mode=importlib`` cannot import this module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tkr_host.testing import ConnectRefused, RunningHost, TkrClient, connect_client, deep_merge, make_token
from tkr_host.testing import eventually as wait_until


@pytest.fixture
def redis_config(redis_url: str, redis_prefix: str) -> dict[str, Any]:
    """The Redis part of ``[plugins.guard]``: the kit's ``redis_url`` (it pings the server) and
    ``redis_prefix`` (a prefix of the test's own, its keys deleted afterwards)."""
    return {"backend": "redis", "redis_url": redis_url, "key_prefix": f"{redis_prefix}:guard:"}


@pytest.fixture(params=["memory", "redis"])
def guard_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "redis":
        config: dict[str, Any] = request.getfixturevalue("redis_config")
        return config
    return {"backend": "memory"}


@pytest.fixture
def tkr_settings(tkr_settings: dict[str, Any], guard_backend: dict[str, Any]) -> dict[str, Any]:
    # The test's own marker (already in tkr_settings) wins over these defaults.
    base = {"host": {"trusted_proxies": ["127.0.0.1/32"]}, "plugins": {"guard": guard_backend}}
    return deep_merge(base, tkr_settings)


@pytest.fixture
async def connect_from(tkr_host: RunningHost) -> AsyncIterator[Callable[..., Awaitable[TkrClient]]]:
    """``connect_from(ip, principal_id=None, token=None, namespace="/chat", kind="user")``: a client seen as coming from ``ip``.

    With ``principal_id`` a valid token is made for it; ``token`` sends that credential as is.
    A refused connect raises ConnectRefused.
    """
    clients: list[TkrClient] = []

    async def connect(ip: str | None, principal_id: str | None = None, token: str | None = None, namespace: str = "/chat",
                      kind: str = "user", **claims: Any) -> TkrClient:
        if principal_id is not None:
            token = make_token(principal_id, kind, **claims)
        headers = {"X-Forwarded-For": ip} if ip else {}
        sio = await connect_client(tkr_host.url, token, namespace, headers=headers)
        client = TkrClient(sio, principal_id or "?", namespace)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()


@pytest.fixture
def fail_auth(tkr_host: RunningHost) -> Callable[[str, int], Awaitable[list[dict[str, Any]]]]:
    """``fail_auth(ip, n)``: ``n`` connects with a forged token from ``ip``; the errors they got."""

    async def fail(ip: str, n: int) -> list[dict[str, Any]]:
        errors = []
        for _ in range(n):
            forged = make_token("mallory", secret="x" * 48)
            with pytest.raises(ConnectRefused) as refused:
                await connect_client(tkr_host.url, forged, headers={"X-Forwarded-For": ip})
            errors.append(refused.value.error)
        return errors

    return fail


@pytest.fixture
def http() -> Callable[..., Awaitable[tuple[int, Any]]]:
    """``http(method, url, token=None, ip=None)``: status and JSON body."""

    async def call(method: str, url: str, token: str | None = None, ip: str | None = None) -> tuple[int, Any]:
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if ip:
            headers["X-Forwarded-For"] = ip
        async with aiohttp.ClientSession() as session, session.request(method, url, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    return call


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    """``eventually(predicate, timeout=5, what=...)``: wait for a condition, or fail saying what."""
    return wait_until
