"""The built-in strategies. Each wraps an operation; none does I/O of its own.

``clock`` and ``sleep`` are parameters so that the unit tests drive time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from tkr_host import HostError

log = logging.getLogger("tkr_recovery")

Operation = Callable[[], Awaitable[Any]]


def may_pass(error: BaseException, categories: frozenset[str]) -> bool:
    """A HostError of a handled category that says waiting may help."""
    return isinstance(error, HostError) and error.category in categories and error.to_wire()["recoverable"]


class RetryWithBackoff:
    """Retries a failure that may pass, with exponential backoff and full jitter,
    inside an attempt count and a time budget."""

    name = "retry"

    def __init__(self, attempts: int, base_delay_s: float, max_delay_s: float, budget_s: float,
                 handles: frozenset[str] = frozenset({"store"}), clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, rng: random.Random | None = None) -> None:
        self.attempts, self.base_delay_s, self.max_delay_s, self.budget_s = attempts, base_delay_s, max_delay_s, budget_s
        self.handles = handles
        self._clock, self._sleep, self._rng = clock, sleep, rng or random.Random()

    def delay(self, attempt: int) -> float:
        """Full jitter: a random wait up to the capped exponential backoff."""
        return self._rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))

    async def run(self, operation: Operation, context: Mapping[str, Any]) -> Any:
        deadline = self._clock() + self.budget_s
        attempt = 1
        while True:
            try:
                return await operation()
            except HostError as error:
                if not may_pass(error, self.handles) or attempt >= self.attempts:
                    raise
                wait = self.delay(attempt)
                if self._clock() + wait > deadline:
                    raise
                log.warning("%s failed (%s), attempt %d of %d; retrying in %.3f s [request_id=%s]",
                            context.get("operation", "store operation"), error.code, attempt, self.attempts, wait, error.request_id)
                await self._sleep(wait)
                attempt += 1


BreakerState = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """Stops calling a failing store: sends are refused at once instead of piling up.

    Closed: operations run; ``threshold`` consecutive failures open it. Open:
    every operation is refused with ``store.unavailable`` and ``retry_after``
    until ``reset_s`` have passed. Half-open: one probe runs while the others
    are refused; its success closes the breaker, its failure opens it again.
    """

    name = "circuit_breaker"

    def __init__(self, threshold: int, reset_s: float, handles: frozenset[str] = frozenset({"store"}),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold, self.reset_s, self.handles = threshold, reset_s, handles
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self.opened_at >= self.reset_s else "open"

    def _refuse(self) -> HostError:
        assert self.opened_at is not None
        wait = max(0.1, self.reset_s - (self._clock() - self.opened_at))
        return HostError("store.unavailable", message="The message store is unavailable; sends are paused.", retry_after=wait,
                         hint=f"Nothing was lost: keep the message and send it again in {wait:.1f} s with the same client_id.",
                         details={"breaker": self.state})

    async def run(self, operation: Operation, context: Mapping[str, Any]) -> Any:
        state = self.state
        if state == "open" or (state == "half-open" and self._probing):
            raise self._refuse()
        probing = state == "half-open"
        if probing:
            self._probing = True
        try:
            result = await operation()
        except HostError as error:
            if may_pass(error, self.handles):
                self._failed(probing)
            raise
        finally:
            if probing:
                self._probing = False
        self._succeeded(probing)
        return result

    def _failed(self, probing: bool) -> None:
        self.failures += 1
        if probing or self.failures >= self.threshold:
            if self.opened_at is None or probing:
                log.error("store circuit breaker opens after %d failures; sends are refused for %.1f s", self.failures, self.reset_s)
            self.opened_at = self._clock()

    def _succeeded(self, probing: bool) -> None:
        if probing or self.opened_at is not None:
            log.warning("store circuit breaker closes: the store answers again")
        self.failures = 0
        self.opened_at = None
