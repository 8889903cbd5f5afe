"""tkr-redis: scale-out through python-socketio's AsyncRedisManager.

Every node publishes its emits on one Redis channel and delivers what the
others publish, so a message stored on one node reaches sockets on all of them.
python-socketio delivers an emit to this node's own sockets before it
publishes, and logs a failed publish: when Redis is down, local delivery goes
on, and clients on other nodes catch up by ``seq`` (PROTOCOL.md).

The plugin is off unless ``[plugins.redis] url`` is set, so installing it
changes nothing for a single node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import socketio
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from tkr_host import ClusterState, RoomIndex, hookimpl
from tkr_host import HostAPI as Host
from tkr_redis.cluster import RedisCluster

PLUGIN_NAME = "redis"
READINESS_CLIENT = "redis.readiness_client"
FAILURES = "redis.failures"
log = logging.getLogger("tkr_redis")


class RedisSettings(BaseModel):
    """The ``[plugins.redis]`` table."""

    model_config = ConfigDict(extra="forbid")

    #: ``redis://host:6379/0``; unset: the host stays on its in-process manager.
    url: str | None = Field(default=None, pattern=r"^(redis|rediss|redis\+sentinel)://")
    #: The pub/sub channel; nodes of one deployment share it, deployments do not.
    channel: str = Field(default="tkr-host", min_length=1, max_length=200)
    #: Seconds a node's presence, statuses, streams and agents outlive its last
    #: refresh (every third of this): how long a dead node's entries take to fade.
    presence_ttl_s: float = Field(default=30.0, ge=1.0, le=3600.0)


@hookimpl
def config_model() -> type[BaseModel]:
    return RedisSettings


@hookimpl
def client_manager(host: Host) -> socketio.AsyncManager | None:
    settings = host.config(PLUGIN_NAME, RedisSettings)
    if settings.url is None:
        return None
    return IndexedRedisManager(settings.url, channel=settings.channel, logger=CountingLogger(log, failure_counter(host)))


class IndexedRedisManager(RoomIndex, socketio.AsyncRedisManager):  # type: ignore[misc]  # socketio has no stubs
    """python-socketio's Redis manager, with each local socket's rooms indexed (``RoomIndex``):
    a node that closes many sockets at once leaves their rooms one by one, not
    by walking every room of the namespace per socket."""


@hookimpl
def cluster_state(host: Host, local: ClusterState) -> ClusterState | None:
    settings = host.config(PLUGIN_NAME, RedisSettings)
    if settings.url is None:
        return None
    return RedisCluster(local, settings.url, f"{settings.channel}:cluster", settings.presence_ttl_s, failure_counter(host))


def failure_counter(host: Host) -> Counter:
    """``tkr_redis_failures_total``, made once per host: the manager and the cluster state share it."""
    counter = host.extensions.get(FAILURES)
    if counter is None:
        counter = host.extensions[FAILURES] = Counter(
            "tkr_redis_failures", "Redis operations that failed (a lost publish is a lost cross-node emit)",
            ["operation"], registry=host.metrics.registry)
    return counter


class CountingLogger:
    """The manager's logger: every error it logs is a failed publish or receive.

    python-socketio logs and drops a publish that fails; counting its error
    lines is how ``tkr_redis_failures_total`` sees them without reaching into
    the manager.
    """

    def __init__(self, logger: logging.Logger, failures: Counter) -> None:
        self._logger = logger
        self._failures = failures

    def error(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._failures.labels("publish" if "publish" in message else "receive").inc()
        self._logger.error(message, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)


@hookimpl
def readiness_checks(host: Host) -> dict[str, Callable[[], Awaitable[bool]]] | None:
    settings = host.config(PLUGIN_NAME, RedisSettings)
    if settings.url is None:
        return None
    url = settings.url

    async def redis_answers() -> bool:
        # A node that cannot reach Redis delivers only to its own sockets: the
        # load balancer should send new clients elsewhere. The check has a
        # client of its own, since the manager connects only when it first
        # publishes or listens.
        client = host.extensions.get(READINESS_CLIENT)
        if client is None:
            client = host.extensions[READINESS_CLIENT] = aioredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        return bool(await client.ping())

    return {"redis": redis_answers}


@hookimpl
async def host_shutdown(host: Host) -> None:
    manager = host.client_manager
    if not isinstance(manager, socketio.AsyncRedisManager):
        return
    # The listener runs forever and keeps a Redis connection: stop both.
    listener = getattr(manager, "thread", None)
    if listener is not None:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await listener
    readiness = host.extensions.pop(READINESS_CLIENT, None)
    for client in (manager.pubsub, manager.redis, readiness):
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
