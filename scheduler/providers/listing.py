"""Looking for a lost answer's call in a provider's listing, the same way for every provider.

A provider whose :attr:`~scheduler.providers.base.Capabilities.listing` is newest first
implements ``find_calls`` with :func:`find_newest_first`: page from the newest call until a
page reaches calls older than the query's earliest possible time (or the listing ends), and
keep the records that :meth:`~scheduler.providers.base.CallQuery.matches`. Offset pages of a
listing that grows at the front may show a record twice; it is kept once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from scheduler.providers.base import CallPage, CallQuery, CallRecord

ListPage = Callable[[int], Awaitable[CallPage]]


async def find_newest_first(
    list_page: ListPage, query: CallQuery, *, max_pages: int = 10
) -> list[CallRecord]:
    """The records ``query`` matches, oldest first; ``list_page(n)`` reads page ``n`` (1-based)."""
    found: list[CallRecord] = []
    seen: set[str] = set()
    for page_no in range(1, max_pages + 1):
        page = await list_page(page_no)
        older = False
        for record in page.records:
            if record.call_id not in seen and query.matches(record):
                seen.add(record.call_id)
                found.append(record)
            if record.created_at is not None and record.created_at < query.earliest:
                older = True
        if older or page.is_last:
            break
    found.reverse()
    return found
