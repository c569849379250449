"""Per-key rate limiting for the sandbox, with the GCRA (generic cell rate algorithm).

A limit of N requests per period T lets a key send N requests at once and then one every T/N
seconds, which is how most public APIs behave. GCRA keeps one number per key (the theoretical
arrival time, ``tat``), so it costs O(1) per request and no timers.

Each decision carries what a well-behaved server reports in its headers:

* ``X-RateLimit-Limit``: N;
* ``X-RateLimit-Remaining``: how many more requests would be accepted right now;
* ``X-RateLimit-Reset``: whole seconds until the full quota is available again;
* ``Retry-After`` (429 only): whole seconds until the next request would be accepted (>= 1,
  rounded up: HTTP's delta-seconds are integers).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from scheduler.sandbox.config import RateLimit

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one request may proceed, and the figures for the rate-limit headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    retry_after_s: float = 0.0

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The ``X-RateLimit-*`` (and, when refused, ``Retry-After``) response headers."""
        out = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.reset_s - _EPS)).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(max(1, math.ceil(self.retry_after_s - _EPS))).encode()))
        return out


class RateLimiter:
    """GCRA limiter keyed by an opaque string (the sandbox uses the key's fingerprint)."""

    def __init__(self, rate: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._interval = rate.period_s / rate.limit
        self._tolerance = rate.period_s - self._interval
        self._tat: dict[str, float] = {}
        self._clock = clock

    def check(self, key: str) -> Decision:
        """Count one request for ``key`` if it fits; say so either way."""
        now = self._clock()
        tat = max(self._tat.get(key, now), now)
        backlog = tat - now
        if backlog > self._tolerance + _EPS:
            return Decision(
                allowed=False,
                limit=self.rate.limit,
                remaining=0,
                reset_s=backlog,
                retry_after_s=backlog - self._tolerance,
            )
        tat += self._interval
        self._tat[key] = tat
        backlog = tat - now
        remaining = int((self._tolerance - backlog + _EPS) // self._interval) + 1
        return Decision(
            allowed=True, limit=self.rate.limit, remaining=max(0, remaining), reset_s=backlog
        )

    def reset(self) -> None:
        self._tat.clear()
