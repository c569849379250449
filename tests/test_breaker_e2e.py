"""The circuit breaker end to end: the real CLI, the real sandbox over loopback, a real
SQLite file. A sandbox that fails most calls (``--faults call_failed=0.8``) trips the
campaign's breaker after about N calls: the daemon pauses it, collects the calls still live,
and ``run --until-done`` exits 3; ``campaign show`` says why, with the last errors; after
``campaign resume`` a healthy sandbox finishes it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from scheduler.sandbox.config import SandboxConfig, parse_faults
from scheduler.sandbox.state import SandboxState
from storage.engine import make_engine
from storage.models import Attempt
from storage.states import ATTEMPT_LIVE
from tests.cli_helpers import ALL_DAY, DAEMON_FAST, create_campaign, run_cli, write_contacts_csv
from tests.conftest import Sandbox

CONTACTS = 200
REASON = re.compile(r"circuit breaker: (\d+) of the last 20 calls failed \((\d+)% > 50%\)")


def _run(sb: Sandbox, db_url: str) -> tuple[int, str]:
    res = run_cli(
        "run",
        "--until-done",
        "--api-key",
        sb.api_key,
        "--base-url",
        sb.base_url,
        "--rate-limit",
        "20/s",
        "--max-concurrent",
        "10",
        *DAEMON_FAST,
        db_url=db_url,
        timeout=150,
    )
    return res.returncode, res.stderr


def _show(db_url: str) -> dict:  # type: ignore[type-arg]
    res = run_cli("campaign", "show", "1", "--json", db_url=db_url)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_failing_calls_trip_the_breaker_and_a_resume_finishes_the_campaign(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    rows = [{"phone": f"+9198{i:08d}", "name": f"Contact {i}"} for i in range(CONTACTS)]
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows)
    create_campaign(sqlite_url, csv_path, *ALL_DAY, "--retry-delay", "1s")
    broken = sandbox_factory(
        "--answer-rate", "1", "--call-seconds", "0.2-0.4", "--seed", "5",
        "--faults", "call_failed=0.8",
    )  # fmt: skip

    code, err = _run(broken, sqlite_url)
    assert code == 3, err  # like a campaign the API paused: "the service"
    assert broken.api_key not in err
    assert err.count("breaker_tripped") == 1, err  # logged once
    placed = broken.calls()
    assert 20 <= len(placed) <= 60, len(placed)  # about N, far fewer than the contacts

    shown = _show(sqlite_url)
    assert shown["status"] == "paused"
    m = REASON.fullmatch(shown["status_reason"] or "")
    assert m is not None and int(m.group(1)) > 10, shown["status_reason"]
    errors = shown["breaker_errors"]
    assert 1 <= len(errors) <= 5
    failed_ids = {c["call_id"] for c in placed if c["status"] == "failed"}
    assert all(e["call_id"] in failed_ids and e["status"] == "failed" for e in errors), errors
    assert shown["settings"]["breaker"] == {
        "enabled": True, "threshold_pct": 50, "window_calls": 20, "since": None,
    }  # fmt: skip
    # calls live at the trip were not hung up: every placed call has its outcome
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            live = conn.execute(
                select(func.count())
                .select_from(Attempt)
                .where(Attempt.state.in_([s.value for s in ATTEMPT_LIVE]))
            ).scalar_one()
            finished = conn.execute(
                select(func.count()).select_from(Attempt).where(Attempt.state == "finished")
            ).scalar_one()
    finally:
        engine.dispose()
    assert (live, finished) == (0, len(placed))

    text = run_cli("campaign", "show", "1", db_url=sqlite_url)
    assert text.returncode == 0, text.stderr
    assert f"status: paused ({shown['status_reason']})" in text.stdout
    assert "last errors seen by the circuit breaker" in text.stdout
    assert f"call {errors[0]['call_id']}: failed" in text.stdout
    assert "vaani-campaigns campaign resume 1" in text.stdout
    listed = run_cli("campaign", "list", db_url=sqlite_url)
    assert shown["status_reason"] in " ".join(listed.stdout.split()), listed.stdout

    resumed = run_cli("campaign", "resume", "1", db_url=sqlite_url)
    assert resumed.returncode == 0, resumed.stderr
    after = _show(sqlite_url)
    assert (after["status_reason"], after["breaker_errors"]) == (None, None)
    assert after["settings"]["breaker"]["since"] is not None  # a fresh window
    broken.stop()

    healthy = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.2-0.4", "--seed", "6")
    code, err = _run(healthy, sqlite_url)
    assert code == 0, err
    done = _show(sqlite_url)
    assert done["status"] == "completed", done["status_reason"]
    assert done["counts"]["done"] == CONTACTS
    assert done["outcomes"]["answered"] == CONTACTS
    answered_before = {c["contact_number"] for c in placed if c["status"] == "completed"}
    # only those not answered yet were called again, once each
    assert len(healthy.calls()) == CONTACTS - len(answered_before)


def test_sandbox_call_failed_fault_fails_placed_calls() -> None:
    """``--faults call_failed=P``: a placed call ends failed with probability P; the
    ``sandbox_outcome`` hook still forces its status."""
    faults = parse_faults("call_failed=1")
    assert faults.call_failed == 1.0 and not faults.any  # no request is refused for it
    state = SandboxState(SandboxConfig(answer_rate=1.0, seed=1, faults=faults))
    account = next(iter(state.accounts.values()))
    calls = [
        state.place(account, agent_id="a", contact_number=f"+1415555{i:04d}", name="X", metadata={})
        for i in range(5)
    ]
    assert {c.outcome for c in calls} == {"failed"}
    forced = state.place(
        account, agent_id="a", contact_number="+14155559999", name="X",
        metadata={"sandbox_outcome": "completed"},
    )  # fmt: skip
    assert forced.outcome == "completed"
    healthy = SandboxState(SandboxConfig(answer_rate=1.0, seed=1))
    acct = next(iter(healthy.accounts.values()))
    call = healthy.place(acct, agent_id="a", contact_number="+14155550000", name="X", metadata={})
    assert call.outcome == "completed"
    with pytest.raises(ValueError, match="call_failed"):
        parse_faults("call_failed=2")
