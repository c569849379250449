"""Benchmark: import a generated contact CSV (default 1,000,000 rows) into SQLite.

    .venv/bin/python benchmarks/bench_import.py [--rows 1000000] [--workdir DIR] [--keep]
        [--workers N]

Generates a realistic file (Indian numbers in the usual shapes: +91 with and without
spaces, 0-prefixed national, 91 without plus, dashes, brackets; some US and UK numbers;
~1% invalid, ~0.5% duplicates, ~0.2% on a DNC list; metadata columns including quoted
commas and unicode), then runs ``campaign create`` logic in a child process and prints rows/s,
the child's peak RSS, and where the time went (read / parse+map / insert / commit).
Targets: >= 50,000 rows/s, peak RSS <= 400 MB.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITIES = ["Bengaluru", "Mumbai", "Pune", "Chennai", "Kochi", "Hyderabad", "Kolkata", "Delhi"]
PROPERTIES = ["Prestige Lakeside", "Sobha Dream Acres", "Lodha Palava", "DLF The Crest"]
LANGS = ["Hindi", "English", "Tamil", "Kannada", "Malayalam", "Marathi", "Bengali", "Telugu"]
US_AREAS = [212, 213, 305, 312, 404, 415, 503, 602, 617, 646, 702, 713, 718, 786, 917]
FIRST = ["Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Sneha", "Arjun", "Kavya", "Isha"]
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
            time.sleep(0.1)
    except psutil.Error:
        pass
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: the importer's choice)",
    )
    ap.add_argument("--child", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.workers)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_import_"))
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path, dnc_path = workdir / f"contacts_{args.rows}.csv", workdir / f"dnc_{args.rows}.txt"
    db_path = workdir / "bench.db"
    if not csv_path.exists():
        t = time.perf_counter()
        generate(csv_path, args.rows, dnc_path)
        print(f"generated {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - t:.1f}s")  # fmt: skip
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", str(csv_path), str(db_path), str(dnc_path),
         *(["--workers", str(args.workers)] if args.workers is not None else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    peak_tree = _watch_rss(proc)
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"import failed:\n{err}")
    r = json.loads(out.strip().splitlines()[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    tree_mb = peak_tree / 1e6
    rows = r["rows"] + r["blank_rows"]
    rate = rows / r["total_s"]
    t = r["timings"]
    other = r["total_s"] - sum(t.values())
    print(f"\nimport of {rows:,} rows into SQLite ({os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"{'figure':<28}{'value':>14}{'target':>14}")
    print(f"{'rows/s':<28}{rate:>14,.0f}{'>= 50,000':>14}")
    print(f"{'rows per CPU-second':<28}{rows / r['cpu_s']:>14,.0f}{'(all processes)':>20}")
    print(f"{'peak RSS, one process (MB)':<28}{peak_mb:>14.0f}{'<= 400':>14}")
    print(f"{'peak RSS, all processes (MB)':<28}{tree_mb:>14.0f}{'<= 400':>14}")
    print(f"{'total (s)':<28}{r['total_s']:>14.1f}")
    for name in ("read+map", "rows", "insert"):
        label = {"read+map": "  read CSV + map (waited)", "rows": "  dedupe/DNC/rows (main)",
                 "insert": "  insert (executemany)"}[name]  # fmt: skip
        print(f"{label:<28}{t[name]:>14.1f}")
    print(f"{'  setup+commit':<28}{other:>14.1f}")
    print(f"{'imported / dup / invalid / suppressed':<40}"
          f"{r['imported']:,} / {r['duplicates']:,} / {r['invalid']:,} / {r['suppressed']:,}")  # fmt: skip
    if not args.keep and args.workdir is None:
        for p in workdir.iterdir():
            p.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
