"""The host's Prometheus metrics, one registry per host (tests run several hosts
in one process).

The core records what only it sees: how long each event and each store call
takes, and how many messages it emits. The metrics plugin
(:mod:`tkr_host.defaults.metrics`) adds what hooks tell it and serves
``/metrics``. Plugins put their own metrics on ``host.metrics.registry``, as
``tkr-recovery`` does for its circuit breaker and ``tkr-guard`` for its bans.
docs/operations.md lists every metric and what to alert on.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Event and store latencies: from a cache hit to a database that is struggling.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HostMetrics:
    """Every metric the host itself keeps, on the host's own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.event_duration = Histogram("tkr_event_duration_seconds", "Time to answer a client event, by namespace and event",
                                        ["namespace", "event"], buckets=LATENCY_BUCKETS, registry=registry)
        self.store_duration = Histogram("tkr_store_duration_seconds", "Time of one store call, by operation",
                                        ["operation"], buckets=LATENCY_BUCKETS, registry=registry)
        self.deliveries = Counter("tkr_deliveries", "Messages emitted, one per room they were emitted to (a session or an agent)",
                                  ["namespace"], registry=registry)
        self.stream_chunks = Counter("tkr_stream_chunks", "Streamed reply chunks forwarded to sessions", registry=registry)
        self.connections = Gauge("tkr_connections", "Open sockets", ["namespace"], registry=registry)
        self.connects = Counter("tkr_connects", "Accepted namespace connects", ["namespace"], registry=registry)
        self.messages = Counter("tkr_messages_stored", "Messages stored", ["type"], registry=registry)
        self.errors = Counter("tkr_errors", "Errors answered to clients", ["code"], registry=registry)
        self.security = Counter("tkr_security_events", "Security events", ["kind"], registry=registry)
        self.rate_limited = Counter("tkr_rate_limit_refusals", "Requests refused by a rate limit, by action", ["action"],
                                    registry=registry)
        self.pending_agent_deliveries = Gauge("tkr_pending_agent_deliveries",
                                              "Messages addressed to agents and not acked yet (read from the store at each scrape)",
                                              registry=registry)
        #: The sockets counted in ``connections``. A connect refused by a later
        #: ``on_connect`` hook (the guard refuses a banned principal there) is
        #: reported to every ``on_disconnect`` observer, though it was never
        #: counted: only a socket counted here is uncounted.
        self.open: set[tuple[str, str]] = set()
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, kept: ``labels`` takes a lock and builds a
        key on every call, and the send path asks for the same few children for
        every message. Only for labels of a bounded set (namespaces, known events
        and types), never for a value a client chooses."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found


class TimedStore:
    """The store, with every async method timed into ``tkr_store_duration_seconds``.

    The host installs it around whatever store plugin it got, so every store
    call is measured without the store knowing. Other attributes pass through.
    """

    def __init__(self, store: Any, histogram: Histogram) -> None:
        self._store = store
        self._histogram = histogram

    @property
    def wrapped(self) -> Any:
        return self._store

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute
        timed = _timed(attribute, self._histogram.labels(name))
        setattr(self, name, timed)  # built once per method
        return timed


def _timed(method: Callable[..., Any], child: Any) -> Callable[..., Any]:
    @functools.wraps(method)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            child.observe(time.perf_counter() - start)

    return timed
