"""The algorithm: GCRA (the generic cell rate algorithm), with no I/O.

GCRA is a token bucket that keeps one number per key instead of two: the
*theoretical arrival time* (TAT), the moment the bucket will be full again. An
action at ``now`` is allowed when, after adding one emission interval to the TAT,
the bucket would not hold more than ``burst`` intervals of debt. A refused action
changes nothing, and the wait it is told is exact: the moment the next action
would be allowed.

Times are whole microseconds, so the arithmetic is exact and the same as in the
Redis backend's Lua script (:mod:`tkr_ratelimit.backends`), which runs this very
function on the server's clock.

A key whose TAT has passed holds a full bucket, exactly as a key never seen: it
can be forgotten. :class:`BucketTable` relies on that to stay small.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: A clock in seconds; ``time.monotonic`` in production, a fake one in tests.
Clock = Callable[[], float]

MICROS = 1_000_000


@dataclass(frozen=True)
class Rate:
    """``per_second`` actions a second sustained, ``burst`` at once from a full bucket."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not self.per_second > 0:
            raise ValueError(f"per_second must be above 0, not {self.per_second}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, not {self.burst}")

    @classmethod
    def per_minute(cls, count: float, burst: int) -> Rate:
        return cls(count / 60, burst)

    @property
    def interval_us(self) -> int:
        """Microseconds between two actions at the sustained rate (the emission interval)."""
        return max(1, round(MICROS / self.per_second))

    @property
    def window_us(self) -> int:
        """Microseconds an empty bucket takes to fill: how long a key's state matters."""
        return self.burst * self.interval_us


@dataclass(frozen=True)
class Decision:
    """What :func:`gcra` decided, and the TAT to keep for the key."""

    allowed: bool
    tat_us: int
    #: Microseconds until the next action would be allowed; 0 when allowed.
    retry_after_us: int


def gcra(rate: Rate, tat_us: int | None, now_us: int) -> Decision:
    """Decide one action of a key whose TAT is ``tat_us`` (None: never seen)."""
    start = now_us if tat_us is None or tat_us < now_us else tat_us
    new_tat = start + rate.interval_us
    allow_at = new_tat - rate.window_us
    if now_us < allow_at:
        return Decision(False, start, allow_at - now_us)
    return Decision(True, new_tat, 0)


def to_seconds(micros: int) -> float:
    """A wait in microseconds as seconds for ``retry_after``, rounded up to the millisecond."""
    return math.ceil(micros / 1000) / 1000


class BucketTable:
    """The TATs of many keys under one rate, in memory.

    Keys are kept in the order of their last allowed action. A key allowed at
    ``t`` has a TAT of at most ``t + window``, so once the oldest key's TAT has
    passed it is dropped, and the next is looked at: every key left was allowed
    within the last window. Only keys active in the last ``rate.window_us`` take
    memory, and ``max_keys`` caps even that (the least recently allowed key is
    dropped first, which gives it a full bucket).
    """

    def __init__(self, rate: Rate, clock: Clock = time.monotonic, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.rate = rate
        self.clock = clock
        self.max_keys = max_keys
        self._tats: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tats)

    def __contains__(self, key: object) -> bool:
        return key in self._tats

    def now_us(self) -> int:
        return round(self.clock() * MICROS)

    def hit(self, key: str) -> float | None:
        """One action of ``key`` now: None when allowed, else the seconds to wait."""
        now = self.now_us()
        self.evict(now)
        decision = gcra(self.rate, self._tats.get(key), now)
        if not decision.allowed:
            return to_seconds(decision.retry_after_us)
        self._tats[key] = decision.tat_us
        self._tats.move_to_end(key)
        while len(self._tats) > self.max_keys:
            self._tats.popitem(last=False)
        return None

    def evict(self, now_us: int) -> int:
        """Forget keys whose buckets are full again, oldest first; return how many."""
        dropped = 0
        while self._tats:
            key, tat = next(iter(self._tats.items()))
            if tat > now_us:
                break
            del self._tats[key]
            dropped += 1
        return dropped
