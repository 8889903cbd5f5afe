"""``[plugins.ratelimit]``: the plugin's config table.

The key names are a contract (they are in the issue, the README and
``docs/configuration.md``); the defaults never bother a person or a well-behaved
program: 20 messages a second with bursts of 60 per principal, 120 connects a
minute with bursts of 60 per client address, 30 new sessions a minute with bursts
of 30 per principal.
"""

from __future__ import annotations

import ipaddress
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from tkr_ratelimit.buckets import Rate

#: The plugin's entry-point name: its config table and its key in ``host.config``.
PLUGIN_NAME = "ratelimit"

#: The actions the host asks about (see ``RateLimiter`` in ``tkr_host.types``).
MESSAGE, CONNECT, SESSION = "message", "connect", "session"


class RateLimitSettings(BaseModel):
    """How fast principals may send and open sessions, and addresses may connect."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``memory``: one process keeps its own counters. ``redis``: every host
    #: process sharing ``redis_url`` and ``key_prefix`` shares one limit.
    backend: Literal["memory", "redis"] = "memory"
    #: The Redis server of the ``redis`` backend, e.g. ``redis://127.0.0.1:6379/0``.
    redis_url: str | None = Field(default=None, min_length=1)
    #: Prepended to every Redis key; hosts that share it share their limits.
    key_prefix: str = Field(default="tkr:ratelimit:", min_length=1, max_length=200)
    #: Seconds a Redis command may take (connect, read) before it counts as failed.
    redis_timeout_s: float = Field(default=2.0, gt=0, le=60)
    #: When Redis fails after start-up: allow the action (True) or refuse it (False).
    fail_open: bool = True

    #: Sustained messages per second, per principal.
    messages_per_second: float = Field(default=20.0, gt=0, le=1_000_000)
    #: Messages a principal may send at once after a quiet moment.
    message_burst: int = Field(default=60, ge=1, le=1_000_000)
    #: Sustained namespace connects per minute, per client address.
    connects_per_minute: float = Field(default=120.0, gt=0, le=60_000_000)
    #: Connects an address may make at once after a quiet moment.
    connect_burst: int = Field(default=60, ge=1, le=1_000_000)
    #: Sustained new sessions per minute, per principal.
    sessions_per_minute: float = Field(default=30.0, gt=0, le=60_000_000)
    #: New sessions a principal may create at once after a quiet moment.
    session_burst: int = Field(default=30, ge=1, le=1_000_000)

    #: Reverse proxies whose ``X-Forwarded-For`` is believed. Added at start-up to
    #: ``[host] trusted_proxies``, the one list the host keeps for every plugin.
    trusted_proxies: list[str] = Field(default_factory=list)
    #: The memory backend forgets a key once its bucket is full again; beyond
    #: this many keys per action it also forgets the least recently used ones.
    memory_max_keys: int = Field(default=100_000, ge=1)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise PydanticCustomError("ratelimit_proxy", f"{entry!r} is not an IP address or network") from None
        return value

    @model_validator(mode="after")
    def _redis_needs_url(self) -> Self:
        if self.backend == "redis" and self.redis_url is None:
            raise PydanticCustomError("ratelimit_redis", 'backend = "redis" needs redis_url, e.g. "redis://127.0.0.1:6379/0"')
        return self

    def rates(self) -> dict[str, Rate]:
        """The rate of each action the host asks about."""
        return {
            MESSAGE: Rate(self.messages_per_second, self.message_burst),
            CONNECT: Rate.per_minute(self.connects_per_minute, self.connect_burst),
            SESSION: Rate.per_minute(self.sessions_per_minute, self.session_burst),
        }
