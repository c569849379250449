"""What a chaos soak is asked to do (``Plan``, ``Mode``) and what one soak found (``Row``).

``Row.failures`` is the single place where a row's PASS/FAIL is decided: every check the table
reports, with the name printed when it fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.chaos_check import Figures


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How big and how long one soak is (``--short`` makes a small one for CI)."""

    seconds: float
    kills: int
    contacts: int
    large_rows: int
    drain_seconds: float
    pause_seconds: float
    max_attempts: int = 3
    cap: int = 10  # --max-concurrent, all daemons together


@dataclass(frozen=True, kw_only=True)
class Mode:
    """How many daemons share the database, and which other programs run beside them.

    ``companions`` are extra ``python -m campaigns`` commands (argv after ``--db URL``) started
    with the daemons and stopped with them; the web console of issue 9 (``serve``) joins the
    three-daemon mode here once it exists.
    """

    name: str
    daemons: int
    companions: tuple[tuple[str, ...], ...] = ()


MODES = {"one": Mode(name="one", daemons=1), "three": Mode(name="three", daemons=3)}


@dataclass(frozen=True, kw_only=True)
class Row:
    """One line of the soak's table: the figures and what the soak itself managed to do."""

    db: str
    mode: str
    figures: Figures
    kills: int
    kills_planned: int
    restarted: bool
    large_import: str
    exits: tuple[int | None, ...]
    leaks: int
    cap: int
    notes: tuple[str, ...] = ()

    @property
    def failures(self) -> list[str]:
        f = self.figures
        checks = {
            "numbers called twice": f.double_dials == 0,
            "contacts not finished": f.unfinished == 0,
            "peak live calls over the cap": f.peak_live <= self.cap,
            "do-not-call number dialled after import": f.dnc_late == 0,
            "call placed while paused": f.paused_calls == 0,
            "draft campaign dialled": f.other_campaign_calls == 0,
            "fewer kills than planned": self.kills >= self.kills_planned,
            "sandbox restart": self.restarted,
            "large import": self.large_import.startswith("ok"),
            "daemon exit code after SIGTERM": all(c == 0 for c in self.exits),
            "API key leaked": self.leaks == 0,
        }
        return [name for name, ok in checks.items() if not ok]
