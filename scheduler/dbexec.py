"""Run blocking database work off the event loop, one statement batch at a time.

The daemon is asyncio; SQLAlchemy here is synchronous. Every database call from async code
goes through :func:`run`, which uses one dedicated worker thread: the loop never blocks on a
database lock, and this daemon's own transactions never contend with each other (which on
SQLite would only queue on the write lock anyway).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaani-db")
    return _executor


async def run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` on the database thread and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(fn, *args, **kwargs))


def shutdown() -> None:
    """Stop the database thread (waits for the running call)."""
    global _executor
    if _executor is not None:
        _executor.shutdown(wait=True)
        _executor = None
