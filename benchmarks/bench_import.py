"""Benchmark: import a generated contact CSV (default 300,000 rows) three ways, one table.

    .venv/bin/python benchmarks/bench_import.py [--rows 300000] [--workdir DIR] [--keep]
        [--workers N] [--pg-url postgresql://postgres@127.0.0.1:5432/test] [--no-pg] [--check]

Generates a realistic file (Indian numbers in the usual shapes: +91 with and without
spaces, 0-prefixed national, 91 without plus, dashes, brackets; some US and UK numbers;
~1% invalid, ~0.5% duplicates, ~0.2% on a DNC list; metadata columns including quoted
commas and unicode), then imports it:

* ``SQLite in-process``: ``create_campaign`` in a child process (no CLI start-up), with
  where the time went (read / map / rows / insert / setup+commit);
* ``SQLite via CLI``: ``vaani-campaigns campaign create ... --csv`` run as a user runs it,
  timed by the wall clock from spawn to exit, so the CLI's start-up (interpreter, imports) is
  in the figure; the database file is migrated beforehand (``db upgrade``, not timed);
* ``PostgreSQL via CLI``: the same command into a fresh, migrated PostgreSQL database.

Each row gives rows/s (data rows over seconds), the peak RSS summed over the process and its
worker, the target and PASS/FAIL; the counts of the three imports must agree. Targets
(issue 9): >= 100,000 rows/s into SQLite including start-up, >= 80,000 into PostgreSQL,
<= 400 MB. Compare with another commit side by side with ``benchmarks/ab.sh``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITIES = ["Bengaluru", "Mumbai", "Pune", "Chennai", "Kochi", "Hyderabad", "Kolkata", "Delhi"]
PROPERTIES = ["Prestige Lakeside", "Sobha Dream Acres", "Lodha Palava", "DLF The Crest"]
LANGS = ["Hindi", "English", "Tamil", "Kannada", "Malayalam", "Marathi", "Bengali", "Telugu"]
US_AREAS = [212, 213, 305, 312, 404, 415, 503, 602, 617, 646, 702, 713, 718, 786, 917]
FIRST = ["Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Sneha", "Arjun", "Kavya", "Isha"]
SQLITE_TARGET, PG_TARGET, PEAK_MB = 100_000, 80_000, 400  # rows/s, rows/s, MB (issue 9)
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
LAST = ["Sharma", "Nair", "Mehta", "Iyer", "Singh", "Reddy", "Patel", "Menon", "Gupta"]


def _phone(rng: random.Random, i: int) -> str:
    r = rng.random()
    if r < 0.01:
        return rng.choice(["12345", "", "n/a", "+91 12", "99999"])
    if r < 0.04:
        area = rng.choice(US_AREAS)
        return f"+1 ({area}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"
    if r < 0.06:
        return f"+44 7911 {rng.randint(100000, 999999)}"
    # unique Indian mobile per row (no accidental duplicates), in one of the usual shapes
    s = str(6_000_000_000 + i * 3)
    shape = rng.random()
    if shape < 0.3:
        return "+91" + s
    if shape < 0.5:
        return f"+91 {s[:5]} {s[5:]}"
    if shape < 0.65:
        return "0" + s
    if shape < 0.75:
        return "91" + s
    if shape < 0.9:
        return f"{s[:3]}-{s[3:6]}-{s[6:]}"
    return s


def generate(path: Path, rows: int, dnc_path: Path, seed: int = 1) -> None:
    rng = random.Random(seed)
    dnc: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Customer Name", "Phone", "Property Name", "City", "Preferred Language",
                    "Budget", "Notes"])  # fmt: skip
        for i in range(rows):
            phone = _phone(rng, i)
            if rng.random() < 0.005 and i > 10:
                phone = _phone(random.Random(seed), 0)  # a duplicate of an early row
            if rng.random() < 0.002 and phone.startswith("+91"):
                dnc.append(phone)
            note = rng.choice(["", "", "Call after 6 pm", "Wants 3BHK, east facing", "₹1.2 Cr"])
            w.writerow([
                f"{rng.choice(FIRST)} {rng.choice(LAST)}", phone, rng.choice(PROPERTIES),
                rng.choice(CITIES), rng.choice(LANGS), f"₹{rng.randint(40, 500)} L", note,
            ])  # fmt: skip
    dnc_path.write_text("\n".join(dnc) + "\n", encoding="utf-8")


def child(csv_path: Path, db_path: Path, dnc_path: Path, workers: int | None) -> None:
    sys.path.insert(0, str(ROOT))
    from campaigns.importer.importer import ImportOptions, create_campaign
    from storage.engine import make_engine
    from storage.migrate import upgrade

    engine = make_engine(f"sqlite:///{db_path}")
    upgrade(engine)
    t0, c0 = time.perf_counter(), time.process_time()
    campaign_id, stats = create_campaign(
        engine,
        csv_path,
        {"name": "bench", "agent_id": "agent", "status": "running"},
        ImportOptions(region="IN", dnc_file=dnc_path, workers=workers),
    )
    total = time.perf_counter() - t0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + children.ru_utime + children.ru_stime
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"total_s": total, "cpu_s": cpu, **stats.summary(campaign_id), "timings": stats.timings,
                      "maxrss_kb": usage.ru_maxrss}))  # fmt: skip


def _watch_rss(proc: subprocess.Popen[str]) -> int:
    """Peak of the summed RSS of ``proc`` and its children (worker processes), sampled."""
    import psutil

    peak = 0
    try:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            total = 0
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            peak = max(peak, total)
            time.sleep(0.05)
    except psutil.Error:
        pass
    return peak


@dataclass(frozen=True, kw_only=True)
class Run:
    """One import: its wall clock, peak RSS of the process tree and the counts it printed."""

    seconds: float
    cpu_s: float  # user + system of the process and its worker (not the database server)
    peak_mb: float
    counts: dict[str, int]
    timings: dict[str, float] | None = None


def _measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """Run ``cmd``: its wall clock, CPU seconds (its tree), peak RSS (MB) and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    peak = _watch_rss(proc)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode != 0:
        sys.exit(f"import failed ({' '.join(cmd[:4])}...):\n{err}")
    return seconds, cpu, peak / 1e6, out


