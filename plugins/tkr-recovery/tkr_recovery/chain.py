"""Composing strategies into the host's store guard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tkr_host import RecoveryStrategy
from tkr_recovery.strategies import Operation


def order_strategies(offered: Sequence[RecoveryStrategy], order: Sequence[str]) -> list[RecoveryStrategy]:
    """The strategies named in ``order``, in that order; an unknown name is an error."""
    by_name = {strategy.name: strategy for strategy in offered}
    missing = [name for name in order if name not in by_name]
    if missing:
        raise ValueError(f"[plugins.recovery] order names unknown strategies: {', '.join(missing)} (known: {', '.join(sorted(by_name))})")
    return [by_name[name] for name in order]


class StoreGuard:
    """Runs a store operation through every strategy that handles store errors, outermost first."""

    def __init__(self, strategies: Sequence[RecoveryStrategy]) -> None:
        self.strategies = [strategy for strategy in strategies if "store" in strategy.handles]

    async def __call__(self, operation: Operation, context: Mapping[str, Any] | None = None) -> Any:
        context = context or {}
        call = operation
        for strategy in reversed(self.strategies):
            call = _wrap(strategy, call, context)
        return await call()


def _wrap(strategy: RecoveryStrategy, inner: Operation, context: Mapping[str, Any]) -> Operation:
    async def run() -> Any:
        return await strategy.run(inner, context)

    return run
