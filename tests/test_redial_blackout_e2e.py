"""Re-dial policy and blackout dates end to end: the real CLI creates the campaigns, the real
daemon calls the real sandbox over loopback, and the sandbox's own call log is the truth.

Delays are seconds here (``VAANI_MIN_RETRY_DELAY`` lowers the floor for tests), so the
differences between outcomes and schedule steps show within one short run.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from storage.engine import make_engine
from tests.cli_helpers import (
    ALL_DAY,
    DAEMON_FAST,
    contacts_by_phone,
    create_campaign,
    run_cli,
    start_cli,
    write_contacts_csv,
)
from tests.conftest import Sandbox

pytestmark = pytest.mark.slow
KOLKATA = ZoneInfo("Asia/Kolkata")


def _daemon(sb: Sandbox, *head: str) -> tuple[str, ...]:
    return (*head, "--api-key", sb.api_key, "--base-url", sb.base_url, *DAEMON_FAST)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _calls_by_number(sb: Sandbox) -> dict[str, list[dict[str, Any]]]:
    calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in sorted(sb.calls(), key=lambda c: c["created_at"]):
        calls[call["contact_number"]].append(call)
    return calls


def _gaps(calls: list[dict[str, Any]]) -> list[float]:
    """Seconds from each call's end to the next call to the same number."""
    return [
        (_instant(b["created_at"]) - _instant(a["ended_at"])).total_seconds()
        for a, b in itertools.pairwise(calls)
    ]


def test_each_outcome_and_each_schedule_step_waits_its_own_delay(
    sandbox_factory: Any, sqlite_url: str, tmp_path: Path
) -> None:
    sb = sandbox_factory("--answer-rate", "0", "--call-seconds", "0.2-0.4", "--seed", "5")
    per_outcome = write_contacts_csv(
        tmp_path / "a.csv",
        [
            {"phone": "+919800000001", "name": "Busy", "sandbox_outcome": "busy"},
            {"phone": "+919800000002", "name": "Away", "sandbox_outcome": "no_answer"},
            {"phone": "+919800000003", "name": "Machine", "sandbox_outcome": "voicemail"},
        ],
    )
    create_campaign(
        sqlite_url, per_outcome, *ALL_DAY,
        "--retry", "busy=2s,no_answer=7s", "--no-redial-voicemail", "--max-attempts", "2",
    )  # fmt: skip
    escalating = write_contacts_csv(
        tmp_path / "b.csv",
        [
            {"phone": "+919800000011", "name": "Away Again", "sandbox_outcome": "no_answer"},
            {"phone": "+919800000012", "name": "Busy Again", "sandbox_outcome": "busy"},
        ],
    )
    create_campaign(
        sqlite_url, escalating, *ALL_DAY, "--retry-schedule", "2s,6s", "--retry", "busy=1s",
        "--max-attempts", "3", name="escalating",
    )  # fmt: skip

    res = run_cli(*_daemon(sb, "run", "--until-done"), db_url=sqlite_url, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]

    calls = _calls_by_number(sb)
    busy, away = _gaps(calls["+919800000001"]), _gaps(calls["+919800000002"])
    assert len(busy) == len(away) == 1  # two calls each: --max-attempts 2
    assert 2 <= busy[0] < 7, busy  # busy's own delay, not no_answer's
    assert away[0] >= 7, away
    assert len(calls["+919800000003"]) == 1  # --no-redial-voicemail
    steps = _gaps(calls["+919800000011"])
    assert len(steps) == 2 and 2 <= steps[0] < 6 <= steps[1], steps  # 2s, then 6s
    own = _gaps(calls["+919800000012"])
    assert len(own) == 2 and all(1 <= g < 6 for g in own), own  # busy=1s beats the schedule

    engine = make_engine(sqlite_url)
    contacts = contacts_by_phone(engine)
    engine.dispose()
    assert contacts["+919800000001"].state == "exhausted"  # one budget for every outcome
    assert contacts["+919800000011"].attempts == 3
    assert (contacts["+919800000003"].state, contacts["+919800000003"].reason) == (
        "done",
        "voicemail is not re-dialled",
    )
    shown = " ".join(run_cli("campaign", "show", "1", db_url=sqlite_url).stdout.split())
    assert "retry busy=2s,no_answer=7s · voicemail not re-dialled" in shown


