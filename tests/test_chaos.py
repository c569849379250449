"""The chaos soak: its checks catch what they claim to catch, and its short version passes.

The unit tests feed ``benchmarks.chaos_check`` hand-made ground truth, so that a double dial,
an overlap, an unfinished contact or a dial while paused is shown to fail the figures (a check
that cannot fail proves nothing). The slow test runs ``benchmarks/chaos.py --short`` as CI does:
both databases, both modes, every fault, kills and a sandbox restart, and reads its table.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.chaos_check import Figures, Truth, analyse, peak_live, share_429

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_800_000_000.0


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def call(
    number: str, start: float, end: float | None, call_id: str, *, agent: str = "a", **extra: Any
) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "agent_id": agent,
        "contact_number": number,
        "created_at": _iso(T0 + start),
        "ended_at": _iso(T0 + end) if end is not None else None,
        "final": end is not None,
        "response": "ok",
        **extra,
    }


def contact(number: str, attempts: int, state: str = "done") -> dict[str, str]:
    return {"phone_e164": number, "attempts": str(attempts), "state": state}


def attempt(
    number: str, state: str, call_id: str = "", finished: float | None = None
) -> dict[str, str]:
    return {
        "phone_e164": number,
        "state": state,
        "call_id": call_id,
        "finished_at": _iso(T0 + finished) if finished is not None else "",
    }


Rows = list[dict[str, Any]]


def figures(before: Rows, after: Rows, contacts: Rows, attempts: Rows, **kw: Any) -> Figures:
    truth = Truth(before=before, after=after, stats=[], restart_at=T0 + 50, end_at=T0 + 100)
    args: dict[str, Any] = {
        "agent_id": "a",
        "other_agent_id": "b",
        "max_attempts": 3,
        "dnc_numbers": (),
        "dnc_at": T0 + 1000,
        "paused": (T0 + 1000, T0 + 1001),
    }
    args.update(kw)
    return analyse(truth, contacts=contacts, attempts=attempts, **args)


def test_redials_within_the_attempts_shown_are_not_double_dials() -> None:
    calls = [call("+1", 1, 2, "c1"), call("+1", 10, 11, "c2")]
    f = figures(calls, [], [contact("+1", 2)], [attempt("+1", "finished", "c1")])
    assert (f.calls, f.double_dials, f.unfinished) == (2, 0, 0)


def test_more_calls_than_attempts_is_a_double_dial() -> None:
    calls = [call("+1", 1, 2, "c1"), call("+1", 10, 11, "c2"), call("+2", 1, 2, "c3")]
    f = figures(calls, [], [contact("+1", 1), contact("+2", 1)], [])
    assert f.double_dials == 1 and f.double_numbers == ("+1",)


def test_a_call_while_the_previous_one_is_live_is_a_double_dial() -> None:
    calls = [call("+1", 1, 5, "c1"), call("+1", 4, 6, "c2")]
    f = figures(calls, [], [contact("+1", 2)], [])
    assert f.double_dials == 1


def test_more_calls_than_the_attempt_cap_is_a_double_dial() -> None:
    calls = [call("+1", i * 10, i * 10 + 1, f"c{i}") for i in range(3)]
    assert figures(calls, [], [contact("+1", 5)], [], max_attempts=2).double_dials == 1


def test_only_a_call_forgotten_by_the_restarted_sandbox_is_set_apart() -> None:
    before = [call("+1", 49, None, "old", response="lost-drop")]
    after = [call("+1", 55, 56, "new")]
    forgotten = [attempt("+1", "not_placed", finished=53), attempt("+1", "finished", "new")]
    f = figures(before, after, [contact("+1", 1)], forgotten)
    assert (f.double_dials, f.forgotten, f.lost, f.reconciled) == (0, 1, 1, 0)
    # the same surplus call without a not-placed verdict after the restart: a double dial
    decided_early = [attempt("+1", "not_placed", finished=20), attempt("+1", "finished", "new")]
    f = figures(before, after, [contact("+1", 1)], decided_early)
    assert (f.double_dials, f.forgotten) == (1, 0)


def test_unfinished_dnc_paused_and_other_campaign_figures() -> None:
    calls = [call("+1", 5, 6, "c1"), call("+2", 20, 21, "c2"), call("+3", 1, 2, "x", agent="b")]
    f = figures(
        calls,
        [],
        [contact("+1", 1), contact("+2", 1, "retry_wait")],
        [],
        dnc_numbers=["+2"],
        dnc_at=T0 + 10,
        paused=(T0 + 4, T0 + 8),
    )
    assert (f.unfinished, f.dnc_late, f.paused_calls, f.other_campaign_calls) == (1, 1, 1, 1)


def test_peak_live_and_429_share() -> None:
    assert peak_live([(0, 2), (1, 3), (2, 4), (2.5, 3)]) == 3
    assert peak_live([]) == 0
    stats = [{"responses_by_status": {"200": 90, "429": 10}}, {"responses_by_status": {"200": 100}}]
    assert share_429(stats) == pytest.approx(0.05)


def run_short_soak(timeout: float) -> tuple[int, str]:
    """``chaos.py --short``; on timeout it gets SIGTERM, so that it stops its own processes."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "chaos.py"), "--short"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"chaos.py --short did not finish within {timeout} s:\n{out}")
    return proc.returncode, out


@pytest.mark.slow
@pytest.mark.timeout(720)
def test_short_chaos_soak_passes() -> None:
    """The CI version: exit 0, and every row shows 0 double dials and 0 unfinished contacts."""
    code, out = run_short_soak(timeout=600)
    assert code == 0, out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("db "))
    columns = lines[header].split()
    rows = [line.split() for line in lines[header + 1 : header + 5]]
    assert {(r[0], r[1]) for r in rows} == {
        (db, mode) for db in ("sqlite", "postgresql") for mode in ("one", "three")
    }, out
    for r in rows:
        assert len(r) == len(columns), out
        cell = dict(zip(columns, r, strict=True))
        assert cell["twice"] == "0" and cell["unfinished"] == "0", out
        assert int(cell["calls"]) > 0 and int(cell["kills"]) >= 2, out
        assert re.fullmatch(r"\d+/\d+", cell["peak/cap"]), out
        assert cell["result"] == "PASS", out
