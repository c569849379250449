"""Pacing several daemons on one plan: the local limiter first, then the shared timeline.

:class:`SharedGate` is the :class:`~scheduler.providers.http.RequestGate` of a daemon whose
database can share a limiter (PostgreSQL, ``storage.ratebuckets``). A request first passes the
daemon's own :class:`~scheduler.ratelimit.RateLimiter` (dispatch before polls, 429 pauses,
rate headers, the adaptive rate), then takes the next send time from a small batch reserved
on the shared timeline -- about ``batch_s`` seconds' worth at the limiter's current rate, one
``UPDATE ... RETURNING`` per batch -- and waits for it. Daemons on one key thus share one
GCRA: together they never exceed the plan, whatever their number, and a daemon that is idle
takes nothing. A send time left unused for more than ``stale_s`` is dropped rather than used
late (that would be a burst on the shared timeline).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scheduler.errors import RateLimitInfo
from scheduler.providers.http import RequestGate
from scheduler.ratelimit import BURST_S, RateLimiter
from storage import ratebuckets
from storage.engine import Engine
from storage.ratebuckets import Batch

#: Seconds of requests reserved per batch (at 40/s: 4 requests, 10 reservations a second).
BATCH_S = 0.1
#: A reserved send time older than this is dropped.
STALE_S = 0.3  # more than the burst a bucket lends after an idle spell (0.25 s)

Take = Callable[[int, float], Awaitable[Batch]]


class SharedGate:
    """``local`` limiter, then a send time from batches reserved with ``take(n, rate)``."""

    def __init__(
        self,
        local: RateLimiter,
        take: Take,
        *,
        batch_s: float = BATCH_S,
        stale_s: float = STALE_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.local = local
        self._take = take
        self._batch_s = batch_s
        self._stale_s = stale_s
        self._clock = clock
        self._sleep = sleep
        self._slots: deque[float] = deque()
        self._lock = asyncio.Lock()
        self.batches = 0
        self.dropped = 0

    @property
    def current_rate(self) -> float:
        return self.local.current_rate

    async def acquire(self, kind: str) -> None:
        """Wait for the local limiter, then for this request's time on the shared timeline."""
        await self.local.acquire(kind)
        try:
            at = await self._next_slot()
            delay = at - self._clock()
            if delay > 0:
                await self._sleep(delay)
        except BaseException:  # never sent: the local limiter must not count it in flight
            self.local.observe(kind, None, RateLimitInfo())
            raise

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        """The local limiter learns from every answer (429s and headers are global facts)."""
        self.local.observe(kind, status, rate)

    async def _next_slot(self) -> float:
        async with self._lock:  # first come, first served: the local limiter's order
            while True:
                now = self._clock()
                while self._slots and self._slots[0] < now - self._stale_s:
                    self._slots.popleft()
                    self.dropped += 1
                if self._slots:
                    return self._slots.popleft()
                rate = self.local.current_rate
                n = max(1, math.ceil(rate * self._batch_s))
                batch = await self._take(n, rate)
                self.batches += 1
                base = self._clock()
                step = (batch.end - batch.start) / batch.n
                self._slots.extend(base + batch.start + i * step for i in range(batch.n))


def key_fingerprint(api_key: str) -> str:
    """The SHA-256 of the key, hex: what the database may hold instead of the key."""
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def plan_gate(engine: Engine, limiter: RateLimiter, *, provider: str, api_key: str) -> RequestGate:
    """The gate for one daemon's requests on ``(provider, api_key)``: shared with the other
    daemons of the database on PostgreSQL, the local limiter alone on SQLite (single host)."""
    if not ratebuckets.supported(engine):
        return limiter
    fp = key_fingerprint(api_key)
    ratebuckets.ensure_bucket(engine, provider=provider, key_fp=fp)

    # a thread of its own: behind a big outcome batch on the daemon's database thread
    # (scheduler.dbexec), every request of this daemon would wait
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaani-limiter")

    async def take(n: int, rate: float) -> Batch:
        call = functools.partial(
            ratebuckets.take, engine, provider=provider, key_fp=fp, n=n, rate=rate, burst_s=BURST_S
        )
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    return SharedGate(limiter, take)
