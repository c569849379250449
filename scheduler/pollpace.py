"""When to read the call history next: sooner when slots, not the rate, hold dispatch back.

A fixed poll interval wastes live-call slots when the concurrency cap is the bottleneck: a
call that ended just after a poll keeps its slot until the next one, and with 20 slots and
10 s calls a 2 s interval costs about 10 % of the slot time. Reading the history sooner costs
requests, and requests are the plan's budget, which dispatch needs first. So
:class:`PollPacer` polls sooner only while the concurrency cap, not the rate, holds dispatch
back, and even then spends at most ``share`` of the rate on history pages. In a campaign's
tail (nothing due) it polls sooner too, but only as much as the live calls allow: every poll
loads them all and reads pages for them, and polling every 0.1 s with a thousand live calls
doubled the daemon's CPU per call in ``bench_daemon.py``. ``--poll-interval`` is the longest wait between polls. The
limiter itself still enforces the plan, with dispatch requests first in its queue.
"""

from __future__ import annotations

from collections.abc import Callable

#: The share of the rate that fast polls may spend on history pages.
SHARE = 0.25
#: Never poll more often than this (seconds between the end of a poll and the next).
MIN_WAIT_S = 0.1
#: With dispatch idle, the wait per live call (1,000 live calls: 2 s, 20: the shortest).
PER_LIVE_S = 0.002


class PollPacer:
    """The wait before the next poll, from the last poll and what dispatch is doing."""

    def __init__(
        self,
        longest: float,
        rate: Callable[[], float],
        *,
        share: float = SHARE,
        shortest: float = MIN_WAIT_S,
    ) -> None:
        if not (longest > 0 and 0 < share <= 1 and shortest > 0):
            raise ValueError("poll waits must be positive and the share in (0, 1]")
        self.longest = longest
        self.shortest = min(shortest, longest)
        self.share = share
        self._rate = rate

    def wait(self, *, live: int, pages: int, spare_rate: bool, idle: bool = False) -> float:
        """Seconds until the next poll. ``live``: calls awaiting an outcome; ``pages``:
        history pages the last poll read; ``spare_rate``: dispatch did not use the whole
        rate because the concurrency cap held it back; ``idle``: dispatch had nothing due
        (the campaign's tail): polls come sooner while few calls are live, since a poll's
        CPU grows with them (:data:`PER_LIVE_S` each)."""
        if live == 0 or not (spare_rate or idle):
            return self.longest
        cost = max(1, pages) / (self.share * self._rate())  # seconds of our share per poll
        if not spare_rate:
            cost = max(cost, live * PER_LIVE_S)
        return min(self.longest, max(self.shortest, cost))
