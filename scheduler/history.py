"""Reading the call history for a poll: newest first, no further than needed.

:class:`HistoryReader` pages a provider's call listing (``CallProvider.list_calls``; for
Vaani ``GET /api/call-history``) newest first and stops as soon as every call the poll needs
has been seen, or at the page whose oldest record is older than the oldest call still needed
(its ``sent_at`` minus a clock-skew margin) -- never further. The page size grows (up to the
provider's ``max_page_size``) when one page was not enough, since each page costs a request.
It is kept apart from :mod:`scheduler.poller` so that what a poll reads and what it does with
it can each be read on their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from scheduler.providers.base import CallOutcome, CallPage, CallRecord, Capabilities
from scheduler.reconcile import DEFAULT_SKEW, HistoryCoverage
from storage.attempts import LiveAttempt


@dataclass
class PollStats:
    """What one poll did. ``requests`` counts logical API requests (not client retries)."""

    live: int = 0
    history_pages: int = 0
    details_requests: int = 0
    lookups: int = 0
    finished: int = 0
    reconciled: int = 0
    not_placed: int = 0
    no_outcome: int = 0
    details_failures: int = 0
    slots_freed: int = 0

    @property
    def requests(self) -> int:
        return self.history_pages + self.details_requests + self.lookups


class OutcomeAPI(Protocol):
    """The part of :class:`~scheduler.providers.base.CallProvider` the poller uses (every
    provider is one; unit tests use a fake)."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def list_calls(self, *, page: int, page_size: int) -> CallPage: ...

    async def outcome(self, call_id: str) -> CallOutcome: ...


class HistoryReader:
    """Reads as much of the history as a poll needs; remembers the page size between polls."""

    def __init__(
        self, *, page_size: int = 100, max_pages: int = 50, skew: timedelta = DEFAULT_SKEW
    ) -> None:
        if max_pages < 1 or page_size < 1:
            raise ValueError("page_size and max_pages must be at least 1")
        self.page_size = page_size
        self.max_pages = max_pages
        self.skew = skew
        self._page_size = page_size  # adapted after each read (see _next_page_size)

    async def read(
        self,
        client: OutcomeAPI,
        tracked: Sequence[LiveAttempt],
        unknown: Sequence[LiveAttempt],
        stats: PollStats,
    ) -> tuple[list[CallRecord], HistoryCoverage]:
        """Pages newest first until every call still needed is seen or the pages are older
        than the oldest one needed (minus the skew margin).

        The page size adapts: when a poll needed more records than one page holds, the next
        asks for bigger pages (up to the API's 200), since every page costs one request
        whatever its size; it never goes below the configured size.
        """
        need_calls = {a.call_id: a.since for a in tracked if a.call_id}
        # unknown attempts need the history read past their creation: a call to the same
        # number may also be an older one of another attempt, matched only afterwards
        need_unknown = [a.created_at for a in unknown]
        records: list[CallRecord] = []
        oldest: datetime | None = None
        reached_end = False
        if not need_calls and not need_unknown:
            return records, HistoryCoverage(oldest=None, reached_end=False)
        size = self._page_size
        used: int | None = None  # records read when the last need was met
        last: CallPage | None = None
        for page_no in range(1, self.max_pages + 1):
            page = last = await client.list_calls(page=page_no, page_size=size)
            stats.history_pages += 1
            for rec in page.records:
                records.append(rec)
                need_calls.pop(rec.call_id, None)
                if rec.created_at is not None and (oldest is None or rec.created_at < oldest):
                    oldest = rec.created_at
                if used is None and self._satisfied(need_calls, need_unknown, oldest):
                    used = len(records)
            if page.is_last:
                reached_end = True
                break
            if used is not None:
                break
        if last is not None:
            limit = client.capabilities.max_page_size
            self._page_size = self._next_page_size(last, size, used or len(records), limit)
        return records, HistoryCoverage(oldest=oldest, reached_end=reached_end)

    def _satisfied(
        self, need_calls: dict[str, datetime], need_unknown: list[datetime], oldest: datetime | None
    ) -> bool:
        """Has the history been read far enough? Every tracked call seen, and no record
        newer than the oldest need (minus the skew margin) can still be further down."""
        needed = [*need_calls.values(), *need_unknown]
        if not needed:
            return True
        return oldest is not None and oldest < min(needed) - self.skew

    def _next_page_size(self, page: CallPage, asked: int, used: int, limit: int) -> int:
        """The page size for the next poll: enough for what this one needed, within the
        provider's ``limit``, never below the configured size, and only beyond it when the
        provider confirms it serves the size asked for (its pagination echoes it).

        Whether ``page`` is the last one is the provider's verdict (``CallPage.is_last``): an
        API that silently sends fewer records than asked for must not look finished, or a
        lost call not found in a history we think complete would be declared not placed."""
        echoed = page.served_size
        if echoed != asked:  # not confirmed (or capped): stay with what is known to work
            return self.page_size if echoed is None else max(1, min(asked, page.page_size))
        wanted = math.ceil(used * 1.25)
        return max(self.page_size, min(limit, wanted))
