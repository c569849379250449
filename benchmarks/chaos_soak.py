"""One chaos soak: one database, one mode (one daemon or three), every fault on, then the checks.

Timeline, as fractions of ``plan.seconds`` (the chaos phase), while the daemons dial campaign 1:

* 0.15: ``dnc import`` of the last contacts of campaign 1 (not dialled yet: dispatch follows
  import order); none of them may be called after the import returned;
* 0.25: a second, large campaign is created (``campaign create --draft``) in the background,
  so that its import competes with the daemons for the database;
* 0.45: the sandbox is read (ground truth), SIGKILLed and started again on the same port;
* 0.60: ``campaign pause``, then ``campaign resume`` a few seconds later; no call may be
  placed from ``PAUSE_SETTLE_S`` after the pause returned until the resume;
* at ``plan.kills`` random instants: a random daemon is SIGKILLed and restarted at once
  (none in the few seconds before the sandbox restart, so that the soak measures daemon
  recovery and not the sandbox forgetting calls; see ``chaos_check``).

Then the daemons finish the campaign (bounded by ``plan.drain_seconds``), are stopped with
SIGTERM, and the reports are exported with the CLI. Every process is killed in a ``finally``.
"""

from __future__ import annotations

import csv
import json
import random
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.chaos_check import Figures, Truth, analyse
from benchmarks.chaos_plan import Mode, Plan, Row
from benchmarks.chaos_procs import (
    Daemons,
    Procs,
    Sandbox,
    campaigns_cmd,
    create_pg_database,
    drop_pg_database,
    run,
    run_json,
)
from tests.cli_helpers import ALL_DAY
from tests.conftest import free_port

AGENT = "agent-chaos"
OTHER_AGENT = "agent-chaos-large"
FAULTS = "429=0.04,5xx=0.03,lost=0.03,slow=0.02"
SANDBOX_LIMIT = 40  # requests/s per key at the sandbox; the daemons share it
PAUSE_SETTLE_S = 2.5  # trigger-calls claimed just before a pause may still go out
WAITING = ("pending", "dialing", "awaiting_outcome", "retry_wait")


