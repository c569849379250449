"""Answers that are streamed: the report CSV and the progress events (SSE).

The report: :func:`campaigns.report.write_report` is synchronous and writes to a binary
stream, so it runs in a thread writing into :class:`QueueWriter`, a bounded queue of 64 KB
chunks that the response drains. The queue's bound is the backpressure: a slow client slows
the writer instead of growing memory, so a 1M-contact report streams in flat memory, with the
very bytes ``vaani-campaigns report`` writes. A client that goes away stops the writer at its
next chunk. Each report gets its own scratch directory for the part files of a parallel
export, so two downloads at once never share one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from campaigns.report import write_report
from campaigns.report_options import ReportOptions
from storage.engine import Engine

CHUNK = 64 * 1024
QUEUE_CHUNKS = 16
_DONE = object()


class ClientGone(Exception):
    """The reader of the stream went away; the writer stops."""


class QueueWriter:
    """A write-only binary stream into a bounded queue of chunks."""

    def __init__(self, q: queue.Queue[Any], cancelled: threading.Event) -> None:
        self._q = q
        self._cancelled = cancelled
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        if len(self._buf) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buf:
            self.put(bytes(self._buf))
            self._buf.clear()

    def put(self, item: Any) -> None:
        while True:
            if self._cancelled.is_set():
                raise ClientGone
            try:
                self._q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue


def _next(q: queue.Queue[Any], cancelled: threading.Event) -> Any:
    """The next item, waiting in short steps so that a worker thread waiting here is freed
    within half a second of the response being abandoned."""
    while not cancelled.is_set():
        try:
            return q.get(timeout=0.5)
        except queue.Empty:
            continue
    return _DONE


def report_chunks(engine: Engine, campaign_id: int, options: ReportOptions) -> AsyncIterator[bytes]:
    """The report's bytes, produced by a thread, as an async iterator for StreamingResponse."""
    q: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_CHUNKS)
    cancelled = threading.Event()
    scratch = Path(tempfile.mkdtemp(prefix="vaani-report-"))

    def produce() -> None:
        writer = QueueWriter(q, cancelled)
        try:
            write_report(engine, campaign_id, writer, options, scratch=scratch)  # type: ignore[arg-type]
            writer.flush()
            writer.put(_DONE)
        except ClientGone:
            pass
        except BaseException as exc:  # surfaced in the response task
            with contextlib.suppress(ClientGone):
                writer.put(exc)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    async def chunks() -> AsyncIterator[bytes]:
        thread = threading.Thread(target=produce, name="report-stream", daemon=True)
        thread.start()
        try:
            while True:
                item = await run_in_threadpool(_next, q, cancelled)
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()

    return chunks()


class SharedSnapshot:
    """``compute()``, recomputed at most once per ``max_age`` seconds however many event
    streams ask: ten open pages cost the database what one does."""

    def __init__(self, compute: Callable[[], Any], max_age: float) -> None:
        self._compute = compute
        self._max_age = max_age
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._value: Any = None

    def __call__(self) -> Any:
        with self._lock:
            now = time.monotonic()
            if now - self._at >= self._max_age:
                self._value, self._at = self._compute(), now
            return self._value


async def event_stream(
    request: Request, snapshot: Callable[[], Any], *, interval: float
) -> AsyncIterator[str]:
    """Server-sent events: ``event: campaigns`` with ``snapshot()`` as JSON whenever it
    changes (checked every ``interval`` seconds), and a comment every 15 s to keep proxies
    from closing a quiet stream. Ends when the client goes away."""
    last: str | None = None
    quiet = 0.0
    yield "retry: 2000\n\n"
    while not await request.is_disconnected():
        data = json.dumps(await run_in_threadpool(snapshot), default=str)
        if data != last:
            last, quiet = data, 0.0
            yield f"event: campaigns\ndata: {data}\n\n"
        elif quiet >= 15:
            quiet = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(interval)
        quiet += interval
