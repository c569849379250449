"""Details fetches that outlive a poll, so that reading the history never waits for them.

A poll that finds many calls final used to fetch all their details before it returned, and
no history was read meanwhile: the calls that ended during those seconds waited for the next
poll, and their slots with them. :class:`BackgroundFetches` runs the fetches as tasks, at
most ``limit`` at once across polls (the poller sizes it by Little's law, so that a history
read never queues behind many of them in the limiter), the others queued and started as
running ones finish; each poll submits the ones it found, skips the calls already under way,
and applies what finished since the previous poll in one transaction. A call is "being fetched" until its outcome is applied, so
it is never fetched twice by one daemon.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BackgroundFetches(Generic[T]):
    """Fetch tasks keyed by attempt id, ``limit`` running at once, the others queued; their
    results collected for the next poll."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._tasks: dict[int, asyncio.Task[T | None]] = {}
        self._queued: dict[int, Callable[[], Awaitable[T | None]]] = {}  # insertion ordered
        self._ready: list[T] = []
        self._held: set[int] = set()  # fetched, not yet applied
        # applied, but a poll that loaded its live calls before the apply committed may
        # still see them final: kept until a load no longer shows them (:meth:`prune`)
        self._applied: set[int] = set()
        self._error: BaseException | None = None

    def busy(self, attempt_id: int) -> bool:
        """Is this attempt queued, being fetched, or fetched and awaiting its apply?"""
        return (
            attempt_id in self._tasks
            or attempt_id in self._queued
            or attempt_id in self._held
            or attempt_id in self._applied
        )

    @property
    def running(self) -> int:
        return len(self._tasks)

    @property
    def ready(self) -> int:
        """Results waiting to be applied."""
        return len(self._ready)

    def submit(self, attempt_id: int, fetch: Callable[[], Awaitable[T | None]]) -> None:
        """Queue ``fetch()``; its result (None: try again next poll) is kept for :meth:`take`.
        It starts as soon as fewer than ``limit`` fetches run: when one finishes, not at the
        next poll."""
        if not self.busy(attempt_id):
            self._queued[attempt_id] = fetch
            self._pump()

    def _pump(self) -> None:
        while self._queued and len(self._tasks) < max(1, self.limit):
            attempt_id = next(iter(self._queued))
            fetch = self._queued.pop(attempt_id)
            task = asyncio.get_running_loop().create_task(_run(fetch), name=f"details-{attempt_id}")
            self._tasks[attempt_id] = task
            task.add_done_callback(functools.partial(self._done, attempt_id))

    def _done(self, attempt_id: int, task: asyncio.Task[T | None]) -> None:
        self._tasks.pop(attempt_id, None)
        self._pump()
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            if self._error is None:
                self._error = exc
            return
        result = task.result()
        if result is not None:
            self._ready.append(result)
            self._held.add(attempt_id)

    def take(self) -> list[T]:
        """The results finished since the last call; the caller applies them, then calls
        :meth:`applied` with their attempt ids."""
        ready, self._ready = self._ready, []
        return ready

    def applied(self, attempt_ids: list[int]) -> None:
        self._held.difference_update(attempt_ids)
        self._applied.update(attempt_ids)

    def prune(self, live_ids: set[int]) -> None:
        """Forget the applied attempts a fresh load of the live ones no longer shows."""
        self._applied.intersection_update(live_ids)

    def error(self) -> BaseException | None:
        """The first failure of a fetch since the last call (an AccountError, or a bug)."""
        exc, self._error = self._error, None
        return exc

    async def cancel(self) -> None:
        """Stop the fetches still running (at shutdown: their calls are fetched next run)."""
        self._queued.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def _run(fetch: Callable[[], Awaitable[T | None]]) -> T | None:
    return await fetch()
