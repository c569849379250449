"""The API boundary's speed: what the sandbox serves, and what our client adds per request.

(a) Sandbox throughput: requests/s the sandbox (one process, one core) serves for
    ``GET /api/health`` and ``GET /api/call-history`` (page_size 50, over a history of
    ``--history`` calls), driven by C concurrent workers. Two drivers: a minimal raw asyncio
    HTTP/1.1 keep-alive client (so the figure is the server's, not the client's) and
    ``httpx.AsyncClient`` (what real clients use; on a busy 2-core machine httpx itself is
    often the bottleneck).
(b) Client overhead: ``scheduler.providers.vaani.VaaniProvider`` versus a bare ``httpx.AsyncClient``
    loop (get, raise_for_status, .json()) on the same sandbox and endpoint, sequential (C=1)
    and concurrent (C=16). Wall time per request for both, and the client process's CPU time
    per request (the server runs in its own process, so the CPU our client adds is exactly
    its cost; CPU figures also suffer much less from a busy machine than wall times).
    Target: added cost <= 15% of the bare loop's time per request.

Every figure is the median of ``--repeat`` runs; the bare and our runs alternate so that
machine load affects both alike.

Run:  .venv/bin/python benchmarks/bench_api.py [--requests 500] [--repeat 5] [--history 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import start_sandbox  # noqa: E402

KEY = "bench-key-7c1d"
Op = Callable[[], Awaitable[object]]


async def _run(op_factory: Callable[[], Op], total: int, concurrency: int) -> float:
    """Run ``total`` requests over ``concurrency`` workers; return wall seconds."""
    return (await _timed(op_factory, total, concurrency))[0]


async def _timed(op_factory: Callable[[], Op], total: int, concurrency: int) -> tuple[float, float]:
    """Run ``total`` requests over ``concurrency`` workers; return (wall, this process's CPU)."""
    per = total // concurrency

    async def worker() -> None:
        op = op_factory()
        for _ in range(per):
            await op()

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, time.process_time() - cpu


class RawConnection:
    """One keep-alive HTTP/1.1 connection with the least client work possible."""

    def __init__(self, base_url: str, path: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nX-API-Key: {KEY}\r\n\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __call__(self) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return await self.reader.readexactly(length)


async def throughput(base: str, path: str, driver: str, total: int, concurrency: int) -> float:
    conns: list[RawConnection] = []
    if driver == "raw":

        def factory() -> Op:
            conn = RawConnection(base, path)
            conns.append(conn)
            return conn

        elapsed = await _run(factory, total, concurrency)
        for c in conns:
            if c.writer:
                c.writer.close()
        return total / elapsed
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": KEY}, limits=limits) as cl:

        def hfactory() -> Op:
            async def op() -> object:
                r = await cl.get(path)
                r.raise_for_status()
                return r.content

            return op

        elapsed = await _run(hfactory, total, concurrency)
    return total / elapsed


async def overhead_pair(
    base: str, endpoint: str, total: int, concurrency: int
) -> tuple[float, float, float, float]:
    """Per request: (bare wall, our wall, bare client CPU, our client CPU), seconds."""
    from scheduler.providers.vaani import VaaniProvider

    path = "/api/health" if endpoint == "health" else "/api/call-history"
    params = {} if endpoint == "health" else {"page": 1, "page_size": 50}
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": KEY}, limits=limits, timeout=30.0
    ) as bare:

        def bare_factory() -> Op:
            async def op() -> object:
                r = await bare.get(path, params=params)
                r.raise_for_status()
                return r.json()

            return op

        await bare_factory()()  # warm the connection
        t_bare, c_bare = await _timed(bare_factory, total, concurrency)
    async with VaaniProvider(KEY, base, max_connections=50) as ours:

        def ours_factory() -> Op:
            if endpoint == "health":
                return ours.health
            return lambda: ours.call_history(1, 50)

        await ours_factory()()
        t_ours, c_ours = await _timed(ours_factory, total, concurrency)
    return t_bare / total, t_ours / total, c_bare / total, c_ours / total


async def seed_history(base: str, n: int) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": KEY}) as cl:
        for i in range(n):
            body = {"agent_id": "bench", "contact_number": f"+1415{i:07d}", "name": f"P {i}"}
            (await cl.post("/api/trigger-call/", json=body)).raise_for_status()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--requests", type=int, default=500, help="requests per run")
    ap.add_argument("--repeat", type=int, default=5, help="runs per figure (median reported)")
    ap.add_argument("--history", type=int, default=1000, help="calls in the history")
    ap.add_argument("--only", choices=["a", "b"], help="run only part (a) or (b)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sb = start_sandbox(
            "--seed", "1", "--call-seconds", "0.1-0.2", api_key=KEY, log_dir=Path(tmp)
        )
        try:
            asyncio.run(seed_history(sb.base_url, args.history))
            print(
                f"sandbox {sb.base_url}, history of {args.history} calls, "
                f"{args.requests} requests per run, median of {args.repeat} runs\n"
            )
            if args.only != "b":
                print("(a) sandbox throughput")
                print(f"{'endpoint':<26}{'driver':<8}{'C':>4}{'req/s':>10}")
                for path in ("/api/health", "/api/call-history?page=1&page_size=50"):
                    for driver in ("raw", "httpx"):
                        for conc in (1, 16):
                            runs = [
                                asyncio.run(
                                    throughput(sb.base_url, path, driver, args.requests, conc)
                                )
                                for _ in range(args.repeat)
                            ]
                            name = path.split("?")[0].removeprefix("/api/")
                            print(f"{name:<26}{driver:<8}{conc:>4}{statistics.median(runs):>10.0f}")
            if args.only == "a":
                return
            print("\n(b) our client vs bare httpx.AsyncClient (microseconds per request)")
            print(
                f"{'endpoint':<14}{'C':>4}{'bare wall':>11}{'ours wall':>11}{'wall +':>9}"
                f"{'bare cpu':>10}{'ours cpu':>10}{'cpu +':>8}{'added/bare wall':>17}"
            )
            for endpoint in ("health", "call-history"):
                for conc in (1, 16):
                    samples = [
                        asyncio.run(overhead_pair(sb.base_url, endpoint, args.requests, conc))
                        for _ in range(args.repeat)
                    ]
                    bw, ow, bc, oc = (statistics.median(r[k] for r in samples) for k in range(4))
                    wall = statistics.median((r[1] - r[0]) / r[0] for r in samples)
                    cpu = statistics.median((r[3] - r[2]) / r[2] for r in samples)
                    added = statistics.median((r[3] - r[2]) / r[0] for r in samples)
                    print(
                        f"{endpoint:<14}{conc:>4}{bw * 1e6:>11.0f}{ow * 1e6:>11.0f}{wall:>+9.1%}"
                        f"{bc * 1e6:>10.0f}{oc * 1e6:>10.0f}{cpu:>+8.1%}{added:>+17.1%}"
                    )
            print(
                "wall +: our wall time over the bare loop's; cpu +: our client process's CPU over "
                "the bare loop's;\nadded/bare wall: the CPU our client adds, as a share of the "
                "bare loop's wall time per request (the issue's target: <= 15%)."
            )
            stats = sb.stats()
            print(f"\nsandbox max concurrent requests: {stats['max_concurrent_requests']}")
        finally:
            sb.stop()


if __name__ == "__main__":
    main()
