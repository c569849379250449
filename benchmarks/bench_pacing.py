"""Pacing: how close a whole campaign comes to the API plan's limit, and how few 429s it costs.

Setup (issue 4): a sandbox limited to 40 requests/s per key (all endpoints together), N
contacts (default 800), every call answered and lasting 1 s, ``--poll-interval 2``. The
campaign's makespan is the wall time of ``run --until-done``. The ideal is every request the
campaign needed -- one trigger and one details per call, plus the history pages it read --
sent at exactly the limit: ``requests / 40``. Efficiency = ideal / makespan.

Rows:
* daemon told the right limit (sandbox sends rate headers);
* daemon told 2x the limit, sandbox sends no rate headers (it must find the limit itself);
* a naive loop beside it: trigger every contact as fast as it can with tenacity retrying 429s
  (exponential jitter), then fetch each call's details the same way.

Run:  .venv/bin/python benchmarks/bench_pacing.py [--contacts 800] [--limit 40]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import Sandbox, start_sandbox  # noqa: E402

KEY = "bench-key-0123456789"


def make_csv(path: Path, n: int) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phone", "name", "plan"])
        for i in range(n):
            w.writerow([f"+9197{i:08d}", f"Person {i}", f"plan-{i % 5}"])


def cli(db: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "campaigns", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stats_delta(before: dict, after: dict) -> tuple[int, int, int]:  # type: ignore[type-arg]
    req_b, req_a = before.get("requests", {}), after.get("requests", {})
    total = sum(req_a.values()) - sum(req_b.values())
    history = sum(v for k, v in req_a.items() if "history" in k) - sum(
        v for k, v in req_b.items() if "history" in k
    )
    limited = after.get("rate_limited", 0) - before.get("rate_limited", 0)
    return total, history, limited


def daemon_run(n: int, limit: int, told: float, headers: bool, workdir: Path) -> dict:  # type: ignore[type-arg]
    args = [
        "--rate-limit",
        f"{limit}/s",
        "--answer-rate",
        "1",
        "--call-seconds",
        "1-1",
        "--seed",
        "1",
    ]
    if not headers:
        args.append("--no-rate-headers")
    sb = start_sandbox(*args, api_key=KEY, log_dir=workdir)
    try:
        db = f"sqlite:///{workdir / f'pacing-{told}-{headers}.db'}"
        csv_path = workdir / "contacts.csv"
        make_csv(csv_path, n)
        res = cli(
            db,
            "campaign",
            "create",
            "pacing",
            "--csv",
            str(csv_path),
            "--agent-id",
            "a",
            "--window",
            "00:00-24:00",
            "--days",
            "all",
            "--json",
        )
        assert res.returncode == 0, res.stderr
        before = sb.stats()
        t0 = time.monotonic()
        res = cli(
            db,
            "run",
            "--until-done",
            "--api-key",
            KEY,
            "--base-url",
            sb.base_url,
            "--rate-limit",
            f"{told:g}/s",
            "--poll-interval",
            "2",
            "--max-concurrent",
            str(n),
            "--no-progress",
        )
        makespan = time.monotonic() - t0
        assert res.returncode == 0, res.stderr[-2000:]
        total, history, limited = stats_delta(before, sb.stats())
        needed = 2 * n + history
        ideal = needed / limit
        return {
            "variant": f"daemon told {told:g}/s, headers {'on' if headers else 'off'}",
            "makespan_s": makespan,
            "ideal_s": ideal,
            "efficiency": ideal / makespan,
            "requests": total,
            "429_share": limited / max(total, 1),
        }
    finally:
        sb.stop()


async def _naive(sb: Sandbox, n: int) -> None:
    def is_429(exc: BaseException) -> bool:
        return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 429

    async with httpx.AsyncClient(base_url=sb.base_url, headers={"X-API-Key": KEY}) as http:

        async def call(method: str, url: str, **kw) -> dict:  # type: ignore[no-untyped-def,type-arg]
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_429),
                wait=wait_exponential_jitter(multiplier=0.1, max=5),
                stop=stop_after_attempt(30),
                reraise=True,
            ):
                with attempt:
                    r = await http.request(method, url, **kw)
                    r.raise_for_status()
                    return r.json()  # type: ignore[no-any-return]
            raise AssertionError("unreachable")

        sem = asyncio.Semaphore(20)

        async def one(i: int) -> None:
            async with sem:
                out = await call(
                    "POST",
                    "/api/trigger-call/",
                    json={
                        "agent_id": "a",
                        "medium": "telephony",
                        "contact_number": f"+9196{i:08d}",
                        "name": f"P{i}",
                        "metadata": {},
                    },
                )
            await asyncio.sleep(2.0)  # the call lasts 1 s; look after it has surely ended
            async with sem:
                await call("GET", f"/api/call_details/{out['call_id']}")

        await asyncio.gather(*(one(i) for i in range(n)))


def naive_run(n: int, limit: int, workdir: Path) -> dict:  # type: ignore[type-arg]
    sb = start_sandbox(
        "--rate-limit",
        f"{limit}/s",
        "--answer-rate",
        "1",
        "--call-seconds",
        "1-1",
        api_key=KEY,
        log_dir=workdir,
    )
    try:
        before = sb.stats()
        t0 = time.monotonic()
        asyncio.run(_naive(sb, n))
        makespan = time.monotonic() - t0
        total, history, limited = stats_delta(before, sb.stats())
        ideal = (2 * n + history) / limit
        return {
            "variant": "naive loop (tenacity on 429 only)",
            "makespan_s": makespan,
            "ideal_s": ideal,
            "efficiency": ideal / makespan,
            "requests": total,
            "429_share": limited / max(total, 1),
        }
    finally:
        sb.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--contacts", type=int, default=800)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = [
            daemon_run(opts.contacts, opts.limit, opts.limit, True, work),
            daemon_run(opts.contacts, opts.limit, 2 * opts.limit, False, work),
            naive_run(opts.contacts, opts.limit, work),
        ]
    if opts.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"pacing: {opts.contacts} contacts, sandbox limit {opts.limit}/s, calls last 1 s, poll 2 s"
    )
    print(f"{'variant':44} {'makespan':>9} {'ideal':>7} {'effic.':>7} {'requests':>9} {'429s':>7}")
    for r in rows:
        print(
            f"{r['variant']:44} {r['makespan_s']:8.1f}s {r['ideal_s']:6.1f}s "
            f"{r['efficiency']:6.1%} {r['requests']:9d} {r['429_share']:6.2%}"
        )
    print("targets: told right >= 90% with <= 1% 429s; told 2x, no headers >= 75% with <= 5%")


if __name__ == "__main__":
    main()
