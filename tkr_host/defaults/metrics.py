"""Prometheus metrics, kept per host (tests run several hosts in one process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from quart import Quart, Response

from tkr_host.errors import HostError
from tkr_host.hookspecs import hookimpl
from tkr_host.host import Host
from tkr_host.types import Message, Principal, SecurityEvent


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge("tkr_connections", "Open sockets", ["namespace"], registry=self.registry)
        self.connects = Counter("tkr_connects", "Accepted namespace connects", ["namespace"], registry=self.registry)
        self.messages = Counter("tkr_messages_stored", "Messages stored", ["type"], registry=self.registry)
        self.errors = Counter("tkr_errors", "Errors answered to clients", ["code"], registry=self.registry)
        self.security = Counter("tkr_security_events", "Security events", ["kind"], registry=self.registry)
        #: The sockets counted in ``connections``. A connect refused by a later
        #: ``on_connect`` hook (the guard refuses a banned principal there) is
        #: reported to every ``on_disconnect`` observer, these metrics included,
        #: though they never saw it: only a socket counted here is uncounted.
        self.open: set[tuple[str, str]] = set()


def metrics_of(host: Host) -> Metrics:
    metrics: Metrics | None = host.extensions.get("metrics")
    if metrics is None:  # built once: a registry is not cheap to make
        metrics = host.extensions["metrics"] = Metrics()
    return metrics


@hookimpl(trylast=True)
def register_blueprints(host: Host, app: Quart) -> None:
    metrics = metrics_of(host)

    @app.get("/metrics")
    async def export() -> Response:
        return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)


@hookimpl(trylast=True)
def on_connect(host: Host, principal: Principal, sid: str, namespace: str, peer: str) -> None:
    metrics = metrics_of(host)
    metrics.connects.labels(namespace).inc()
    if (namespace, sid) not in metrics.open:
        metrics.open.add((namespace, sid))
        metrics.connections.labels(namespace).inc()


@hookimpl(trylast=True)
def on_disconnect(host: Host, principal: Principal, sid: str, namespace: str, reason: str) -> None:
    metrics = metrics_of(host)
    if (namespace, sid) in metrics.open:
        metrics.open.discard((namespace, sid))
        metrics.connections.labels(namespace).dec()


@hookimpl(trylast=True)
def after_store(host: Host, message: Message) -> None:
    metrics_of(host).messages.labels(message.type).inc()


@hookimpl(trylast=True)
def on_error(host: Host, error: HostError, context: dict[str, Any]) -> None:
    metrics_of(host).errors.labels(error.code).inc()


@hookimpl(trylast=True)
def on_security_event(host: Host, event: SecurityEvent) -> None:
    metrics_of(host).security.labels(event.kind).inc()
