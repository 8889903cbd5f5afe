"""tkr-recovery: recovery strategies chosen by error kind.

The built-in ``retry`` and ``circuit_breaker`` strategies guard every store
write the host makes; another plugin adds its own through the
``recovery_strategies`` hook and names it in ``[plugins.recovery] order``.
"""

from __future__ import annotations

import functools

from prometheus_client import Gauge
from pydantic import BaseModel

from tkr_host import HostAPI, RecoveryStrategy, hookimpl
from tkr_recovery.chain import StoreGuard, order_strategies
from tkr_recovery.settings import RecoverySettings
from tkr_recovery.strategies import CircuitBreaker, RetryWithBackoff

PLUGIN_NAME = "recovery"


@hookimpl
def config_model() -> type[BaseModel]:
    return RecoverySettings


@hookimpl
def recovery_strategies(host: HostAPI) -> list[RecoveryStrategy]:
    settings = host.config(PLUGIN_NAME, RecoverySettings)
    return [
        RetryWithBackoff(settings.retry_attempts, settings.retry_base_delay_s, settings.retry_max_delay_s, settings.retry_budget_s),
        CircuitBreaker(settings.breaker_failure_threshold, settings.breaker_reset_s),
    ]


@hookimpl
def host_startup(host: HostAPI) -> None:
    settings = host.config(PLUGIN_NAME, RecoverySettings)
    offered = [strategy for strategies in host.pm.hook.recovery_strategies(host=host) for strategy in strategies or []]
    guard = StoreGuard(order_strategies(offered, settings.order))
    host.extensions[PLUGIN_NAME] = guard
    host.install_store_guard(guard)
    export_breaker_state(host, guard)


#: ``tkr_breaker_state``'s values: alert when it is not 0.
BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}


def export_breaker_state(host: HostAPI, guard: StoreGuard) -> None:
    """Each circuit breaker's state on ``/metrics``, read at every scrape."""
    gauge = Gauge("tkr_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", ["strategy"],
                  registry=host.metrics.registry)
    for strategy in guard.strategies:
        if isinstance(strategy, CircuitBreaker):
            gauge.labels(strategy.name).set_function(functools.partial(_state_of, strategy))


def _state_of(breaker: CircuitBreaker) -> float:
    return BREAKER_STATES[breaker.state]
