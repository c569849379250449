"""One rate limiter per (provider, API key), shared by dispatch and polling, that learns the
server's limit. :class:`LimiterRegistry` hands out that one limiter per pair.

:class:`RateLimiter` implements the client's :class:`~scheduler.providers.http.RequestGate`:
``await acquire(kind)`` before every HTTP attempt, ``observe(kind, status, rate)`` after it.

How it paces (all in one place, so concurrent requests never stampede):

* **GCRA** (a token bucket kept as one number, the theoretical arrival time) at
  :attr:`~RateLimiter.current_rate` with a small burst: a quarter of a second's worth of
  requests (at least one). Small, because the server's own tolerance is what absorbs network
  jitter between our clock and its clock; spending it on our bursts invites 429s, while a
  quarter second still lets a pool of workers start at once.
* **Priority**: waiters queue in one line (:class:`~scheduler.waitline.WaitLine`),
  ``"dispatch"`` before ``"poll"``, first come first served within each, except that while a
  poll waits every third grant is its (polls are never starved). Only the head of the line
  sleeps; the others wait to be woken.
* **429**: pauses the whole limiter until ``Retry-After`` (capped), or for a jittered
  exponential backoff when the server gives none, and restarts at the steady pace, not with a
  burst.
* **Headers**: ``X-RateLimit-Limit`` is adopted as the rate (the period estimated as the longest
  ``X-RateLimit-Reset`` seen, at least one second: a reset never exceeds the period);
  ``X-RateLimit-Remaining`` (less our requests still in flight) paces the next request when it
  runs out.
* **Adaptive**: a 429 cuts the rate by :data:`DECREASE_FACTOR`, or, when we were busy, down
  to the rate the server accepted over the last second if that is lower (but never below a
  quarter at once), so a rate configured far too high takes a cut or two, not a dozen. One cut
  per episode: the other requests in flight when it arrived were sent at the old pace and say
  nothing new. A 429 whose headers show budget left (``X-RateLimit-Remaining`` > 0) is not
  about our pace and cuts nothing. Each calm second with successes adds
  :data:`INCREASE_STEP` (2%) of the rate, or :data:`ADDITIVE_SHARE` of the configured rate when
  that is more, so a rate cut very low (by 429s that were not about pace) recovers in
  seconds. Never above the configured rate (the ceiling), never below
  :data:`FLOOR_SHARE` of it (nor :data:`MIN_RATE`). In simulation against a hidden GCRA limit this holds 94-100% of the limit
  with under 1.5% 429s (tests/test_ratelimit.py); a ``Retry-After`` longer than the pause cap
  is the client's to refuse (it raises :class:`~scheduler.errors.RateLimitedError`).

The clock, the sleep and the random source are injectable for deterministic tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any

from scheduler.errors import RateLimitInfo
from scheduler.waitline import WaitLine

#: Multiplicative decrease on a 429 (0.8: the saw-tooth averages ~90% of the real limit).
DECREASE_FACTOR = 0.8
#: Increase per second's worth of successes, as a share of the current rate.
INCREASE_STEP = 0.02
#: the smallest additive increase, as a share of the configured rate
ADDITIVE_SHARE = 0.0025
#: the adaptive rate never drops below this share of the configured rate (429s that are not
#: about our pace, e.g. a flaky gateway, must not starve the campaign); a server limit lower
#: still is honoured by the 429 pauses themselves
FLOOR_SHARE = 0.02
#: The window over which the accepted rate is measured, seconds.
MEASURE_S = 1.0
#: A 429 never cuts the rate below this share of it at once.
DEEPEST_CUT = 0.25
#: The rate never drops below this (requests per second).
MIN_RATE = 0.05
#: Burst, in seconds' worth of requests at the current rate (and at least one request).
BURST_S = 0.25
#: Longest pause a single 429 can impose on the limiter (the client refuses longer waits).
MAX_PAUSE_S = 120.0
#: Backoff bounds when a 429 carries no Retry-After.
BACKOFF_MAX_S = 30.0
BACKOFF_MIN_S = 0.05

_RATE = re.compile(
    r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hr|hour)s?\s*", re.IGNORECASE
)
_PERIOD = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_PERIOD |= {"h": 3600.0, "hr": 3600.0, "hour": 3600.0}


def parse_rate(text: str) -> float:
    """``"10/s"`` -> 10.0, ``"600/min"`` -> 10.0, ``"2.5/s"`` -> 2.5 (requests per second).

    Also ``/sec``, ``/second``, ``/m``, ``/minute``, ``/h``, ``/hour``. Raises ValueError
    naming the text and the accepted forms otherwise (a bare number is refused: per what?).
    """
    m = _RATE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(
            f"invalid rate {text!r}: expected requests per second or per minute, "
            "e.g. '10/s', '2.5/s' or '600/min'"
        )
    rate = float(m.group(1)) / _PERIOD[m.group(2).lower()]
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"invalid rate {text!r}: it must be more than zero")
    return rate


class RateLimiter:
    """Paces every request of one API key; see the module docstring for how.

    ``rate`` is the configured rate in requests per second (the ceiling); ``burst`` defaults to
    a quarter second's worth. ``adaptive=False`` keeps the rate fixed (429 pauses and header
    pacing still apply).
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
        max_pause_s: float = MAX_PAUSE_S,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of requests per second: {rate}")
        self.ceiling = float(rate)
        self._rate = float(rate)
        self._fixed_burst = burst
        self._adaptive = adaptive
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._max_pause_s = max_pause_s
        self._tat = -math.inf  # GCRA theoretical arrival time
        self._paused_until = -math.inf
        self._not_before = -math.inf  # from X-RateLimit-Remaining running out
        self._line = WaitLine()
        self._inflight = 0
        self._granted_at: deque[float] = deque()  # grant times of requests in flight, FIFO
        # what the server told us
        self._header_limit: int | None = None
        self._period_s = 1.0
        self._cap = self.ceiling  # min(ceiling, header rate)
        # AIMD bookkeeping
        self._successes = 0
        self._recent: deque[tuple[float, bool]] = deque()  # recent answers: (when, accepted)
        self._first_grant = math.inf
        self._last_increase = -math.inf
        self._backoffs = 0  # consecutive 429 episodes without a success between
        self._calm_after = -math.inf  # no new decrease before this instant
        self._stats: Counter[str] = Counter()
        self._waited_s = 0.0

    # -- public state -------------------------------------------------------------------------

    @property
    def current_rate(self) -> float:
        """The rate in force now, requests per second (<= the configured ceiling)."""
        return self._rate

    @property
    def burst(self) -> float:
        """How many requests may go back to back after an idle spell."""
        if self._fixed_burst is not None:
            return max(1.0, self._fixed_burst)
        return float(max(1, math.floor(self._rate * BURST_S + 1e-9)))

    @property
    def paused_until(self) -> float | None:
        """Clock time until which a 429 paused the limiter, or None when not paused."""
        return self._paused_until if self._paused_until > self._clock() else None

    def stats(self) -> dict[str, Any]:
        """Counters for logs and benchmarks (all plain numbers)."""
        return {
            "rate": round(self._rate, 3),
            "ceiling": self.ceiling,
            "header_limit": self._header_limit,
            "period_s": self._period_s,
            "granted": self._stats["granted"],
            "granted_dispatch": self._stats["granted_dispatch"],
            "granted_poll": self._stats["granted_poll"],
            "observed": self._stats["observed"],
            "rate_limited": self._stats["rate_limited"],
            "pauses": self._stats["pauses"],
            "decreases": self._stats["decreases"],
            "increases": self._stats["increases"],
            "waiting": len(self._line),
            "inflight": self._inflight,
            "waited_s": round(self._waited_s, 3),
        }

    # -- the gate -----------------------------------------------------------------------------

    async def acquire(self, kind: str) -> None:
        """Wait until a request of ``kind`` ("dispatch" or "poll") may be sent."""
        started = self._clock()

        def grant(now: float) -> None:
            self._grant(now, kind)
            self._waited_s += now - started

        await self._line.take_turn(
            kind, ready_at=self._ready_at, grant=grant, clock=self._clock, sleep=self._sleep
        )

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        """Learn from one finished attempt: its status (None: no answer) and rate headers."""
        now = self._clock()
        self._inflight = max(0, self._inflight - 1)
        self._stats["observed"] += 1
        started = self._granted_at.popleft() if self._granted_at else now
        self._learn_headers(now, rate, latency=now - started)
        if status == 429:
            # a 429 whose headers say budget is left is not about our pace (a quota of some
            # other kind, an overloaded server): pause as asked, but do not slow down for it
            self._on_429(now, rate.retry_after_s, slow_down=not (rate.remaining or 0) > 0)
        elif status is not None and status < 500:
            self._on_success(now)
        elif status is not None and rate.retry_after_s is not None:  # 503 asking to wait
            self._pause(now, rate.retry_after_s)
        self._line.wake_head()

    # -- internals ----------------------------------------------------------------------------

    def _ready_at(self, now: float) -> float:
        interval = 1.0 / self._rate
        tolerance = (self.burst - 1.0) * interval
        return max(now, self._paused_until, self._not_before, self._tat - tolerance)

    def _grant(self, now: float, kind: str) -> None:
        self._first_grant = min(self._first_grant, now)
        self._tat = max(self._tat, now) + 1.0 / self._rate
        self._inflight += 1
        self._granted_at.append(now)
        self._stats["granted"] += 1
        self._stats["granted_dispatch" if kind == "dispatch" else "granted_poll"] += 1

    def _set_rate(self, rate: float) -> None:
        floor = max(MIN_RATE, self.ceiling * FLOOR_SHARE)
        self._rate = min(self._cap, max(floor, rate))

    def _pause(self, now: float, seconds: float) -> None:
        until = now + min(max(seconds, 0.0), self._max_pause_s)
        if until > self._paused_until:
            self._paused_until = until
            self._stats["pauses"] += 1
        # resume at the steady pace, not with a burst
        tolerance = (self.burst - 1.0) * (1.0 / self._rate)
        self._tat = max(self._tat, self._paused_until + tolerance)

    def _on_429(self, now: float, retry_after_s: float | None, *, slow_down: bool) -> None:
        self._stats["rate_limited"] += 1
        self._successes = 0
        self._remember(now, accepted=False)
        new_episode = now >= self._calm_after
        if new_episode:
            self._backoffs += 1
            if self._adaptive and slow_down:
                self._set_rate(self._cut(now))
                self._stats["decreases"] += 1
        if retry_after_s is not None:
            pause = retry_after_s
        else:
            base = max(BACKOFF_MIN_S, 2.0 / self._rate)
            pause = min(BACKOFF_MAX_S, base * 2.0 ** (self._backoffs - 1))
            pause *= 0.5 + 0.5 * self._rng.random()
        self._pause(now, pause)
        if new_episode:
            # requests already in flight were sent at the old pace: their 429s are not news
            self._calm_after = self._paused_until + max(0.1, 2.0 / self._rate)

    def _cut(self, now: float) -> float:
        """The rate after a 429: DECREASE_FACTOR lower, or down to what the server accepted
        over the last second when we were busy and that is lower (a configured rate far too
        high then takes one or two cuts, not a dozen), but never below DEEPEST_CUT of it."""
        span = min(MEASURE_S, now - self._first_grant)
        measured = math.inf
        if len(self._recent) >= 5 and span > 0:  # busy enough for the count to mean something
            measured = sum(1 for _, ok in self._recent if ok) / span
        cut = min(self._rate * DECREASE_FACTOR, measured)
        return max(cut, self._rate * DEEPEST_CUT)

    def _remember(self, now: float, *, accepted: bool) -> None:
        self._recent.append((now, accepted))
        while self._recent[0][0] < now - MEASURE_S:
            self._recent.popleft()

    def _on_success(self, now: float) -> None:
        self._backoffs = 0
        self._remember(now, accepted=True)
        if not self._adaptive or self._rate >= self._cap:
            return
        self._successes += 1
        # about once a second of calm: a step proportional to the rate, but at least a small
        # share of the ceiling, so a rate cut very low climbs back in seconds, not hours
        if now - self._last_increase >= 1.0 and (self._successes >= 5 or self._rate < 5.0):
            self._successes = 0
            self._last_increase = now
            step = max(self._rate * INCREASE_STEP, self.ceiling * ADDITIVE_SHARE)
            self._set_rate(self._rate + step)
            self._stats["increases"] += 1

    def _learn_headers(self, now: float, rate: RateLimitInfo, *, latency: float = 0.0) -> None:
        if rate.reset_s is not None and rate.reset_s > self._period_s:
            self._period_s = rate.reset_s
            self._adopt_limit()
        if rate.limit is not None and rate.limit > 0 and rate.limit != self._header_limit:
            self._header_limit = rate.limit
            self._adopt_limit(jump=True)
        if rate.remaining is not None:
            # requests we sent since may not be counted yet: assume they all will be; the
            # server refilled meanwhile: count half the latency (it decided on the way)
            left = rate.remaining - self._inflight + math.floor(self._cap * latency / 2)
            if left <= 0:
                # out of budget: let the server refill one request's worth per request owed
                # (a server that resets in fixed windows answers the next one with a 429,
                # whose Retry-After then pauses us until the reset)
                wait = (1 - left) / self._cap
                self._not_before = max(self._not_before, now + wait)

    def _adopt_limit(self, *, jump: bool = False) -> None:
        if self._header_limit is None:
            return
        self._cap = min(self.ceiling, max(MIN_RATE, self._header_limit / self._period_s))
        if jump or self._rate > self._cap:
            self._rate = self._cap


