"""tkr-ratelimit: rate limits for tkr-host, in memory or shared through Redis.

Entry point ``ratelimit`` in the ``tkr_host`` group; config table
``[plugins.ratelimit]``. The hook implementations only; the work lives in
``settings`` (the table), ``buckets`` (GCRA, no I/O) and ``backends`` (memory
and Redis).
"""

from __future__ import annotations

from pydantic import BaseModel

from tkr_host import HostAPI, RateLimiter, hookimpl
from tkr_ratelimit.backends import Backend, MemoryBackend, RedisBackend, build_backend
from tkr_ratelimit.buckets import BucketTable, Rate, gcra
from tkr_ratelimit.settings import PLUGIN_NAME, RateLimitSettings

__all__ = [
    "BucketTable",
    "MemoryBackend",
    "Rate",
    "RateLimitSettings",
    "RedisBackend",
    "build_backend",
    "config_model",
    "gcra",
    "host_shutdown",
    "host_startup",
    "rate_limiter",
]


@hookimpl
def config_model() -> type[BaseModel]:
    return RateLimitSettings


@hookimpl
def rate_limiter(host: HostAPI) -> RateLimiter:
    # Built here (the host asks once, before host_startup), started in host_startup.
    backend = build_backend(host.config(PLUGIN_NAME, RateLimitSettings))
    host.extensions[PLUGIN_NAME] = backend
    return backend


@hookimpl
async def host_startup(host: HostAPI) -> None:
    # The host keeps one list of trusted proxies, because the limiter, the guard
    # and the HTTP routes must all see the same client address.
    proxies = host.settings.host.trusted_proxies
    added = [entry for entry in host.config(PLUGIN_NAME, RateLimitSettings).trusted_proxies if entry not in proxies]
    host.settings.host.trusted_proxies = [*proxies, *added]
    backend: Backend | None = host.extensions.get(PLUGIN_NAME)
    if backend is not None:  # None when another plugin's rate_limiter won
        await backend.start()


@hookimpl
async def host_shutdown(host: HostAPI) -> None:
    backend: Backend | None = host.extensions.pop(PLUGIN_NAME, None)
    if backend is not None:
        await backend.close()
