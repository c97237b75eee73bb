"""Token buckets: a per-key request rate with a burst allowance.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; each request takes one.
An empty bucket refuses with the time until the next token, which becomes the caller's ``Retry-After``.
Time is ``time.monotonic`` unless a clock is passed (tests step it by hand instead of sleeping).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True)
class Limit:
    """A rate (requests per second, 0 = unlimited) and a burst (most requests at once)."""

    rate: float
    burst: int

    @classmethod
    def of(cls, rps: float, burst: int) -> Limit:
        """``burst`` 0 means the rate rounded up, so a 0.5 rps key can still make one request."""
        if rps <= 0:
            return cls(0.0, 0)
        return cls(rps, burst if burst > 0 else max(1, math.ceil(rps)))

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0


class TokenBucket:
    """Thread-safe; starts full, so a new (or reloaded) key gets its burst at once."""

    def __init__(self, limit: Limit, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available (nothing taken)."""
        if self.limit.unlimited:
            return 0.0
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._stamp)
            self._stamp = now
            self._tokens = min(float(self.limit.burst), self._tokens + elapsed * self.limit.rate)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.limit.rate
