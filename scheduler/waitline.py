"""The line of requests waiting at a gate: dispatch first, but polls are never starved.

Both gates that make requests wait (:class:`~scheduler.ratelimit.RateLimiter` and
:class:`~scheduler.ratelimit_windows.WindowedGate`) serve their waiters from one
:class:`WaitLine`. It has two lanes, first come first served within each:

* ``"dispatch"`` (placing calls) goes first;
* ``"poll"`` (history pages, call details) waits behind it, but while a poll is waiting every
  :data:`POLL_EVERY`-th grant is its.

Strict priority starved the polls for as long as dispatch was rate-bound: with a 1 s API
latency, 300 trigger-calls went out in 7.5 s at 40/s while not one history page was read,
then the rate sat idle while three history pages were read one after the other, and only
then were the 300 details fetched. A campaign's requests are the same whatever their order,
so letting one poll in three through changes none of the work and no pace, only when
outcomes are known: the details of the first calls are fetched while the last are placed,
and the rate is used to the end. Dispatch still gets at least two grants in three, and all
of them when no poll waits.

Only the head of the line sleeps (until the gate may grant); the others wait to be woken.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

#: while polls wait, every POLL_EVERY-th grant goes to the oldest of them
POLL_EVERY = 3


class Waiter:
    """One request waiting at a gate."""

    __slots__ = ("cancelled", "event", "kind")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.event = asyncio.Event()
        self.cancelled = False


class WaitLine:
    """The waiters of one gate, in two lanes (see the module docstring)."""

    def __init__(self, poll_every: int = POLL_EVERY) -> None:
        if poll_every < 1:
            raise ValueError("poll_every must be at least 1")
        self._poll_every = poll_every
        self._dispatch: deque[Waiter] = deque()
        self._poll: deque[Waiter] = deque()
        #: dispatch grants in a row while a poll was waiting
        self._passed = 0

    def join(self, kind: str) -> Waiter:
        """A new waiter at the end of its lane (``"dispatch"``, or any other kind: poll)."""
        waiter = Waiter(kind)
        (self._dispatch if kind == "dispatch" else self._poll).append(waiter)
        return waiter

    def head(self) -> Waiter | None:
        """The waiter to be served next (None when nobody waits)."""
        self._drop_cancelled()
        if self._poll and (not self._dispatch or self._passed >= self._poll_every - 1):
            return self._poll[0]
        if self._dispatch:
            return self._dispatch[0]
        return None

    def served(self, waiter: Waiter) -> None:
        """``waiter``, the head, is granted: it leaves the line."""
        if waiter.kind == "dispatch":
            self._dispatch.popleft()
            self._passed = self._passed + 1 if self._poll else 0
        else:
            self._poll.popleft()
            self._passed = 0

    def cancel(self, waiter: Waiter) -> None:
        """``waiter`` stopped waiting; it is dropped when it reaches the front of its lane."""
        waiter.cancelled = True

    def wake_head(self) -> None:
        """Let the head check the gate (after a grant, a cancel, or a change of pace)."""
        head = self.head()
        if head is not None:
            head.event.set()

    async def take_turn(
        self,
        kind: str,
        *,
        ready_at: Callable[[float], float],
        grant: Callable[[float], None],
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[Any]],
    ) -> None:
        """Join the line, wait to be its head, sleep until ``ready_at(now) <= now``, then call
        ``grant(now)`` (before the next head is woken, so that it sees the gate's new state).
        The one wait loop of both gates."""
        waiter = self.join(kind)
        try:
            while True:
                if self.head() is not waiter:
                    waiter.event.clear()
                    await waiter.event.wait()
                    continue
                now = clock()
                ready = ready_at(now)
                if ready <= now:
                    self.served(waiter)
                    grant(now)
                    return
                await sleep(ready - now)
        except BaseException:
            self.cancel(waiter)
            raise
        finally:
            self.wake_head()

    def __len__(self) -> int:
        return len(self._dispatch) + len(self._poll)

    def _drop_cancelled(self) -> None:
        for lane in (self._dispatch, self._poll):
            while lane and lane[0].cancelled:
                lane.popleft()
