"""Daemon overhead and scale (issue 4).

* CPU: CPU-seconds the daemon process spends per 1,000 dispatched calls against an
  unthrottled sandbox (every call answered after ~0.1 s), from ``run --until-done`` start to
  exit, minus the CPU of a run with nothing to do (interpreter start-up and imports).
  Target: <= 2 CPU-seconds per 1,000 calls.
* Memory: peak RSS of the daemon with 1,000,000 contacts in one campaign, while it dispatches
  for a while (then SIGTERM). Target: <= 250 MB (it streams claims, never loads the list).

Run:  .venv/bin/python benchmarks/bench_daemon.py [--calls 1000] [--contacts 1000000]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from storage.engine import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Campaign, Contact, utcnow  # noqa: E402
from tests.conftest import start_sandbox  # noqa: E402

KEY = "bench-key-0123456789"


def seed_db(db: str, n: int) -> None:
    """A running all-day campaign with ``n`` pending contacts, written with Core executemany."""
    engine = make_engine(db)
    upgrade(engine)
    now = utcnow()
    with engine.begin() as conn:
        cid = conn.execute(
            insert(Campaign)
            .values(
                name="bench",
                agent_id="a",
                status="running",
                window_start="00:00",
                window_end="24:00",
                days="mon,tue,wed,thu,fri,sat,sun",
                created_at=now,
                updated_at=now,
            )
            .returning(Campaign.id)
        ).scalar_one()
        batch = []
        for i in range(n):
            batch.append(
                {
                    "campaign_id": cid,
                    "row_number": i + 2,
                    "phone_e164": f"+9190{i:08d}",
                    "raw_phone": f"+9190{i:08d}",
                    "name": f"P{i}",
                    # executemany takes column names: the attributes column is called metadata
                    "metadata": {"customer_name": f"P{i}", "plan": "gold"},
                    "timezones": "Asia/Kolkata",
                    "state": "pending",
                    "attempts": 0,
                    "updated_at": now,
                }
            )
            if len(batch) == 20_000:
                conn.execute(insert(Contact), batch)
                batch = []
        if batch:
            conn.execute(insert(Contact), batch)
    engine.dispose()


def daemon_cmd(db: str, base_url: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "campaigns",
        "--db",
        db,
        "run",
        "--api-key",
        KEY,
        "--base-url",
        base_url,
        "--no-progress",
        *extra,
    ]


def measure(cmd: list[str], *, stop_after: float | None = None) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall s, CPU s, peak RSS MB) of the process."""
    t0 = time.monotonic()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = cpu = 0.0
    while proc.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
            t = proc.cpu_times()
            cpu = t.user + t.system
        except psutil.NoSuchProcess:
            break
        if stop_after is not None and time.monotonic() - t0 > stop_after:
            proc.send_signal(signal.SIGTERM)
            stop_after = None
        time.sleep(0.05)
    wall = time.monotonic() - t0
    return wall, cpu, peak / 2**20


def httpx_floor(base_url: str, calls: int = 1000, concurrency: int = 16) -> float:
    """CPU-seconds a bare ``httpx.AsyncClient`` spends per 1,000 calls on the requests the
    daemon makes for each call -- the trigger-call POST with the same body, then the call's
    details GET -- at a concurrency of 16 over 24 connections: the floor under any client of
    this stack. The daemon's extra requests (history pages) are left out of the floor, so
    ours / floor also charges us for those."""
    import asyncio
    import resource

    import httpx

    async def go() -> None:
        limits = httpx.Limits(max_connections=24, max_keepalive_connections=24)
        headers = {"X-API-Key": KEY, "Accept": "application/json"}
        async with httpx.AsyncClient(base_url=base_url, limits=limits, headers=headers) as http:
            sem = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with sem:
                    body = {
                        "agent_id": "a",
                        "medium": "telephony",
                        "contact_number": f"+9191{i:08d}",
                        "name": f"P{i}",
                        "metadata": {"customer_name": f"P{i}", "plan": "gold"},
                    }
                    placed = await http.post("/api/trigger-call/", json=body)
                    placed.raise_for_status()
                    call_id = placed.json()["call_id"]
                async with sem:
                    details = await http.get(f"/api/call_details/{call_id}")
                    details.json()

            await asyncio.gather(*(one(i) for i in range(calls)))

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    t0 = cpu()
    asyncio.run(go())
    return (cpu() - t0) / calls * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--scale-seconds", type=float, default=20.0)
    opts = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sb = start_sandbox(
            "--answer-rate", "1", "--call-seconds", "0.1-0.2", api_key=KEY, log_dir=work
        )
        try:
            fast = (
                "--until-done",
                "--rate-limit",
                "2000/s",
                "--max-concurrent",
                "2000",
                "--poll-interval",
                "0.5",
            )
            empty = f"sqlite:///{work / 'empty.db'}"
            seed_db(empty, 0)
            _, base_cpu, _ = measure(daemon_cmd(empty, sb.base_url, *fast))
            db = f"sqlite:///{work / 'cpu.db'}"
            seed_db(db, opts.calls)
            wall, cpu, peak = measure(daemon_cmd(db, sb.base_url, *fast))
            placed = len(sb.calls())
            per_k = (cpu - base_cpu) / placed * 1000
            rows.append(("CPU per 1,000 calls (net of start-up)", f"{per_k:.2f} CPU-s", "<= 2"))
            rows.append(("  calls placed / wall time", f"{placed} / {wall:.1f} s", ""))
            rows.append(("  start-up CPU (empty run)", f"{base_cpu:.2f} CPU-s", ""))
            floor = httpx_floor(sb.base_url)
            rows.append(("  bare httpx, same 2 requests x 1,000 (floor)", f"{floor:.2f} CPU-s", ""))
            rows.append(("  ours / bare httpx, same run", f"{per_k / floor:.2f}x", "<= 1.15"))

            big = f"sqlite:///{work / 'big.db'}"
            t0 = time.monotonic()
            seed_db(big, opts.contacts)
            seeded = time.monotonic() - t0
            before = len(sb.calls())
            _, _, peak = measure(
                daemon_cmd(
                    big,
                    sb.base_url,
                    "--rate-limit",
                    "200/s",
                    "--max-concurrent",
                    "500",
                    "--poll-interval",
                    "1",
                ),
                stop_after=opts.scale_seconds,
            )
            placed = len(sb.calls()) - before
            rows.append((f"peak RSS with {opts.contacts:,} contacts", f"{peak:.0f} MB", "<= 250"))
            rows.append((f"  calls placed in {opts.scale_seconds:.0f} s", str(placed), ""))
            rows.append(("  (seeding the database took)", f"{seeded:.0f} s", ""))
        finally:
            sb.stop()
    print(f"{'figure':44} {'value':>18} {'target':>8}")
    for name, value, target in rows:
        print(f"{name:44} {value:>18} {target:>8}")


if __name__ == "__main__":
    main()