def _contacts_csv(path: Path, n: int, prefix: str) -> list[str]:
    phones = [f"+91{prefix}{i:08d}" for i in range(n)]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Phone", "Customer Name", "Plan"])
        w.writerows([p, f"Customer {i}", ("gold", "silver")[i % 2]] for i, p in enumerate(phones))
    return phones


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@dataclass
class _Soak:
    """The mutable state of one run; see the module docstring for the timeline."""

    db: str
    plan: Plan
    mode: Mode
    rng: random.Random
    work: Path
    procs: Procs = field(default_factory=Procs)
    api_key: str = field(default_factory=lambda: f"chaos-{secrets.token_hex(8)}")
    dnc: list[str] = field(default_factory=list)
    dnc_at: float = float("inf")
    restart_at: float = float("inf")
    before: tuple[list[dict[str, Any]], dict[str, Any]] | None = None
    paused: tuple[float, float] = (0.0, 0.0)
    large: subprocess.Popen[bytes] | None = None
    events: list[tuple[float, Callable[[], None]]] = field(default_factory=list)
    t0: float = 0.0

    def elapsed(self) -> float:
        """Seconds since the chaos phase began."""
        return time.monotonic() - self.t0

    def daemon_argv(self, sb: Sandbox) -> tuple[str, ...]:
        rate = max(1, (SANDBOX_LIMIT - 4) // self.mode.daemons)
        return (
            "run", "--api-key", self.api_key, "--base-url", sb.base_url,
            "--rate-limit", f"{rate}/s", "--max-concurrent", str(self.plan.cap),
            "--poll-interval", "0.5", "--outcome-deadline", "4s", "--reconcile-grace", "1s",
            "--request-timeout", "1.5", "--daily-cap", "0", "--no-progress", "--log-json",
        )  # fmt: skip

    def run(self) -> Row:
        plan, work = self.plan, self.work
        phones = _contacts_csv(work / "contacts.csv", plan.contacts, "98")
        _contacts_csv(work / "large.csv", plan.large_rows, "97")
        self.dnc = phones[-max(3, plan.contacts // 20) :]
        (work / "dnc.txt").write_text("\n".join(self.dnc) + "\n")
        run(self.db, "db", "upgrade")
        run_json(
            self.db, "campaign", "create", "chaos", "--csv", str(work / "contacts.csv"),
            "--agent-id", AGENT, *ALL_DAY, "--max-attempts", str(plan.max_attempts),
            "--retry-delay", "2s",
        )  # fmt: skip
        sb = Sandbox(
            port=free_port(),
            api_key=self.api_key,
            args=("--faults", FAULTS, "--slow-seconds", "2", "--rate-limit",
                  f"{SANDBOX_LIMIT}/s", "--answer-rate", "0.7", "--call-seconds", "0.5-1.5"),
            procs=self.procs,
            log=work / "sandbox.log",
        )  # fmt: skip
        seed = self.rng.randrange(1 << 30)
        sb.start(seed)
        daemons = Daemons(db=self.db, argv=self.daemon_argv(sb), procs=self.procs, work=work)
        daemons.start(self.mode.daemons)
        for i, argv in enumerate(self.mode.companions):
            self.procs.start(campaigns_cmd(self.db, *argv), work / f"companion{i}.log")
        restarted = self._chaos(sb, daemons, seed)
        self._drain()
        after = sb.truth()
        end_at = time.time()
        exits = tuple(daemons.stop())
        return self._collect(daemons, after, end_at, exits, restarted)

    def _events(self, sb: Sandbox, seed: int) -> list[tuple[float, Callable[[], None]]]:
        """The timed events (offsets from the start of the chaos phase) but the kills."""
        s = self.plan.seconds

        def restart() -> None:
            self.before = sb.truth()
            sb.kill()
            self.restart_at = time.time()
            time.sleep(1.5)  # down for a moment: the daemons see refused connections
            sb.start(seed + 1)

        def resume() -> None:
            self.paused = (self.paused[0], time.time())
            run(self.db, "campaign", "resume", "1")

        def pause() -> None:
            run(self.db, "campaign", "pause", "1")
            self.paused = (time.time() + PAUSE_SETTLE_S, float("inf"))
            self.events.append((self.elapsed() + self.plan.pause_seconds, resume))

        def dnc() -> None:
            run_json(self.db, "dnc", "import", str(self.work / "dnc.txt"), "--reason", "chaos")
            self.dnc_at = time.time()

        def large() -> None:
            argv = campaigns_cmd(
                self.db, "campaign", "create", "large", "--csv", str(self.work / "large.csv"),
                "--agent-id", OTHER_AGENT, *ALL_DAY, "--draft", "--json",
            )  # fmt: skip
            self.large = self.procs.start(argv, self.work / "large.json")

        return [(0.15 * s, dnc), (0.25 * s, large), (0.45 * s, restart), (0.6 * s, pause)]

    def _kill_times(self) -> list[float]:
        s, quiet = self.plan.seconds, (0.45 * self.plan.seconds - 4, 0.45 * self.plan.seconds + 2)
        times: list[float] = []
        while len(times) < self.plan.kills:
            t = self.rng.uniform(0.05 * s, 0.95 * s)
            if not quiet[0] <= t <= quiet[1]:
                times.append(t)
        return sorted(times)

    def _chaos(self, sb: Sandbox, daemons: Daemons, seed: int) -> bool:
        self.events = self._events(sb, seed)
        kills = self._kill_times()
        self.t0 = time.monotonic()
        restarted = False
        while (now := self.elapsed()) < self.plan.seconds or self.events:
            if now > self.plan.seconds + 60:
                raise RuntimeError("chaos events did not run within a minute of the deadline")
            while kills and kills[0] <= now:
                kills.pop(0)
                daemons.kill_and_restart(self.rng.randrange(self.mode.daemons))
            for item in [e for e in self.events if e[0] <= now]:
                self.events.remove(item)
                item[1]()
                restarted = restarted or self.before is not None
            time.sleep(0.05)
        return restarted and sb.proc is not None and sb.proc.poll() is None

    def _drain(self) -> None:
        deadline = time.monotonic() + self.plan.drain_seconds
        while time.monotonic() < deadline:
            counts = run_json(self.db, "campaign", "show", "1")["counts"]
            if not any(counts[s] for s in WAITING):
                return
            time.sleep(1.0)

    def _collect(
        self,
        daemons: Daemons,
        after: tuple[list[dict[str, Any]], dict[str, Any]],
        end_at: float,
        exits: tuple[int | None, ...],
        restarted: bool,
    ) -> Row:
        work = self.work
        run(self.db, "report", "1", "--out", str(work / "report.csv"), "--no-bom")
        run(self.db, "report", "1", "--attempts", "--out", str(work / "attempts.csv"), "--no-bom")
        before = self.before or ([], {})
        for name, (calls, stats) in (("before", before), ("after", after)):
            dump = {"calls": calls, "stats": stats, "restart_at": self.restart_at}
            (work / f"truth-{name}.json").write_text(json.dumps(dump))
        truth = Truth(
            before=before[0], after=after[0], stats=[s for s in (before[1], after[1]) if s],
            restart_at=self.restart_at, end_at=end_at,
        )  # fmt: skip
        figures = analyse(
            truth, agent_id=AGENT, other_agent_id=OTHER_AGENT,
            contacts=_read_csv(work / "report.csv"), attempts=_read_csv(work / "attempts.csv"),
            max_attempts=self.plan.max_attempts, dnc_numbers=self.dnc, dnc_at=self.dnc_at,
            paused=self.paused,
        )  # fmt: skip
        leaks = sum(
            p.read_bytes().count(self.api_key.encode()) for p in work.iterdir() if p.is_file()
        )
        return Row(
            db=self.db.split(":", 1)[0], mode=self.mode.name, figures=figures,
            kills=daemons.kills, kills_planned=self.plan.kills, restarted=restarted,
            large_import=self._large_result(), exits=exits, leaks=leaks, cap=self.plan.cap,
            notes=self._notes(figures, work),
        )  # fmt: skip

    def _large_result(self) -> str:
        if self.large is None:
            return "not started"
        try:
            code = self.large.wait(timeout=300)
        except subprocess.TimeoutExpired:
            return "timed out"
        text = (self.work / "large.json").read_text(errors="replace")
        if code != 0:
            return f"exit {code}: {text[-300:]}"
        shown = run_json(self.db, "campaign", "show", "2")
        return f"ok {shown['total']:,} rows" if shown["total"] == self.plan.large_rows else text

    def _notes(self, f: Figures, work: Path) -> tuple[str, ...]:
        tracebacks = sum(
            p.read_text(errors="replace").count("Traceback") for p in work.glob("d*.log")
        )
        notes = [
            f"forgotten by the sandbox restart (re-dialled, not counted twice): {f.forgotten}",
            f"calls placed between the last ground-truth read and the restart: {f.unseen}",
            f"tracebacks in daemon logs: {tracebacks}",
        ]
        if f.double_numbers:
            notes.append(f"numbers called twice: {', '.join(f.double_numbers[:10])}")
        return tuple(notes)


def soak(db_kind: str, mode: Mode, plan: Plan, seed: int, work: Path) -> Row:
    """Run one soak on a fresh SQLite file or PostgreSQL database (dropped afterwards)."""
    work.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{work / 'chaos.db'}" if db_kind == "sqlite" else create_pg_database()
    state = _Soak(db=db, plan=plan, mode=mode, rng=random.Random(seed), work=work)
    try:
        return state.run()
    finally:
        state.procs.kill_all()
        if db_kind != "sqlite":
            drop_pg_database(db)
