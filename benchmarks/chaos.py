"""A bounded chaos soak (issue 13): every fault on, daemons SIGKILLed, the sandbox restarted,
imports and pause/resume mid-campaign, on SQLite and PostgreSQL, with one and three daemons.

Each soak runs the real command line (``python -m campaigns``) against the sandbox with every
fault kind on (429, 5xx, lost answers, slow answers), and judges the result from the sandbox's
ground truth and the ``report`` CSVs (definitions in ``benchmarks/chaos_check.py``, timeline in
``benchmarks/chaos_soak.py``). The table has one row per database and mode; the script exits 1
when any check of any row fails, 0 when all pass.

    .venv/bin/python benchmarks/chaos.py --short                 # CI: about 2 minutes
    .venv/bin/python benchmarks/chaos.py --seconds 100 --kills 20  # per soak; 4 soaks

Columns: calls placed; numbers called twice (must be 0); contacts not finished (must be 0);
lost trigger-call answers and how many were reconciled to their call; the 429 share of all
API responses; peak live calls (sandbox intervals) against ``--max-concurrent``; daemon kills;
do-not-call numbers dialled after their import and calls placed while paused (both must be 0).
``campaign edit`` and webhook events do not exist yet (issues 7-9): their columns say n/a.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.chaos_plan import MODES, Plan, Row  # noqa: E402
from benchmarks.chaos_soak import soak  # noqa: E402  # noqa: E402

#: ``campaign edit`` (issue 7) and events out (issue 9) are not in the product yet.
NOT_YET = "n/a"
HEADER = (
    "db", "mode", "calls", "twice", "unfinished", "lost/rec", "429", "peak/cap", "kills",
    "dnc-late", "paused", "edit", "webhooks", "result",
)  # fmt: skip


def plan_from(opts: argparse.Namespace) -> Plan:
    """The size of each soak: ``--short`` defaults, overridden by explicit flags."""
    seconds = opts.seconds if opts.seconds is not None else (15.0 if opts.short else 100.0)
    kills = opts.kills if opts.kills is not None else (3 if opts.short else 20)
    return Plan(
        seconds=seconds,
        kills=kills,
        contacts=opts.contacts or max(40, int(seconds * 3)),
        large_rows=opts.large_rows or (5_000 if opts.short else 200_000),
        drain_seconds=90.0 if opts.short else 180.0,
        pause_seconds=2.0 if opts.short else 5.0,
    )


def cells(row: Row) -> tuple[str, ...]:
    """One table row as text."""
    f = row.figures
    return (
        row.db, row.mode, str(f.calls), str(f.double_dials), str(f.unfinished),
        f"{f.lost}/{f.reconciled}", f"{f.share_429:.1%}", f"{f.peak_live}/{row.cap}",
        str(row.kills), str(f.dnc_late), str(f.paused_calls), NOT_YET, NOT_YET,
        "PASS" if not row.failures else "FAIL",
    )  # fmt: skip


def print_table(rows: list[Row]) -> None:
    """The table, then one block of notes per row (failures first)."""
    lines = [HEADER, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    for line in lines:
        print("  ".join(cell.rjust(w) if i > 1 else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(line, widths, strict=True))))  # fmt: skip
    for r in rows:
        print(f"\n{r.db} / {r.mode}: large import {r.large_import}; daemon exits {list(r.exits)}")
        for failure in r.failures:
            print(f"  FAIL: {failure}")
        for note in r.notes:
            print(f"  {note}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (a function so that a test can call it)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--short", action="store_true", help="the CI version (about 2 minutes)")
    ap.add_argument("--seconds", type=float, help="chaos phase of each soak, in seconds")
    ap.add_argument("--kills", type=int, help="daemon SIGKILLs per soak")
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--mode", choices=("one", "three", "both"), default="both")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--contacts", type=int, help="contacts of the dialled campaign")
    ap.add_argument("--large-rows", type=int, help="rows of the campaign imported mid-run")
    ap.add_argument("--keep", type=Path, help="keep logs, reports and databases here")
    return ap.parse_args(argv)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C: every soak's ``finally`` kills its processes and drops its
    database."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run every soak asked for, print the table, return the exit code."""
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    plan = plan_from(opts)
    dbs = ("sqlite", "postgresql") if opts.db == "both" else (opts.db,)
    modes = ("one", "three") if opts.mode == "both" else (opts.mode,)
    print(
        f"chaos soak: {plan.seconds:.0f} s of chaos per soak, {plan.kills} kills, "
        f"{plan.contacts} contacts, {plan.large_rows:,}-row import, seed {opts.seed}",
        flush=True,
    )
    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vaani-chaos-") as tmp:
        base = opts.keep or Path(tmp)
        for i, (db, mode) in enumerate((d, m) for d in dbs for m in modes):
            rows.append(soak(db, MODES[mode], plan, opts.seed + i, base / f"{db}-{mode}"))
            print(f"  {db} / {mode}: {cells(rows[-1])[-1]}", flush=True)
    print(f"\n(total {time.monotonic() - started:.0f} s)\n")
    print_table(rows)
    return 1 if any(r.failures for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
