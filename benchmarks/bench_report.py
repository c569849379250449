"""Benchmark: export the outcome report of large campaigns (target: >= 100,000 rows/s, flat memory).

Builds campaigns of 100k and 1M contacts in SQLite files with Core ``executemany`` (a share of
them with finished attempts carrying a summary and entities), then times each export in a
child process, so that the peak RSS measured is the export's alone. Prints one table row per
(size, mode, workers). "CPU s" is the export's CPU time, worker processes included; peak RSS
is the largest single process. On a shared machine
the wall-clock rate depends on the neighbours, the rate per CPU second much less.

    .venv/bin/python benchmarks/bench_report.py                      # 100k and 1M, contacts
    .venv/bin/python benchmarks/bench_report.py --sizes 100000 --attempts
    .venv/bin/python benchmarks/bench_report.py --sizes 1000000 --workers 1,2   # one core vs two
    .venv/bin/python benchmarks/bench_report.py --workdir /tmp/bench_report  # reuses its files
    .venv/bin/python benchmarks/bench_report.py --db postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from campaigns.report import ReportOptions, export_report  # noqa: E402
from storage.engine import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Base, Campaign, Contact  # noqa: E402

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
COLUMNS = [
    ["Customer Name", "customer_name"],
    ["Phone", "phone"],
    ["Property Name", "property_name"],
    ["City", "city"],
    ["Notes", "notes"],
]
BATCH = 20_000
TABLES = Base.metadata.tables  # executemany takes column keys (the DB names)


def build(engine: Engine, n: int, attempt_share: float, seed: int = 7) -> int:
    """A campaign of ``n`` contacts; ``attempt_share`` of them called (1-3 attempts each)."""
    rng = random.Random(seed)
    with engine.begin() as conn:
        cid = conn.execute(
            insert(Campaign)
            .values(name=f"bench {n}", agent_id="agent", columns=COLUMNS, phone_column="Phone")
            .returning(Campaign.id)
        ).scalar_one()
        first_id = 1 + (conn.execute(select(func.max(Contact.id))).scalar() or 0)
    states = ("done", "exhausted", "pending", "invalid", "suppressed")
    for start in range(0, n, BATCH):
        contacts, attempts = [], []
        for i in range(start, min(n, start + BATCH)):
            called = rng.random() < attempt_share
            tries = rng.randint(1, 3) if called else 0
            contacts.append(
                {
                    "id": first_id + i,
                    "campaign_id": cid,
                    "row_number": i + 1,
                    "raw_phone": f"+91 98{i:08d}",
                    "phone_e164": f"+9198{i:08d}",
                    # executemany takes column keys: the DB column is "metadata"
                    "metadata": {
                        "customer_name": f"Customer {i}, Sr.",
                        "property_name": "Sea View 2BHK",
                        "city": "Pune",
                        "notes": "line one\nline two" if i % 10 == 0 else "ok",
                    },
                    "state": "done" if called else states[i % len(states)],
                    "outcome": "answered" if called else None,
                    "reason": None if called else "benchmark",
                    "attempts": tries,
                    "updated_at": T0,
                }
            )
            for no in range(1, tries + 1):
                answered = no == tries
                at = T0 + timedelta(hours=no)
                attempts.append(
                    {
                        "contact_id": first_id + i,
                        "campaign_id": cid,
                        "attempt_no": no,
                        "phone_e164": f"+9198{i:08d}",
                        "state": "finished",
                        "call_id": f"c{cid}-{i}-{no}",
                        "created_at": at,
                        "accepted_at": at,
                        "finished_at": at + timedelta(minutes=1),
                        "call_status": "completed" if answered else "no_answer",
                        "outcome": "answered" if answered else "no_answer",
                        "duration_s": 42.5 if answered else 0.0,
                        "summary": "Interested; wants a visit on Saturday." if answered else None,
                        "entity": {"email": f"u{i}@example.com", "visit": {"day": "sat"}}
                        if answered
                        else None,
                    }
                )
        with engine.begin() as conn:
            conn.execute(insert(TABLES["contacts"]), contacts)
            if attempts:
                conn.execute(insert(TABLES["attempts"]), attempts)
    return cid


def reuse(engine: Engine, n: int) -> int | None:
    """The campaign a previous run built in this --workdir file, if complete."""
    with engine.connect() as conn:
        cid = conn.execute(select(Campaign.id).where(Campaign.name == f"bench {n}")).scalar()
        if cid is None:
            return None
        count = conn.execute(
            select(func.count()).select_from(Contact).where(Contact.campaign_id == cid)
        ).scalar_one()
    return int(cid) if count == n else None


def child(url: str, cid: int, out: str, attempts: bool, workers: int | None) -> None:
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # after imports
    t, cpu = time.perf_counter(), time.process_time()
    engine = make_engine(url)
    result = export_report(engine, cid, out, ReportOptions(attempts=attempts, workers=workers))
    elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the worker processes, if any
    cpu += kids.ru_utime + kids.ru_stime
    rss_mb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, kids.ru_maxrss) / 1024
    print(
        json.dumps(
            {
                "rows": result.rows,
                "seconds": elapsed,
                "cpu": cpu,
                "peak_rss_mb": rss_mb,
                "base_rss_mb": base_mb,
            }
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--attempt-share", type=float, default=0.3)
    p.add_argument("--attempts", action="store_true", help="also time the --attempts export")
    p.add_argument(
        "--workers",
        default="auto",
        help="formatting processes, comma-separated to compare (e.g. 1,2); auto: the default",
    )
    p.add_argument("--db", help="database URL (default: a SQLite file per size in --workdir)")
    p.add_argument("--workdir", help="where to keep the databases and reports (default: temp)")
    p.add_argument(
        "--child", nargs=5, metavar=("URL", "CID", "OUT", "MODE", "W"), help=argparse.SUPPRESS
    )
    args = p.parse_args()
    if args.child:
        url, cid, out, mode, w = args.child
        child(url, int(cid), out, mode == "attempts", None if w == "auto" else int(w))
        return
    if args.workdir:  # kept, so that a second run reuses the campaigns it built
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        run(args, Path(args.workdir))
        return
    # a temporary one goes at the end: its databases take about 500 MB per million contacts
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, work: Path) -> None:
    """Build (or reuse) each size's campaign in ``work`` and time its exports."""
    print(
        f"{'contacts':>10} {'mode':>11} {'workers':>7} {'rows':>10} {'build s':>8} {'export s':>9} "
        f"{'rows/s':>9} {'CPU s':>6} {'rows/CPU s':>10} {'RSS MB base/peak':>16} {'CSV MB':>7}"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        url = args.db or f"sqlite:///{work / f'report_{n}.db'}"
        engine = make_engine(url)
        upgrade(engine)
        t = time.perf_counter()
        cid = None if args.db else reuse(engine, n)
        if cid is None:
            cid = build(engine, n, args.attempt_share)
        build_s = time.perf_counter() - t
        modes = ["contacts"] + ["attempts"] * args.attempts
        for mode, w in ((m, w) for m in modes for w in args.workers.split(",")):
            out = work / f"report_{n}_{mode}.csv"
            res = subprocess.run(
                [sys.executable, __file__, "--child", url, str(cid), str(out), mode, w],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(res.stdout)
            print(
                f"{n:>10} {mode:>11} {w:>7} {r['rows']:>10} {build_s:>8.1f} {r['seconds']:>9.2f} "
                f"{r['rows'] / r['seconds']:>9,.0f} {r['cpu']:>6.1f} "
                f"{r['rows'] / r['cpu']:>10,.0f} "
                f"{r['base_rss_mb']:>10.0f}/{r['peak_rss_mb']:<5.0f} "
                f"{out.stat().st_size / 1e6:>7.0f}"
            )
            out.unlink()
        if args.db:  # leave a shared database as it was
            with engine.begin() as conn:
                conn.execute(delete(Campaign).where(Campaign.id == cid))
        engine.dispose()


if __name__ == "__main__":
    main()
