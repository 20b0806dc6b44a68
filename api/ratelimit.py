"""A token bucket per API key, in this process (each API process limits on its own)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self._buckets: dict[object, _Bucket] = {}

    def take(self, key: object) -> float:
        """0 when `key` may go ahead (and takes a token), else the seconds until it may."""
        now = self.clock()
        bucket = self._buckets.setdefault(key, _Bucket(tokens=float(self.burst), updated=now))
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate if self.rate > 0 else 60.0
