"""The strategies on their own, with a clock the test drives."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from tkr_recovery.chain import StoreGuard, order_strategies
from tkr_recovery.strategies import CircuitBreaker, RetryWithBackoff

from tkr_host import HostError, RecoveryStrategy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Flaky:
    """Fails ``failures`` times with ``error``, then answers."""

    def __init__(self, failures: int, error: str = "store.unavailable") -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise HostError(self.error)
        return "stored"


def retry(clock: Clock, attempts: int = 3, budget: float = 10.0) -> RetryWithBackoff:
    return RetryWithBackoff(attempts, 0.1, 1.0, budget, clock=clock, sleep=clock.sleep, rng=random.Random(7))


async def test_retry_recovers_a_failure_that_passes():
    clock = Clock()
    operation = Flaky(2)
    assert await retry(clock).run(operation, {}) == "stored"
    assert operation.calls == 3
    assert len(clock.slept) == 2 and all(0 <= s <= 1.0 for s in clock.slept)


async def test_retry_gives_up_after_its_attempts():
    clock = Clock()
    operation = Flaky(5)
    with pytest.raises(HostError) as error:
        await retry(clock, attempts=3).run(operation, {})
    assert error.value.code == "store.unavailable" and operation.calls == 3


async def test_retry_stays_within_its_time_budget():
    clock = Clock()
    strategy = RetryWithBackoff(10, 1.0, 1.0, 2.5, clock=clock, sleep=clock.sleep, rng=random.Random(1))
    strategy.delay = lambda attempt: 1.0  # type: ignore[method-assign]
    operation = Flaky(100)
    with pytest.raises(HostError):
        await strategy.run(operation, {})
    assert clock.now <= 2.5 and operation.calls == 3


async def test_retry_never_retries_what_cannot_pass():
    clock = Clock()
    operation = Flaky(1, "validation.payload")
    with pytest.raises(HostError):
        await retry(clock).run(operation, {})
    assert operation.calls == 1


def test_backoff_grows_and_is_capped():
    strategy = RetryWithBackoff(10, 0.1, 0.5, 10, rng=random.Random(3))
    samples = [max(strategy.delay(attempt) for _ in range(200)) for attempt in (1, 2, 3, 6)]
    assert samples[0] <= 0.1 < samples[1] <= 0.2 < samples[2] <= 0.4
    assert samples[3] <= 0.5


async def test_breaker_opens_refuses_at_once_then_half_opens_and_closes():
    clock = Clock()
    breaker = CircuitBreaker(threshold=2, reset_s=5, clock=clock)
    failing = Flaky(100)
    for _ in range(2):
        with pytest.raises(HostError):
            await breaker.run(failing, {})
    assert breaker.state == "open"
    calls = failing.calls
    with pytest.raises(HostError) as refused:
        await breaker.run(failing, {})
    assert failing.calls == calls  # refused without calling the store
    wire = refused.value.to_wire()
    assert wire["code"] == "store.unavailable" and wire["recoverable"] is True and wire["retry_after"] == 5.0
    assert wire["details"] == {"breaker": "open"}
    clock.now += 5
    assert breaker.state == "half-open"
    assert await breaker.run(Flaky(0), {}) == "stored"
    assert breaker.state == "closed"


async def test_a_failed_probe_opens_the_breaker_again():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, reset_s=2, clock=clock)
    with pytest.raises(HostError):
        await breaker.run(Flaky(1), {})
    clock.now += 2
    with pytest.raises(HostError):
        await breaker.run(Flaky(1), {})
    assert breaker.state == "open"


async def test_other_errors_do_not_count_against_the_breaker():
    breaker = CircuitBreaker(threshold=1, reset_s=2, clock=Clock())
    with pytest.raises(HostError):
        await breaker.run(Flaky(1, "validation.payload"), {})
    assert breaker.state == "closed"


async def test_the_guard_runs_strategies_outermost_first():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, reset_s=5, clock=clock)
    guard = StoreGuard([breaker, retry(clock, attempts=3)])
    assert await guard(Flaky(2)) == "stored"  # the retry inside absorbed two failures
    assert breaker.state == "closed"
    with pytest.raises(HostError):
        await guard(Flaky(3))
    assert breaker.state == "open"  # one failed operation, after its retries


class Recording:
    """A third-party strategy (README, "A strategy of your own") that notes each run and its context."""

    name = "recording"
    handles = frozenset({"store"})

    def __init__(self) -> None:
        self.runs: list[dict[str, object]] = []

    async def run(self, operation: Callable[[], Awaitable[Any]], context: Mapping[str, Any]) -> Any:
        self.runs.append(dict(context))
        return await operation()


async def test_a_guard_with_no_store_strategy_runs_the_operation_once():
    agent_only = RetryWithBackoff(3, 0.0, 0.0, 1.0, handles=frozenset({"agent"}))
    guard = StoreGuard([agent_only])
    assert guard.strategies == []
    operation = Flaky(0)
    assert await guard(operation) == "stored"
    with pytest.raises(HostError):
        await guard(Flaky(1))  # nothing retries it
    assert operation.calls == 1


async def test_a_guard_of_one_strategy_runs_it():
    clock = Clock()
    guard = StoreGuard([retry(clock, attempts=3)])
    operation = Flaky(2)
    assert await guard(operation) == "stored"
    assert operation.calls == 3


async def test_every_strategy_of_three_runs_on_every_attempt_inside_it():
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, reset_s=5, clock=clock)
    recording = Recording()
    guard = StoreGuard([breaker, retry(clock, attempts=3), recording])
    assert await guard(Flaky(2), {"operation": "append"}) == "stored"
    # Inside the retry, the recording strategy sees each of the three attempts, with the context.
    assert recording.runs == [{"operation": "append"}] * 3
    assert await guard(Flaky(0)) == "stored"
    assert recording.runs[-1] == {}
    with pytest.raises(HostError):
        await guard(Flaky(3))
    assert breaker.state == "open"  # outermost: one failed operation after its retries


def test_order_names_known_strategies_only():
    strategies: list[RecoveryStrategy] = [CircuitBreaker(1, 1), RetryWithBackoff(1, 0, 0, 1)]
    assert [s.name for s in order_strategies(strategies, ["retry"])] == ["retry"]
    with pytest.raises(ValueError, match="unknown strategies: retyr"):
        order_strategies(strategies, ["retyr"])
