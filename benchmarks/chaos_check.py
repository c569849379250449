"""The chaos soak's checks: pure functions from the ground truth and the reports to figures.

Inputs are what the soak collected through public interfaces only: the sandbox's
``/sandbox/calls`` and ``/sandbox/stats`` (read just before its restart and at the end), and
the ``report`` CSVs (one row per contact, and ``--attempts``: one row per attempt).

A **double dial** (DESIGN.md invariants 1-3) is, for one E.164 number of our campaign:

* more calls placed by the sandbox for our agent than the contact's ``attempts`` in the report
  (a not-placed attempt gives its count back, so ``attempts`` is what the product believes it
  placed), or than ``--max-attempts``; a no-answer re-dialled within that count is legitimate;
* or a call placed while an earlier call to the same number was still live (created before the
  earlier one ended, by the sandbox's clock).

One case is counted apart, as **forgotten by the restart**: the sandbox keeps its history in
memory, so a call placed just before its restart whose trigger-call answer was lost cannot be
found in the new, empty history; the product then (as DESIGN.md specifies) decides "not placed"
and dials again. The real service does not forget its history, so this is the test harness's
doing, not a product bug; it is counted only when the report shows exactly that: a call of the
old sandbox linked to no attempt, and a ``not_placed`` attempt of that number decided after the
restart. Every other surplus call is a double dial.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TERMINAL = frozenset({"done", "exhausted", "invalid", "suppressed", "expired", "cancelled"})


def epoch(stamp: str | None) -> float | None:
    """An ISO 8601 time (``Z`` or an offset) as epoch seconds; None stays None."""
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, kw_only=True)
class Truth:
    """The sandbox's ground truth over its two lives: before and after the restart."""

    before: Sequence[Mapping[str, Any]]
    after: Sequence[Mapping[str, Any]]
    stats: Sequence[Mapping[str, Any]]
    restart_at: float  # epoch seconds of the kill
    end_at: float  # epoch seconds of the last read

    def calls(self, agent_id: str) -> list[tuple[int, Mapping[str, Any]]]:
        """(life, call) of ``agent_id``, life 0 before the restart and 1 after."""
        return [
            (life, c)
            for life, calls in enumerate((self.before, self.after))
            for c in calls
            if c.get("agent_id") == agent_id
        ]

    def interval(self, life: int, call: Mapping[str, Any]) -> tuple[float, float]:
        """When the call was live: a call still live at a kill of the sandbox ended there."""
        start = epoch(call["created_at"]) or 0.0
        end = epoch(call.get("ended_at")) if call.get("final") else None
        return start, end if end is not None else (self.restart_at if life == 0 else self.end_at)


@dataclass(frozen=True, kw_only=True)
class Figures:
    """One row of the soak's table."""

    calls: int
    double_dials: int
    double_numbers: tuple[str, ...]
    forgotten: int
    unfinished: int
    lost: int
    reconciled: int
    unseen: int
    share_429: float
    peak_live: int
    dnc_late: int
    paused_calls: int
    other_campaign_calls: int


def peak_live(intervals: Iterable[tuple[float, float]]) -> int:
    """Most intervals open at one instant (one ending as another starts: not both live)."""
    spans = list(intervals)
    events = sorted(
        [(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans],
        key=lambda ev: (ev[0], ev[1]),
    )
    live = peak = 0
    for _, step in events:
        live += step
        peak = max(peak, live)
    return peak


def share_429(stats: Iterable[Mapping[str, Any]]) -> float:
    """Share of API responses that were 429, over every life of the sandbox."""
    total = hits = 0
    for s in stats:
        by_status = s.get("responses_by_status", {})
        total += sum(int(v) for v in by_status.values())
        hits += int(by_status.get("429", 0))
    return hits / total if total else 0.0


def _doubles(
    truth: Truth,
    calls: list[tuple[int, Mapping[str, Any]]],
    contacts: Sequence[Mapping[str, str]],
    attempts: Sequence[Mapping[str, str]],
    max_attempts: int,
) -> tuple[int, list[str], int]:
    """(double dials, the numbers concerned, calls forgotten by the restart)."""
    allowed = {r["phone_e164"]: int(r["attempts"] or 0) for r in contacts}
    linked = {a["call_id"] for a in attempts if a.get("call_id")}
    late_not_placed: Counter[str] = Counter(
        a["phone_e164"]
        for a in attempts
        if a["state"] == "not_placed"
        # report times have whole seconds
        and (epoch(a.get("finished_at")) or 0) >= truth.restart_at - 1
    )
    by_number: dict[str, list[tuple[int, Mapping[str, Any]]]] = defaultdict(list)
    for life, call in calls:
        by_number[call["contact_number"]].append((life, call))
    doubles, numbers, forgotten = 0, [], 0
    for number, placed in by_number.items():
        placed.sort(key=lambda lc: lc[1]["created_at"])
        spans = [truth.interval(life, c) for life, c in placed]
        overlap = sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])
        unlinked_old = sum(1 for life, c in placed if life == 0 and c["call_id"] not in linked)
        excess = len(placed) - min(allowed.get(number, 0), max_attempts)
        forgiven = min(max(excess, 0), unlinked_old, late_not_placed[number])
        bad = max(excess - forgiven, 0) + overlap
        forgotten += forgiven
        if bad:
            doubles += bad
            numbers.append(number)
    return doubles, sorted(numbers), forgotten


def analyse(
    truth: Truth,
    *,
    agent_id: str,
    other_agent_id: str,
    contacts: Sequence[Mapping[str, str]],
    attempts: Sequence[Mapping[str, str]],
    max_attempts: int,
    dnc_numbers: Iterable[str],
    dnc_at: float,
    paused: tuple[float, float],
) -> Figures:
    """Every figure of one soak row (see the module docstring for the definitions)."""
    calls = truth.calls(agent_id)
    doubles, numbers, forgotten = _doubles(truth, calls, contacts, attempts, max_attempts)
    linked = {a["call_id"] for a in attempts if a.get("call_id")}
    seen = {c["call_id"] for _, c in calls}
    lost = [c for _, c in calls if str(c.get("response", "")).startswith("lost")]
    dnc = set(dnc_numbers)
    created = [(c["contact_number"], epoch(c["created_at"]) or 0.0) for _, c in calls]
    return Figures(
        calls=len(calls),
        double_dials=doubles,
        double_numbers=tuple(numbers),
        forgotten=forgotten,
        unfinished=sum(1 for r in contacts if r["state"] not in TERMINAL),
        lost=len(lost),
        reconciled=sum(1 for c in lost if c["call_id"] in linked),
        unseen=len(linked - seen),
        share_429=share_429(truth.stats),
        peak_live=peak_live(truth.interval(life, c) for life, c in calls),
        dnc_late=sum(1 for number, t in created if number in dnc and t > dnc_at),
        paused_calls=sum(1 for _, t in created if paused[0] < t < paused[1]),
        other_campaign_calls=len(truth.calls(other_agent_id)),
    )