class LimiterRegistry:
    """Hands out one :class:`RateLimiter` per (provider name, API key).

    A provider's plan limits each key, so two campaigns on one key share a limiter and two
    keys (or the same key string at two providers) do not. The key itself is never kept: the
    registry indexes by its SHA-256 digest, and neither the registry nor its limiters show a
    key in an attribute or repr. ``factory`` builds a limiter for a new pair (tests pass
    one with a fake clock).
    """

    def __init__(self, factory: Callable[[float], RateLimiter] = RateLimiter) -> None:
        self._factory = factory
        self._limiters: dict[tuple[str, str], RateLimiter] = {}

    @staticmethod
    def _index(provider: str, api_key: str) -> tuple[str, str]:
        return provider, hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, provider: str, api_key: str, *, rate: float) -> RateLimiter:
        """The limiter of ``(provider, api_key)``, built at ``rate`` requests per second the
        first time (a later ``rate`` for the same pair is ignored: the first one set it)."""
        index = self._index(provider, api_key)
        limiter = self._limiters.get(index)
        if limiter is None:
            limiter = self._limiters[index] = self._factory(rate)
        return limiter

    def providers(self) -> dict[str, int]:
        """How many keys have a limiter, per provider (for logs)."""
        counts: Counter[str] = Counter(provider for provider, _ in self._limiters)
        return dict(counts)

    def __len__(self) -> int:
        return len(self._limiters)

    def __repr__(self) -> str:
        return f"LimiterRegistry({len(self._limiters)} limiters)"
