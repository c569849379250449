"""How many trigger-calls to keep in flight: Little's law on the measured latency and the rate.

A daemon that sends one trigger-call at a time, or a fixed handful, is bound by the API's
latency, not by its plan: with 8 in flight and answers taking 1 s it places 8 calls a second
whatever the plan allows. Little's law says how many must be in flight to keep the limiter
busy: ``in_flight = rate x latency``, where the latency includes what a slot of the
pipeline spends outside the request (up to a dispatch tick before it is refilled).
:class:`Pipeline` keeps an exponentially weighted moving
average of the trigger-call latency (from the gate granting a request to its answer, so that
time spent queued behind the limiter is not counted: counting it would feed back into a
bigger target and a longer queue) and sizes the pipeline at
``rate x (latency + overhead) x margin``,
bounded by ``low..high`` and by the slots the concurrency cap leaves free.

:class:`LatencyGate` is the :class:`~scheduler.providers.http.RequestGate` that takes the
measurements. The gate does not see which answer belongs to which grant; it pairs them first
in, first out, which keeps the mean exact (the sum of answer times minus the sum of grant
times does not depend on the pairing) even when single samples are off.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Mapping

from scheduler.errors import RateLimitInfo
from scheduler.providers.http import RequestGate

#: Weight of a new latency sample in the moving average.
ALPHA = 0.2
#: Head-room over rate x latency: bursts, jitter, and answers slower than the average.
MARGIN = 1.5
#: Bounds of the pipeline (the upper one keeps the connection pool and the claims modest).
LOW = 1
HIGH = 256
#: The latency assumed before the first answer (a fast local API).
INITIAL_LATENCY_S = 0.05


class Pipeline:
    """The trigger-call pipeline's size, from the rate in force and the measured latency."""

    def __init__(
        self,
        rate: Callable[[], float],
        *,
        margin: float = MARGIN,
        low: int = LOW,
        high: int = HIGH,
        alpha: float = ALPHA,
        initial_latency: float = INITIAL_LATENCY_S,
        overhead: float = 0.0,
    ) -> None:
        if not (1 <= low <= high):
            raise ValueError("the pipeline bounds must satisfy 1 <= low <= high")
        if not (0 < alpha <= 1 and margin > 0 and initial_latency >= 0):
            raise ValueError("alpha must be in (0, 1], margin and latency positive")
        self._rate = rate
        self.margin = margin
        self.low = low
        self.high = high
        self.alpha = alpha
        self.latency = initial_latency
        self.samples = 0
        #: seconds a slot of the pipeline spends outside the request: a claim is made once
        #: per dispatch tick, so a settled trigger-call is replaced up to a tick later
        self.overhead = max(0.0, overhead)

    def sample(self, seconds: float) -> None:
        """One trigger-call's latency (from grant to answer)."""
        if not math.isfinite(seconds) or seconds < 0:
            return
        # the first answer replaces the guess: a slow API must not take dozens of samples
        # (each a request at a fraction of the rate) to be believed
        self.latency += (1.0 if self.samples == 0 else self.alpha) * (seconds - self.latency)
        self.samples += 1

    def target(self, free_slots: int | None = None) -> int:
        """Trigger-calls to keep in flight now: ``rate x latency x margin`` rounded up, within
        ``low..high``, and no more than ``free_slots`` (the concurrency cap's room) when
        given (which may make it 0: nothing may be claimed)."""
        want = math.ceil(self._rate() * (self.latency + self.overhead) * self.margin)
        size = max(self.low, min(self.high, want))
        if free_slots is not None:
            size = min(size, max(0, free_slots))
        return size


class LatencyGate:
    """A gate that times the requests passing through it, for the pipeline of their kind
    (``{"dispatch": ..., "poll": ...}``; other kinds are not timed), then defers to ``gate``."""

    def __init__(
        self,
        gate: RequestGate,
        pipelines: Mapping[str, Pipeline],
        *,
        max_in_flight: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gate = gate
        self._pipelines = dict(pipelines)
        self._clock = clock
        self._granted: dict[str, deque[float]] = {kind: deque() for kind in self._pipelines}
        # requests past this gate at once (the connection pool's size): the rest wait here,
        # where a wake-up costs O(1), not in httpcore's pool, which rescans its whole queue
        # of waiting requests whenever a connection frees (CPU growing with the square)
        self._room = asyncio.Semaphore(max_in_flight) if max_in_flight else None

    async def acquire(self, kind: str) -> None:
        """Wait for room, then for the wrapped gate; remember when a timed request was let
        through."""
        if self._room is not None:
            await self._room.acquire()
        try:
            await self._gate.acquire(kind)
        except BaseException:
            if self._room is not None:
                self._room.release()
            raise
        granted = self._granted.get(kind)
        if granted is not None:
            granted.append(self._clock())

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        """Pass the attempt on; an answered timed request is a latency sample."""
        if self._room is not None:
            self._room.release()
        self._gate.observe(kind, status, rate)
        granted = self._granted.get(kind)
        if not granted:
            return
        started = granted.popleft()
        if status is not None:  # a timeout or reset says nothing about the API's latency
            self._pipelines[kind].sample(self._clock() - started)
