"""Request windows: "at most N requests in any T seconds", several at once, around a limiter.

Some plans limit a key per minute AND per hour (VaniAgent's Starter plan: 100/min and
1,000/h). :class:`~scheduler.ratelimit.RateLimiter` paces one rate and learns the server's
headers, but those describe one window only, so a steady pace that suits the minute would
spend the hour's budget in ten minutes and then meet a wall of 429s. :class:`WindowedGate`
is a :class:`~scheduler.providers.http.RequestGate` that first takes a slot from every window
and then defers to the wrapped gate (the rate limiter), so both windows and the limiter's pace
hold.

Each window is a sliding log of the grant times of its last N requests: a request may go
when fewer than N went in the trailing T seconds. A token bucket of N per T would let up to
about 2N through in one of the server's fixed windows (a full bucket spent at its end, then
refilled); the log never exceeds N in ANY window of T, whatever the server's alignment.
Waiters are served from one :class:`~scheduler.waitline.WaitLine`, as the rate limiter's
are: dispatch before poll, but a waiting poll gets every third grant; only the head sleeps.

Configuration (``scheduler.runner``): a provider's ``[providers.NAME] rate-limit`` of several
comma-separated rates, ``"100/min,1000/h"``, is a set of windows (the limiter's own ceiling
then stays ``--rate-limit``); a single rate is, as before, the limiter's ceiling and no window.
A provider whose registry spec has ``rate_windows`` gets those when the config names none.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.errors import RateLimitInfo
from scheduler.providers.http import RequestGate
from scheduler.ratelimit import parse_rate
from scheduler.waitline import WaitLine


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` requests in any ``period_s`` seconds."""

    limit: int
    period_s: float

    def __str__(self) -> str:
        return f"{self.limit}/{self.period_s:g}s"


def parse_window(text: str) -> Window:
    """``"100/min"`` -> Window(100, 60.0); the forms of :func:`~scheduler.ratelimit.parse_rate`
    with a whole number of requests. ValueError naming the text otherwise."""
    rate = parse_rate(text)  # validates the form and the unit
    count = float(text.split("/", 1)[0])
    if count < 1 or count != int(count):
        raise ValueError(f"invalid window {text!r}: the number of requests must be a whole number")
    return Window(limit=int(count), period_s=round(count / rate, 6))  # 500/min: 60, not 59.99..


def parse_limits(text: str) -> tuple[float | None, tuple[Window, ...]]:
    """A ``rate-limit`` setting as (the limiter's ceiling in requests per second, windows).

    ``"10/s"`` -> (10.0, ()); ``"100/min,1000/h"`` -> (None, two windows). ValueError naming
    the text when a part is not a rate.
    """
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else [""]
    if len(parts) == 1:
        return parse_rate(parts[0]), ()
    return None, tuple(parse_window(p) for p in parts)


class WindowedGate:
    """A slot in every window, then the wrapped gate's (see the module docstring)."""

    def __init__(
        self,
        gate: RequestGate,
        windows: Sequence[Window],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if not windows:
            raise ValueError("WindowedGate needs at least one window")
        self.gate = gate
        self.windows = tuple(windows)
        self._logs = [deque[float](maxlen=w.limit) for w in self.windows]
        self._clock = clock
        self._sleep = sleep
        self._line = WaitLine()
        self.granted = 0

    def ready_at(self, now: float) -> float:
        """When the next request may go by every window (``now`` when it may go at once)."""
        ready = now
        for window, log in zip(self.windows, self._logs, strict=True):
            if len(log) == window.limit:
                ready = max(ready, log[0] + window.period_s)
        return ready

    def used(self, now: float) -> list[int]:
        """Requests granted in each window's trailing period (for logs and tests)."""
        return [
            sum(1 for t in log if t > now - w.period_s)
            for w, log in zip(self.windows, self._logs, strict=True)
        ]

    async def acquire(self, kind: str) -> None:
        """Wait for a slot in every window, then for the wrapped gate."""

        def grant(now: float) -> None:
            for log in self._logs:
                log.append(now)
            self.granted += 1

        await self._line.take_turn(
            kind, ready_at=self.ready_at, grant=grant, clock=self._clock, sleep=self._sleep
        )
        await self.gate.acquire(kind)

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        """The wrapped gate learns; the windows count grants, not answers."""
        self.gate.observe(kind, status, rate)

    def __repr__(self) -> str:
        shown = ", ".join(str(w) for w in self.windows)
        return f"WindowedGate({shown})"
