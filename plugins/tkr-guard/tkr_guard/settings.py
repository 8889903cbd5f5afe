"""``[plugins.guard]``: the plugin's config table.

The key names are a contract (the issue, the README and ``docs/configuration.md``
use them). The defaults ban only what no person or well-behaved program does:
ten failed logins from one address within a minute, or a weighted score of 100
from other suspicious events within a minute.
"""

from __future__ import annotations

import ipaddress
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

#: The plugin's entry-point name: its config table and its key in ``host.extensions``.
PLUGIN_NAME = "guard"


class GuardSettings(BaseModel):
    """When a source is banned, for how long, where bans live, and when idle sockets close."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Failed authentications (Socket.IO connects and HTTP requests) from one
    #: address, or for one principal, within ``window_s`` that ban it.
    ban_after_auth_failures: int = Field(default=10, ge=1, le=1_000_000)
    #: The weighted score of the other events (below) within ``window_s`` that
    #: bans a source.
    ban_after_events: float = Field(default=100.0, gt=0, le=1_000_000)
    #: Score of a refused rate-limited action (a connect or a message).
    rate_limited_weight: float = Field(default=1.0, ge=0, le=1_000_000)
    #: Score of a packet the host could not parse.
    malformed_packet_weight: float = Field(default=10.0, ge=0, le=1_000_000)
    #: Score of a refused namespace, or of a session the principal is not a member of.
    access_denied_weight: float = Field(default=5.0, ge=0, le=1_000_000)
    #: Score of a client event named like a reserved one (``connect``, ``disconnect``…).
    reserved_event_weight: float = Field(default=10.0, ge=0, le=1_000_000)
    #: Seconds a source's counts are kept: the window opens with its first event.
    window_s: float = Field(default=60.0, gt=0, le=86_400)
    #: Seconds a ban lasts.
    ban_s: float = Field(default=300.0, gt=0, le=30 * 86_400)
    #: Addresses or networks never counted nor banned by address (a monitoring
    #: probe, an office NAT). Their principals are still counted.
    exempt: list[str] = Field(default_factory=list)

    #: Close a socket that sent no event for this many seconds, after telling it
    #: ``protocol.idle_timeout``. 0 turns it off. Engine.IO pings do not count as events.
    idle_timeout_s: float = Field(default=0.0, ge=0, le=30 * 86_400)

    #: ``memory``: this process keeps counts and bans. ``redis``: every host that
    #: shares ``redis_url`` and ``key_prefix`` shares them.
    backend: Literal["memory", "redis"] = "memory"
    #: The Redis server of the ``redis`` backend, e.g. ``redis://127.0.0.1:6379/0``.
    redis_url: str | None = Field(default=None, min_length=1)
    #: Prepended to every Redis key and channel; hosts that share it share their bans.
    key_prefix: str = Field(default="tkr:guard:", min_length=1, max_length=200)
    #: Seconds a Redis command may take before it counts as failed. A ban check
    #: that fails lets the connect through (and logs it): Redis trouble must not lock everyone out.
    redis_timeout_s: float = Field(default=2.0, gt=0, le=60)
    #: The memory backend forgets expired counts and bans as it goes; beyond this
    #: many sources it also forgets the oldest ones.
    memory_max_sources: int = Field(default=100_000, ge=1, le=100_000_000)

    @field_validator("exempt")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise PydanticCustomError("guard_exempt", "{entry!r} is not an IP address or network", {"entry": entry}) from None
        return value

    @model_validator(mode="after")
    def _redis_needs_url(self) -> Self:
        if self.backend == "redis" and self.redis_url is None:
            raise PydanticCustomError("guard_redis", 'backend = "redis" needs redis_url, e.g. "redis://127.0.0.1:6379/0"')
        return self

    def weights(self) -> dict[str, float]:
        """The score of each kind of security event other than an auth failure."""
        return {
            "rate_limited": self.rate_limited_weight,
            "malformed_packet": self.malformed_packet_weight,
            "access_denied": self.access_denied_weight,
            "reserved_event": self.reserved_event_weight,
        }
