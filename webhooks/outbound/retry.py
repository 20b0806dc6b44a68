"""When a failed delivery is tried again: the Standard Webhooks schedule, with jitter.

Attempt 1 is immediate; after each failure the next waits 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
10 h (27 h 35 min in all, so a receiver down for a whole day still gets everything), each
delay scaled by a random factor in [1 - jitter, 1 + jitter] so that the deliveries that failed
together (a receiver's outage) do not all come back in the same second. After the last retry
fails the delivery is dead (it can still be replayed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

STANDARD_DELAYS = (
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), timedelta(hours=10), timedelta(hours=10),
)


@dataclass(frozen=True)
class RetryPolicy:
    delays: tuple[timedelta, ...] = STANDARD_DELAYS
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False)

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay_after(self, attempts: int) -> timedelta | None:
        """How long to wait after `attempts` failed attempts; None: no more (dead)."""
        if attempts < 1 or attempts > len(self.delays):
            return None
        return self.delays[attempts - 1] * self.rng.uniform(1 - self.jitter, 1 + self.jitter)

    def total(self) -> timedelta:
        return sum(self.delays, timedelta())
