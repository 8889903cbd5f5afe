"""``/metrics`` and the metrics that hooks tell of (docs/operations.md, Metrics).

The metrics live on ``host.metrics`` (:mod:`tkr_host.telemetry`); this plugin
counts what the hooks report and serves them. ``/metrics`` is not for everyone
(PROTOCOL.md 1.1): it answers the loopback and the trusted proxies, or a request
with ``Authorization: Bearer <[host] metrics_token>``; anyone else gets the same
404 as a route that does not exist.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart import Quart, Response, abort, request

from tkr_host._host import Host
from tkr_host.errors import HostError
from tkr_host.handshake import bearer_token, is_trusted_proxy, peer_address
from tkr_host.hookspecs import hookimpl
from tkr_host.types import Message, Principal, SecurityEvent

log = logging.getLogger(__name__)


def may_scrape(host: Host, scope: Any, headers: dict[str, str]) -> bool:
    settings = host.settings.host
    token = bearer_token(headers)
    if settings.metrics_token is not None and token is not None:
        return hmac.compare_digest(token.encode(), settings.metrics_token.encode())
    # The client as the host sees it: behind a trusted proxy, the address it
    # forwarded for, so that the proxy does not open /metrics to the world.
    client = peer_address(scope, headers, settings.trusted_proxies)
    try:
        if ipaddress.ip_address(client).is_loopback:
            return True
    except ValueError:
        return False
    return is_trusted_proxy(client, settings.trusted_proxies)


@hookimpl(trylast=True)
def register_blueprints(host: Host, app: Quart) -> None:
    metrics = host.metrics

    @app.get("/metrics")
    async def export() -> Response:
        headers = {key.lower(): value for key, value in request.headers.items()}
        if not may_scrape(host, request.scope, headers):
            abort(404)
        try:
            metrics.pending_agent_deliveries.set(await host.store.count_pending_deliveries())
        except Exception as exc:  # the scrape still answers; the gauge keeps its last value
            log.warning("metrics: counting pending agent deliveries failed: %s", exc)
        return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)


@hookimpl(trylast=True)
def on_connect(host: Host, principal: Principal, sid: str, namespace: str, peer: str) -> None:
    metrics = host.metrics
    metrics.connects.labels(namespace).inc()
    if (namespace, sid) not in metrics.open:
        metrics.open.add((namespace, sid))
        metrics.connections.labels(namespace).inc()


@hookimpl(trylast=True)
def on_disconnect(host: Host, principal: Principal, sid: str, namespace: str, reason: str) -> None:
    metrics = host.metrics
    if (namespace, sid) in metrics.open:
        metrics.open.discard((namespace, sid))
        metrics.connections.labels(namespace).dec()


@hookimpl(trylast=True)
def after_store(host: Host, message: Message) -> None:
    host.metrics.child(host.metrics.messages, message.type).inc()  # types are the plugins', a bounded set


@hookimpl(trylast=True)
def on_error(host: Host, error: HostError, context: dict[str, Any]) -> None:
    host.metrics.errors.labels(error.code).inc()


@hookimpl(trylast=True)
def on_security_event(host: Host, event: SecurityEvent) -> None:
    host.metrics.security.labels(event.kind).inc()
    if event.kind == "rate_limited":
        host.metrics.rate_limited.labels(event.detail or "unknown").inc()
