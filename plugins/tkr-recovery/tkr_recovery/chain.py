"""Composing strategies into the host's store guard."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from tkr_host import RecoveryStrategy
from tkr_recovery.strategies import Operation

#: The context of a call that names none: shared, as no strategy writes to it.
NO_CONTEXT: Mapping[str, Any] = MappingProxyType({})


def order_strategies(offered: Sequence[RecoveryStrategy], order: Sequence[str]) -> list[RecoveryStrategy]:
    """The strategies named in ``order``, in that order; an unknown name is an error."""
    by_name = {strategy.name: strategy for strategy in offered}
    missing = [name for name in order if name not in by_name]
    if missing:
        raise ValueError(f"[plugins.recovery] order names unknown strategies: {', '.join(missing)} (known: {', '.join(sorted(by_name))})")
    return [by_name[name] for name in order]


class StoreGuard:
    """Runs a store operation through every strategy that handles store errors, outermost first.

    Every store write of the host passes here, so the chain adds no frame of
    its own: each strategy's inner operation is ``functools.partial`` of the
    next strategy's ``run`` (a call that makes that coroutine, no wrapper
    coroutine around it), the innermost gets the operation itself, and the
    guard returns the outermost ``run``'s coroutine for the host to await. With
    no strategy, it returns the operation's own awaitable.
    """

    def __init__(self, strategies: Sequence[RecoveryStrategy]) -> None:
        self.strategies = [strategy for strategy in strategies if "store" in strategy.handles]
        # Innermost first, as the chain is built from the inside out.
        self._inside_out = tuple(reversed(self.strategies))

    def __call__(self, operation: Operation, context: Mapping[str, Any] | None = None) -> Awaitable[Any]:
        if not self._inside_out:
            return operation()
        if context is None:
            context = NO_CONTEXT
        call = operation
        for strategy in self._inside_out[:-1]:
            call = functools.partial(strategy.run, call, context)
        return self._inside_out[-1].run(call, context)