COUNT_KEYS = ("rows", "blank_rows", "imported", "duplicates", "invalid", "suppressed")


def in_process(csv_path: Path, db_path: Path, dnc_path: Path, workers: int | None) -> Run:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    extra = ["--workers", str(workers)] if workers is not None else []
    _, _, peak, out = _measure(
        [sys.executable, __file__, "--child", str(csv_path), str(db_path), str(dnc_path), *extra]
    )
    r = json.loads(out.strip().splitlines()[-1])
    return Run(
        seconds=r["total_s"],
        cpu_s=r["cpu_s"],
        peak_mb=peak,
        counts={k: r[k] for k in COUNT_KEYS},
        timings=r["timings"],
    )


def via_cli(db_url: str, csv_path: Path, dnc_path: Path) -> Run:
    """The real command line, as a user types it (``python -m campaigns`` is the console
    script's module; this checkout's code, whichever venv runs it)."""
    cli = [sys.executable, "-m", "campaigns", "--db", db_url]
    env = {"PYTHONPATH": str(ROOT)}
    subprocess.run([*cli, "db", "upgrade"], check=True, capture_output=True, cwd=ROOT,
                   env={**os.environ, **env})  # fmt: skip
    seconds, cpu, peak, out = _measure(
        [*cli, "campaign", "create", "bench", "--csv", str(csv_path), "--dnc", str(dnc_path),
         "--agent-id", "agent", "--region", "IN", "--json"],
        env,
    )  # fmt: skip
    r = json.loads(out)
    return Run(seconds=seconds, cpu_s=cpu, peak_mb=peak, counts={k: r[k] for k in COUNT_KEYS})


@contextlib.contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database next to ``admin_url``'s, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bench_import_{os.getpid()}"
    url = make_url(admin_url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def print_table(data_rows: int, runs: list[tuple[str, Run, float]]) -> bool:
    print(f"\nimport of {data_rows:,} rows ({os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}: figures on a shared machine are noisy)")  # fmt: skip
    head = f"{'case':<22}{'seconds':>9}{'CPU s':>7}{'rows/s':>10}{'target':>11}{'peak MB':>9}{'<= MB':>7}  verdict"
    print(head)
    ok = True
    for label, run, target in runs:
        rate = data_rows / run.seconds
        passed = rate >= target and run.peak_mb <= PEAK_MB
        ok &= passed
        print(f"{label:<22}{run.seconds:>9.2f}{run.cpu_s:>7.2f}{rate:>10,.0f}{f'>= {target:,.0f}':>11}"
              f"{run.peak_mb:>9.0f}{PEAK_MB:>7}  {'PASS' if passed else 'FAIL'}")  # fmt: skip
    counts = {json.dumps(run.counts, sort_keys=True) for _, run, _ in runs}
    first = runs[0][1].counts
    print(f"counts {'identical' if len(counts) == 1 else 'DIFFER'}: "
          + ", ".join(f"{k} {first[k]:,}" for k in COUNT_KEYS))  # fmt: skip
    if len(counts) != 1:
        for label, run, _ in runs:
            print(f"  {label}: {run.counts}")
    t = runs[0][1].timings or {}
    if t:
        other = runs[0][1].seconds - sum(t.values())
        print("in-process time: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items())
              + f", setup+commit {other:.2f}s")  # fmt: skip
        print()
    return ok and len(counts) == 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes, in-process row only (default: the importer's choice)",
    )
    ap.add_argument("--pg-url", default=os.environ.get("VAANI_TEST_PG_URL", PG_ADMIN_URL))
    ap.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL row")
    ap.add_argument(
        "--check", action="store_true", help="exit 1 when a row fails (ab.sh needs exit 0)"
    )
    ap.add_argument("--child", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.workers)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_import_"))
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path, dnc_path = workdir / f"contacts_{args.rows}.csv", workdir / f"dnc_{args.rows}.txt"
    if not csv_path.exists():
        t = time.perf_counter()
        generate(csv_path, args.rows, dnc_path)
        print(f"generated {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - t:.1f}s")  # fmt: skip
    db_path = workdir / "bench.db"
    runs = [("SQLite in-process", in_process(csv_path, db_path, dnc_path, args.workers),
             SQLITE_TARGET)]  # fmt: skip
    cli_db = workdir / "cli.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{cli_db}{suffix}").unlink(missing_ok=True)
    runs.append(("SQLite via CLI", via_cli(f"sqlite:///{cli_db}", csv_path, dnc_path),
                 SQLITE_TARGET))  # fmt: skip
    if not args.no_pg:
        with pg_database(args.pg_url) as pg_url:
            runs.append(("PostgreSQL via CLI", via_cli(pg_url, csv_path, dnc_path), PG_TARGET))
    ok = print_table(args.rows, runs)
    if not args.keep and args.workdir is None:
        for p in workdir.iterdir():
            p.unlink()
        workdir.rmdir()
    sys.exit(1 if args.check and not ok else 0)


if __name__ == "__main__":
    main()
