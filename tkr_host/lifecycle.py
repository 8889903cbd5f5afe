"""Start-up, drain and shutdown of a host."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import cast

from tkr_host._host import Host
from tkr_host.api import MessageType
from tkr_host.errors import HostError
from tkr_host.plugins import call_all, notify
from tkr_host.telemetry import TimedStore
from tkr_host.types import Store

log = logging.getLogger(__name__)


async def startup(host: Host) -> None:
    """Build the store, message types and limiter, then start the plugins."""
    pm = host.pm
    store = pm.hook.message_store(host=host)
    if store is None:
        raise RuntimeError("no plugin provides a message store: install tkr-store-peewee or another store plugin")
    # Every store call is timed into tkr_store_duration_seconds.
    host.store = cast(Store, TimedStore(store, host.metrics.store_duration))
    await store.start()
    try:
        await _start_plugins(host)
    except BaseException:
        # Plugins that did start get to stop; the guard and limiter hold
        # Redis clients and background tasks.
        await notify(pm.hook.host_shutdown, host=host)
        await _cancel_tasks(host)
        await store.close()
        raise
    host.started = True


async def _start_plugins(host: Host) -> None:
    pm = host.pm
    types: dict[str, MessageType] = {}
    # pluggy returns the last-registered plugin's list first; apply in
    # registration order so that a later plugin replaces an earlier type.
    for offered in reversed(pm.hook.register_message_types(host=host)):
        for message_type in offered or []:
            types[message_type.name] = message_type
    host.message_types = types
    host.rate_limiter = pm.hook.rate_limiter(host=host)
    await call_all(pm.hook.host_startup, host=host)
    # The shared view starts last: it may call back into namespaces that need the plugins.
    from tkr_host.namespaces.agents import cluster_handlers

    cluster = pm.hook.cluster_state(host=host, local=host.cluster)
    if cluster is not None:
        host.cluster = cluster
    await host.cluster.start(cluster_handlers(host))
    log.info("tkr-host started with message types %s", ", ".join(sorted(types)) or "none")


async def drain(host: Host) -> None:
    """Stop taking connections, let in-flight acks finish, then close every socket."""
    host.draining = True
    deadline = time.monotonic() + host.settings.host.drain_timeout_s
    # Polling keeps the hot path free of drain bookkeeping.
    while host.dispatcher.inflight and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    if host.dispatcher.inflight:
        log.warning("drain: %d events still in flight after %.1f s", host.dispatcher.inflight, host.settings.host.drain_timeout_s)
    for namespace, sid in list(host.connections):
        await host.disconnect_client(sid, namespace, HostError("protocol.shutting_down"))


async def shutdown(host: Host) -> None:
    """Drain if nobody did, stop the plugins, close the store."""
    if not host.draining:
        await drain(host)
    try:
        await host.cluster.close()  # after the drain: the sockets' departures were written
    except Exception:
        log.exception("closing the cluster state failed")
    await notify(host.pm.hook.host_shutdown, host=host)
    await _cancel_tasks(host)
    await host.sio.shutdown()  # stops Engine.IO's service task
    if host.started:
        await host.store.close()
    host.started = False


async def _cancel_tasks(host: Host) -> None:
    tasks = list(host.tasks)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
