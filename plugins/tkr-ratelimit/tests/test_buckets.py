"""GCRA on its own, with a fake clock: bursts, the sustained rate, exact waits, and a table that forgets idle keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tkr_ratelimit.buckets import MICROS, BucketTable, Rate, gcra, to_seconds


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def table(per_second: float = 10, burst: int = 5, max_keys: int = 100_000) -> tuple[BucketTable, FakeClock]:
    clock = FakeClock()
    return BucketTable(Rate(per_second, burst), clock, max_keys), clock


def test_a_full_bucket_allows_a_burst_then_refuses_with_one_interval_to_wait() -> None:
    limits, _ = table(per_second=10, burst=5)
    assert [limits.hit("alice") for _ in range(5)] == [None] * 5
    assert limits.hit("alice") == 0.1


def test_a_refusal_changes_nothing_so_retrying_early_does_not_push_the_wait_back() -> None:
    limits, clock = table(per_second=10, burst=1)
    assert limits.hit("alice") is None
    assert [limits.hit("alice") for _ in range(10)] == [0.1] * 10
    clock.advance(0.04)
    assert limits.hit("alice") == 0.06


def test_waiting_the_retry_after_is_exactly_enough() -> None:
    limits, clock = table(per_second=3, burst=2)
    limits.hit("alice")
    limits.hit("alice")
    wait = limits.hit("alice")
    assert wait is not None
    clock.advance(wait)
    assert limits.hit("alice") is None


def test_the_sustained_rate_is_one_action_per_interval() -> None:
    limits, clock = table(per_second=10, burst=3)
    for _ in range(3):
        limits.hit("alice")
    allowed = 0
    for _ in range(100):  # ten seconds in steps of 0.1 s
        clock.advance(0.1)
        allowed += limits.hit("alice") is None
        assert limits.hit("alice") is not None  # never two in one interval once the burst is spent
    assert allowed == 100


def test_a_quiet_key_gets_its_whole_burst_back() -> None:
    limits, clock = table(per_second=10, burst=4)
    for _ in range(4):
        limits.hit("alice")
    clock.advance(0.4)
    assert [limits.hit("alice") for _ in range(5)] == [None, None, None, None, 0.1]


def test_keys_have_buckets_of_their_own() -> None:
    limits, _ = table(per_second=1, burst=1)
    assert limits.hit("alice") is None
    assert limits.hit("alice") is not None
    assert limits.hit("bob") is None


def test_per_minute_rates() -> None:
    rate = Rate.per_minute(30, burst=2)
    assert (rate.interval_us, rate.window_us) == (2 * MICROS, 4 * MICROS)
    limits = BucketTable(rate, FakeClock())
    assert [limits.hit("10.0.0.1") for _ in range(3)] == [None, None, 2.0]


def test_a_key_is_forgotten_once_its_bucket_is_full_again() -> None:
    limits, clock = table(per_second=10, burst=5)
    limits.hit("alice")
    limits.hit("bob")
    clock.advance(0.05)
    limits.hit("carol")
    assert len(limits) == 3
    clock.advance(0.05)  # alice's and bob's buckets are full again; carol's is not
    limits.hit("dave")
    assert ("alice" in limits, "bob" in limits, "carol" in limits, "dave" in limits) == (False, False, True, True)


def test_many_keys_over_time_take_only_the_memory_of_the_recent_ones() -> None:
    limits, clock = table(per_second=2, burst=2)  # a key matters for 1 s after its last action
    for n in range(10_000):
        limits.hit(f"10.0.{n // 256}.{n % 256}")
        clock.advance(0.01)
        assert len(limits) <= 101


def test_max_keys_drops_the_least_recently_allowed_key() -> None:
    limits, _ = table(per_second=1, burst=1, max_keys=2)
    limits.hit("alice")
    limits.hit("bob")
    limits.hit("carol")
    assert ("alice" in limits, "bob" in limits, "carol" in limits) == (False, True, True)
    assert limits.hit("alice") is None  # a dropped key starts with a full bucket


@pytest.mark.parametrize(("per_second", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_rate_must_be_positive(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError):
        Rate(per_second, burst)


def test_waits_round_up_to_the_millisecond() -> None:
    assert (to_seconds(1), to_seconds(1000), to_seconds(1001), to_seconds(2_500_000)) == (0.001, 0.001, 0.002, 2.5)


@settings(max_examples=200, deadline=None)
@given(
    per_second=st.sampled_from([0.5, 1, 3, 20, 1000]),
    burst=st.integers(1, 50),
    gaps=st.lists(st.integers(0, 3 * MICROS), min_size=1, max_size=200),
)
def test_no_window_ever_allows_more_than_the_burst_plus_the_rate(per_second: float, burst: int, gaps: list[int]) -> None:
    rate = Rate(per_second, burst)
    tat: int | None = None
    now = 10 * MICROS
    allowed: list[int] = []
    for gap in gaps:
        now += gap
        decision = gcra(rate, tat, now)
        tat = decision.tat_us
        if decision.allowed:
            allowed.append(now)
        else:
            # The wait told is exact: at that moment the next action is allowed, not a microsecond before.
            assert not gcra(rate, tat, now + decision.retry_after_us - 1).allowed
            assert gcra(rate, tat, now + decision.retry_after_us).allowed
    for i, start in enumerate(allowed):
        for j in range(i, len(allowed)):
            span = allowed[j] - start
            assert j - i + 1 <= burst + span // rate.interval_us


def test_evict_reports_how_many_keys_it_forgot() -> None:
    limits, clock = table(per_second=10, burst=1)
    for key in ("a", "b", "c"):
        assert limits.hit(key) is None
    assert limits.evict(limits.now_us()) == 0  # every bucket is still filling
    clock.advance(1)
    assert limits.evict(limits.now_us()) == 3
    assert len(limits) == 0


def test_max_keys_is_at_least_one_and_defaults_to_the_documented_100000() -> None:
    # docs/configuration.md: memory_max_keys "integer ≥ 1", default 100000.
    rate = Rate(10, 1)
    assert BucketTable(rate).max_keys == 100_000
    one = BucketTable(rate, FakeClock(), max_keys=1)
    assert one.hit("a") is None and one.hit("b") is None and len(one) == 1 and "b" in one
    with pytest.raises(ValueError, match="max_keys"):
        BucketTable(rate, FakeClock(), max_keys=0)


def test_an_allowed_action_has_nothing_to_wait() -> None:
    decision = gcra(Rate(10, 5), None, 1_000 * MICROS)
    assert decision.allowed and decision.retry_after_us == 0


def test_the_interval_is_never_below_one_microsecond() -> None:
    assert Rate(2 * MICROS, 1).interval_us == 1
    assert Rate(MICROS, 1).interval_us == 1
    assert Rate(MICROS / 2, 1).interval_us == 2


def test_a_rate_and_a_decision_cannot_be_changed_after_the_fact() -> None:
    # Shared by every key of a table and between the backends: a change would move them all.
    import dataclasses

    rate, decision = Rate(10, 5), gcra(Rate(10, 5), None, MICROS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rate.burst = 6  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.allowed = False  # type: ignore[misc]
