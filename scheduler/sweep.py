"""Polling as a slow sweep, for a provider whose outcomes arrive as webhooks (``run --listen``).

When events settle calls as they end, reading the call history on every ``--poll-interval``
would cost requests for nothing: the sweep is only there for the events that never came
(dropped by the provider, or sent while we were down). So a poll reads the API only when
either

* ``every_settled`` calls have been settled by events since the last sweep: throughput-driven,
  so that with a given share of events lost the sweep finds each missed call about as many
  settled calls later (``benchmarks/bench_webhooks.py`` measures cost and delay), or
* ``max_gap`` seconds have passed since the last sweep (a quiet campaign, lost answers to
  reconcile, overdue calls to chase).

The poller asks :meth:`PushSweep.due` at the start of each poll (``OutcomePoller.sweep``); the
inbox reports each settled call with :meth:`PushSweep.settled`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

#: calls settled by events between two sweeps of the history (at most)
DEFAULT_EVERY_SETTLED = 20
#: the sweep's longest gap, as a multiple of ``--poll-interval``
GAP_FACTOR = 10


class SweepGate(Protocol):
    """What the poller asks before reading the API."""

    def due(self) -> bool:
        """Should this poll read the API? (True also restarts the count.)"""
        ...


class PushSweep:
    """The :class:`SweepGate` of one provider with events on (one per daemon)."""

    def __init__(
        self,
        *,
        max_gap: float,
        every_settled: int = DEFAULT_EVERY_SETTLED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not max_gap > 0 or every_settled < 1:
            raise ValueError("the sweep needs a positive gap and count")
        self.max_gap = max_gap
        self.every_settled = every_settled
        self.clock = clock
        self._since = 0
        self._last = -math.inf  # the first poll always sweeps (recovery, lost answers)
        self.sweeps = 0

    def settled(self, n: int = 1) -> None:
        """``n`` calls were just settled by events."""
        self._since += n

    def due(self) -> bool:
        now = self.clock()
        if self._since < self.every_settled and now - self._last < self.max_gap:
            return False
        self._since = 0
        self._last = now
        self.sweeps += 1
        return True
