"""Where the buckets live: in this process's memory, or in Redis.

Both backends implement the host's ``RateLimiter`` protocol (``hit(action, key)``
returns None to allow, or the seconds to wait) plus ``start`` and ``close``, and
both run the same GCRA (:func:`tkr_ratelimit.buckets.gcra`): in Python for
memory, in a Lua script for Redis, so that the read, the decision and the write
are one atomic step on the server and several host processes share one limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from tkr_ratelimit.buckets import BucketTable, Clock, Rate, to_seconds
from tkr_ratelimit.settings import RateLimitSettings

log = logging.getLogger(__name__)


class Backend(Protocol):
    """A RateLimiter the plugin starts at ``host_startup`` and closes at ``host_shutdown``."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def hit(self, action: str, key: str) -> float | None: ...


class MemoryBackend:
    """One :class:`BucketTable` per action, in this process only."""

    def __init__(self, rates: Mapping[str, Rate], clock: Clock = time.monotonic, max_keys: int = 100_000) -> None:
        self.tables = {action: BucketTable(rate, clock, max_keys) for action, rate in rates.items()}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.tables.clear()

    async def hit(self, action: str, key: str) -> float | None:
        table = self.tables.get(action)
        return None if table is None else table.hit(key)


#: GCRA on the server's clock, exactly as ``buckets.gcra``: KEYS[1] holds the TAT
#: in microseconds; ARGV are the emission interval (µs) and the burst. Returns
#: ``{1, 0}`` when allowed, ``{0, retry_after_us}`` when not. The key expires when
#: its bucket is full again, so nothing accumulates.
GCRA_LUA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
"""


class RedisBackend:
    """Buckets in Redis under ``key_prefix + action + ":" + key``, shared by every host using them."""

    def __init__(self, rates: Mapping[str, Rate], url: str, key_prefix: str, timeout_s: float = 2.0, fail_open: bool = True) -> None:
        self.rates = dict(rates)
        self.url = url
        self.key_prefix = key_prefix
        self.timeout_s = timeout_s
        self.fail_open = fail_open
        self.client: Redis | None = None
        self._script: AsyncScript | None = None
        self._failing = False

    def key(self, action: str, key: str) -> str:
        return f"{self.key_prefix}{action}:{key}"

    def connect(self) -> None:
        """Make the client and register the script; no round trip yet."""
        if self.client is not None:
            return
        # One immediate retry replaces a pooled connection that Redis closed
        # (after a restart); more would hold every send while Redis is down.
        self.client = Redis.from_url(self.url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s,
                                     retry=Retry(NoBackoff(), 1))
        self._script = self.client.register_script(GCRA_LUA)

    async def start(self) -> None:
        """Connect and check that Redis answers; an unreachable Redis stops start-up."""
        self.connect()
        assert self.client is not None
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            await self.close()
            raise RuntimeError(f"ratelimit: Redis at {self.url} does not answer: {exc}") from None

    async def close(self) -> None:
        client, self.client, self._script = self.client, None, None
        if client is not None:
            await client.aclose()

    async def hit(self, action: str, key: str) -> float | None:
        rate = self.rates.get(action)
        if rate is None:
            return None
        if self._script is None:
            raise RuntimeError("the Redis rate limiter was not started")
        try:
            allowed, retry_after_us = await self._script(keys=[self.key(action, key)], args=[rate.interval_us, rate.burst])
        except (RedisError, OSError) as exc:
            return self._failed(exc, rate)
        if self._failing:
            self._failing = False
            log.warning("ratelimit: Redis at %s answers again", self.url)
        return None if int(allowed) else to_seconds(int(retry_after_us))

    def _failed(self, exc: Exception, rate: Rate) -> float | None:
        if not self._failing:
            # Said once per outage, not once per message.
            self._failing = True
            log.warning("ratelimit: Redis at %s failed (%s); %s until it answers", self.url, exc,
                        "allowing every action" if self.fail_open else "refusing every action")
        return None if self.fail_open else to_seconds(rate.interval_us)


def build_backend(settings: RateLimitSettings, clock: Clock = time.monotonic) -> MemoryBackend | RedisBackend:
    """The backend the settings name, not started yet."""
    rates = settings.rates()
    if settings.backend == "redis":
        assert settings.redis_url is not None  # the settings model requires it
        return RedisBackend(rates, settings.redis_url, settings.key_prefix, settings.redis_timeout_s, settings.fail_open)
    return MemoryBackend(rates, clock, settings.memory_max_keys)