def test_no_call_on_a_skip_date_in_the_contacts_zone(
    sandbox_factory: Any, sqlite_url: str, tmp_path: Path
) -> None:
    if datetime.now(KOLKATA).time() >= datetime.min.replace(hour=23, minute=59).time():
        time.sleep(61)  # the test needs the same local date from start to end
    today = datetime.now(KOLKATA).date()
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.2-0.4", "--seed", "6")
    dates = tmp_path / "closed.txt"
    dates.write_text(f"# closed today\n{today.isoformat()}\n", encoding="utf-8")
    closed = write_contacts_csv(
        tmp_path / "closed.csv", [{"phone": "+919800000021", "name": "Closed"}]
    )
    create_campaign(sqlite_url, closed, *ALL_DAY, "--skip-dates-file", str(dates), name="shut")
    control = write_contacts_csv(
        tmp_path / "open.csv", [{"phone": "+919800000022", "name": "Open"}]
    )
    create_campaign(sqlite_url, control, *ALL_DAY, name="open")

    proc = start_cli(*_daemon(sb, "run"), db_url=sqlite_url, log=tmp_path / "daemon.log")
    engine = make_engine(sqlite_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            contacts = contacts_by_phone(engine)
            deferred = contacts["+919800000021"].next_attempt_at
            later = deferred is not None and deferred > datetime.now(UTC) + timedelta(minutes=1)
            if contacts["+919800000022"].state == "done" and later:
                break
            time.sleep(0.2)
        else:
            pytest.fail((tmp_path / "daemon.log").read_text()[-3000:])
        time.sleep(2)  # a few more daemon ticks: still nothing for the closed contact
        numbers = {c["contact_number"] for c in sb.calls()}
        assert numbers == {"+919800000022"}
        # the dial decision deferred it to the window's start tomorrow, local time
        tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), KOLKATA)
        assert contacts_by_phone(engine)["+919800000021"].next_attempt_at == tomorrow.astimezone(
            UTC
        )
        assert contacts_by_phone(engine)["+919800000021"].state == "pending"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        engine.dispose()
    shown = " ".join(run_cli("campaign", "show", "1", db_url=sqlite_url).stdout.split())
    assert f"no calls on {today.isoformat()}" in shown


def test_the_settings_round_trip_and_show(db_url: str, tmp_path: Path) -> None:
    csv_path = write_contacts_csv(tmp_path / "c.csv", [{"phone": "+919800000031", "name": "H"}])
    create_campaign(
        db_url, csv_path, "--holidays", "in", "--draft", "--retry", "failed=30m",
        "--retry-schedule", "30m,2h,1d", "--skip-dates", "2027-01-01,2026-12-25",
    )  # fmt: skip
    shown = " ".join(run_cli("campaign", "show", "1", db_url=db_url).stdout.split())
    assert (
        "retry failed=30m · retry schedule 30m,2h,1d · no calls on 2026-12-25, 2027-01-01 · "
        "no calls on public holidays (IN, contact's country)"
    ) in shown
    settings = json.loads(run_cli("campaign", "show", "1", "--json", db_url=db_url).stdout)
    assert {k: settings["settings"][k] for k in ("retry_schedule_s", "skip_dates", "holidays")} == {
        "retry_schedule_s": [1800, 7200, 86400],
        "skip_dates": ["2026-12-25", "2027-01-01"],
        "holidays": "IN",
    }
    bad = run_cli(
        *("campaign", "create", "x", "--csv", str(csv_path), "--agent-id", "a"),
        *("--holidays", "INDIA"),
        db_url=db_url,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--holidays: 'INDIA' is not a country the holidays package knows" in bad.stderr
