"""What bringing outcomes back costs: API requests per finished call, and outcome latency.

For each background-traffic rate given, a fresh sandbox (``--background-calls R``: other
agents' calls and inbound calls fill the shared call history) and a fresh database: ``--calls``
contacts are dialled through the real client at ``--dial-rate`` per second (attempts claimed
and settled by the real ``storage.claims`` code), while ``OutcomePoller.poll_once`` runs every
``--poll-interval`` seconds until every call is finished. Then:

* requests per finished call = (call-history + call_details requests, from the sandbox's
  ``/sandbox/stats`` deltas) / calls finished. Target <= 1.2: one details request per call
  plus history pages shared by all calls that end in the same poll interval;
* outcome latency = our attempt's ``finished_at`` minus the sandbox's ``ended_at`` for that
  call (same machine, same clock). Target: p95 and max <= poll interval + 1 s.

Run:  .venv/bin/python benchmarks/bench_polling.py [--calls 300] [--background 0,10,50]
      [--poll-interval 2] [--page-size 100] [--dial-rate 25] [--db-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, select  # noqa: E402

from scheduler import dbexec  # noqa: E402
from scheduler.poller import OutcomePoller  # noqa: E402
from scheduler.providers.vaani import VaaniProvider  # noqa: E402
from storage import claims, settle  # noqa: E402
from storage.claims import Decision  # noqa: E402
from storage.engine import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Attempt, utcnow  # noqa: E402
from tests.conftest import Sandbox, start_sandbox  # noqa: E402
from tests.factories import indian_numbers, make_campaign, make_contacts  # noqa: E402

KEY = "bench-polling-key-3e1f"
DEADLINE = timedelta(minutes=10)


def _dial(*_: Any) -> Decision:
    return Decision.dial()


def seed_campaign(engine: Engine, n: int) -> None:
    """A running all-day campaign with ``n`` pending contacts (the tests' own builders)."""
    make_contacts(engine, make_campaign(engine, agent_id="agent-bench"), indian_numbers(n))


async def dial_all(engine: Engine, client: VaaniProvider, n: int, rate: float) -> None:
    """Claim and trigger ``n`` calls at about ``rate`` per second."""
    placed = 0
    start = time.monotonic()
    while placed < n:
        batch = min(n - placed, max(1, int(rate / 5)))
        res = await dbexec.run(
            claims.claim_due, engine, daemon_id="bench", now=utcnow(), limit=batch, decide=_dial
        )
        for job in res.jobs:
            sent = utcnow()
            out = await client.trigger_call(
                agent_id=job.campaign.agent_id,
                contact_number=job.phone_e164,
                name=job.name,
                metadata=job.metadata,
            )
            accepted = settle.Accepted(
                attempt_id=job.attempt_id, call_id=out.call_id, sent_at=sent, accepted_at=utcnow()
            )
            await dbexec.run(
                settle.record_accepted_many, engine, [accepted], outcome_deadline=DEADLINE
            )
            placed += 1
        wait = start + placed / rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


async def poll_until_done(
    poller: OutcomePoller, interval: float, dialing: asyncio.Task[None], n: int
) -> tuple[int, int]:
    """Poll every ``interval`` s until ``n`` calls are finished; (polls, max pages in a poll)."""
    polls = finished = max_pages = 0
    next_at = time.monotonic()
    while True:
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        stats = await poller.poll_once()
        polls += 1
        finished += stats.finished
        max_pages = max(max_pages, stats.history_pages)
        if dialing.done() and finished >= n:
            return polls, max_pages


def parse_iso(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


async def run_one(sb: Sandbox, engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    seed_campaign(engine, args.calls)
    async with VaaniProvider(sb.api_key, sb.base_url, timeout=30) as client:
        before = sb.stats()["requests"]
        poller = OutcomePoller(engine, client, page_size=args.page_size, outcome_deadline=DEADLINE)
        dialing = asyncio.create_task(dial_all(engine, client, args.calls, args.dial_rate))
        polls, max_pages = await poll_until_done(poller, args.poll_interval, dialing, args.calls)
        await dialing
        after = sb.stats()
    req = after["requests"]
    history = req.get("call-history", 0) - before.get("call-history", 0)
    details = req.get("call_details", 0) - before.get("call_details", 0)
    truth = {c["call_id"]: c for c in sb.calls()}
    with engine.connect() as conn:
        rows = conn.execute(
            select(Attempt.call_id, Attempt.finished_at).where(Attempt.state == "finished")
        ).all()
    lat = sorted(
        (r.finished_at - parse_iso(truth[r.call_id]["ended_at"])).total_seconds() for r in rows
    )
    return {
        "finished": len(rows),
        "polls": polls,
        "history": history,
        "details": details,
        "max_pages": max_pages,
        "per_call": (history + details) / max(1, len(rows)),
        "lat_p50": statistics.median(lat),
        "lat_p95": lat[int(0.95 * (len(lat) - 1))],
        "lat_max": lat[-1],
        "bg_calls": after["background_calls"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument(
        "--background",
        default="0,10,50",
        help="comma-separated background call rates (calls/s), one row each",
    )
    ap.add_argument("--poll-interval", type=float, default=2.0)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--dial-rate", type=float, default=25.0)
    ap.add_argument("--call-seconds", default="1-4")
    ap.add_argument("--db-url", help="an EMPTY database to use (default: a temporary SQLite)")
    args = ap.parse_args()
    rates = [float(x) for x in args.background.split(",") if x.strip()]
    print(
        f"calls={args.calls} dial_rate={args.dial_rate}/s poll_interval={args.poll_interval}s "
        f"page_size={args.page_size} call_seconds={args.call_seconds}"
    )
    head = (
        f"{'bg calls/s':>10} {'bg seen':>8} {'finished':>8} {'polls':>6} {'history':>8} "
        f"{'details':>8} {'max pg':>6} {'req/call':>8} {'lat p50':>8} {'lat p95':>8} "
        f"{'lat max':>8}"
    )
    print(head)
    print("-" * len(head))
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for i, rate in enumerate(rates):
            sb = start_sandbox(
                "--answer-rate",
                "0.7",
                "--call-seconds",
                args.call_seconds,
                "--seed",
                "11",
                "--background-calls",
                str(rate),
                api_key=KEY,
                log_dir=Path(tmp),
            )
            url = args.db_url or f"sqlite:///{Path(tmp) / f'bench-{i}.db'}"
            engine = make_engine(url)
            upgrade(engine)
            try:
                r = asyncio.run(run_one(sb, engine, args))
            finally:
                sb.stop()
                engine.dispose()
            ok &= r["per_call"] <= 1.2 and r["lat_max"] <= args.poll_interval + 1
            print(
                f"{rate:>10g} {r['bg_calls']:>8} {r['finished']:>8} {r['polls']:>6} "
                f"{r['history']:>8} {r['details']:>8} {r['max_pages']:>6} "
                f"{r['per_call']:>8.3f} {r['lat_p50']:>7.2f}s {r['lat_p95']:>7.2f}s "
                f"{r['lat_max']:>7.2f}s"
            )
    dbexec.shutdown()
    print(
        f"targets: req/call <= 1.2, latency <= poll interval + 1 s = "
        f"{args.poll_interval + 1:g} s -> {'met' if ok else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
