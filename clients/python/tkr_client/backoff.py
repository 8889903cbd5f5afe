"""Exponential backoff with full jitter, for reconnects and retried sends.

python-socketio's own client waits ``base * factor**n`` plus a fixed ±0.5 s,
so a thousand clients dropped by one restart come back within the same second
and meet the connect rate limit together. Full jitter (AWS Architecture Blog,
"Exponential Backoff And Jitter") draws each delay uniformly from
``[0, min(cap, base * factor**attempt)]``, which spreads them over the window.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """How long to wait before attempt ``n`` (0-based) after a failure.

    :param base: the window of the first attempt, in seconds.
    :param cap: the largest window, in seconds.
    :param factor: how much the window grows per attempt.
    """

    base: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base or self.factor < 1:
            raise ValueError("backoff needs base > 0, cap >= base and factor >= 1")

    def window(self, attempt: int) -> float:
        """The upper end of attempt ``attempt``'s delay."""
        # min() before the power could overflow: factor**attempt grows without bound.
        exponent = min(attempt, 64)
        return min(self.cap, self.base * self.factor**exponent)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """A full-jitter delay for ``attempt``. A host's ``retry_after`` is waited
        out first and the jitter added after it, so the clients it refused
        together do not all come back at the same instant."""
        drawn = self.rng.uniform(0.0, self.window(attempt))
        return retry_after + drawn if retry_after is not None and retry_after > 0 else drawn
