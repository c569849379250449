"""The daemon end to end: the real CLI, the real sandbox over loopback, a real database.

Ground truth is the sandbox's ``/sandbox/calls``: every call it was asked to place.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from storage.engine import make_engine
from tests.cli_helpers import (
    ALL_DAY,
    DAEMON_FAST,
    attempts,
    contacts_by_phone,
    create_campaign,
    run_cli,
    start_cli,
    write_contacts_csv,
)
from tests.conftest import Sandbox

pytestmark = pytest.mark.slow


def indian_rows(n: int, start: int = 0) -> list[dict[str, str]]:
    return [
        {
            "Phone": f"+9198{start + i:08d}",
            "Customer Name": f"Customer {start + i}",
            "Property Name": f"Tower {(start + i) % 7}, Flat {i}",
        }
        for i in range(n)
    ]


def daemon_args(sb: Sandbox, rate: str, *extra: str, until_done: bool = False) -> tuple[str, ...]:
    """``run`` against the sandbox ``sb`` at ``rate``, with the fast test timings."""
    head = ("run", "--until-done") if until_done else ("run",)
    return (
        *head,
        "--api-key",
        sb.api_key,
        "--base-url",
        sb.base_url,
        "--rate-limit",
        rate,
        *DAEMON_FAST,
        *extra,
    )


def run_until_done(sb: Sandbox, db_url: str, *extra: str, timeout: float = 150) -> tuple[int, str]:
    res = run_cli(
        *daemon_args(sb, "100/s", "--max-concurrent", "100", *extra, until_done=True),
        db_url=db_url,
        timeout=timeout,
    )
    return res.returncode, res.stderr


def sandbox_calls_by_number(sb: Sandbox) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    out: dict[str, list[dict]] = defaultdict(list)  # type: ignore[type-arg]
    for call in sb.calls():
        out[call["contact_number"]].append(call)
    return out


def assert_answered_exactly_once(sb: Sandbox, db_url: str, n: int) -> None:
    engine = make_engine(db_url)
    contacts = contacts_by_phone(engine)
    calls = sandbox_calls_by_number(sb)
    assert len(contacts) == n
    assert {c.state for c in contacts.values()} == {"done"}, Counter(
        c.state for c in contacts.values()
    )
    assert all(len(calls[p]) == 1 for p in contacts), {
        p: len(calls[p]) for p in contacts if len(calls[p]) != 1
    }
    finished = {a.call_id: a for a in attempts(engine) if a.state == "finished"}
    for phone, contact in contacts.items():
        truth = calls[phone][0]
        att = finished[truth["call_id"]]
        assert contact.outcome == "answered"
        assert att.outcome == "answered"
        assert att.entity == truth["entity"]
        assert att.summary == truth["summary"]
        assert att.contact_id == contact.id
    engine.dispose()


@pytest.mark.parametrize(
    "faults",
    ["", "429=0.2", "5xx=0.1", "lost=0.15", "slow=0.1", "429=0.1,5xx=0.05,lost=0.05,slow=0.05"],
)
def test_every_contact_answered_exactly_once_under_faults(
    faults: str, sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    args = ["--answer-rate", "1", "--call-seconds", "0.2-0.6", "--seed", "3"]
    if faults:
        args += ["--faults", faults, "--slow-seconds", "2"]
    sb = sandbox_factory(*args)
    n = 40
    csv_path = write_contacts_csv(tmp_path / "c.csv", indian_rows(n))
    create_campaign(sqlite_url, csv_path, *ALL_DAY)
    code, err = run_until_done(sb, sqlite_url, "--request-timeout", "1")
    assert code == 0, err
    assert sb.api_key not in err
    assert_answered_exactly_once(sb, sqlite_url, n)


def test_postgresql_end_to_end(sandbox_factory, pg_url: str, tmp_path: Path) -> None:
    """The fault matrix above runs on SQLite; this is the same check on PostgreSQL."""
    db_url = pg_url
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.2-0.5", "--faults", "lost=0.1")
    csv_path = write_contacts_csv(tmp_path / "c.csv", indian_rows(30))
    create_campaign(db_url, csv_path, *ALL_DAY)
    code, err = run_until_done(sb, db_url)
    assert code == 0, err
    assert_answered_exactly_once(sb, db_url, 30)


def test_two_daemons_never_double_dial(sandbox_factory, db_url: str, tmp_path: Path) -> None:
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.2-0.5", "--seed", "5")
    csv_path = write_contacts_csv(tmp_path / "c.csv", indian_rows(60))
    create_campaign(db_url, csv_path, *ALL_DAY)
    # 10/s: the campaign lasts about 6 s, longer than a daemon's start-up on a loaded machine
    # (at 30/s the first daemon up placed all 60 calls before the second had started)
    common = daemon_args(sb, "10/s", until_done=True)
    procs = [start_cli(*common, db_url=db_url, log=tmp_path / f"d{i}.log") for i in range(2)]
    for p in procs:
        assert p.wait(timeout=150) == 0, (tmp_path / "d0.log").read_text()
    assert_answered_exactly_once(sb, db_url, 60)
    # both daemons did part of the work
    engine = make_engine(db_url)
    assert len({a.daemon_id for a in attempts(engine)}) == 2
    engine.dispose()


def test_sigkill_and_restart_never_calls_twice(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.5-1.5", "--seed", "9")
    n = 80
    csv_path = write_contacts_csv(tmp_path / "c.csv", indian_rows(n))
    create_campaign(sqlite_url, csv_path, *ALL_DAY)
    args = daemon_args(sb, "20/s")
    rng = random.Random(42)
    for i in range(4):
        proc = start_cli(*args, db_url=sqlite_url, log=tmp_path / f"run{i}.log")
        time.sleep(rng.uniform(0.8, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    code, err = run_until_done(sb, sqlite_url)
    assert code == 0, err
    assert_answered_exactly_once(sb, sqlite_url, n)


def test_wrong_api_key_consumes_nothing(sandbox_factory, sqlite_url: str, tmp_path: Path) -> None:
    sb = sandbox_factory("--answer-rate", "1")
    csv_path = write_contacts_csv(tmp_path / "c.csv", indian_rows(5))
    create_campaign(sqlite_url, csv_path, *ALL_DAY)
    wrong = "wrong-key-7d1e0c55"
    res = run_cli(
        "run",
        "--until-done",
        "--api-key",
        wrong,
        "--base-url",
        sb.base_url,
        *DAEMON_FAST,
        db_url=sqlite_url,
        timeout=60,
    )
    assert res.returncode == 3, res.stderr
    assert "401" in res.stderr and "API key" in res.stderr
    assert wrong not in res.stderr + res.stdout
    assert "Traceback" not in res.stderr
    engine = make_engine(sqlite_url)
    contacts = contacts_by_phone(engine)
    assert {c.state for c in contacts.values()} == {"pending"}
    assert {c.attempts for c in contacts.values()} == {0}
    assert sb.calls() == []
    engine.dispose()


def test_redial_policy_with_no_answers(sandbox_factory, sqlite_url: str, tmp_path: Path) -> None:
    sb = sandbox_factory("--answer-rate", "0", "--call-seconds", "0.1-0.3")
    csv_path = write_contacts_csv(tmp_path / "c.csv", indian_rows(6))
    create_campaign(sqlite_url, csv_path, *ALL_DAY, "--max-attempts", "3", "--retry-delay", "2s")
    code, err = run_until_done(sb, sqlite_url)
    assert code == 0, err
    calls = sandbox_calls_by_number(sb)
    assert len(calls) == 6
    for phone, placed in calls.items():
        assert len(placed) == 3, (phone, len(placed))
        times = sorted(
            datetime.fromisoformat(c["created_at"].replace("Z", "+00:00")) for c in placed
        )
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 2.0, gaps
    engine = make_engine(sqlite_url)
    assert {c.state for c in contacts_by_phone(engine).values()} == {"exhausted"}
    engine.dispose()


def _window_open_in(zone: str, now: datetime) -> str:
    """A one-hour window around the current local time in ``zone`` (clipped to the day)."""
    local = now.astimezone(ZoneInfo(zone))
    start = max(local - timedelta(minutes=30), local.replace(hour=0, minute=0))
    end = min(local + timedelta(minutes=30), local.replace(hour=23, minute=59))
    return f"{start:%H:%M}-{end:%H:%M}"


def test_window_open_for_some_zones_only(sandbox_factory, sqlite_url: str, tmp_path: Path) -> None:
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.1-0.3")
    now = datetime.now(UTC)
    window = _window_open_in("Asia/Kolkata", now)
    # New York is 9.5 or 10.5 hours behind Kolkata: outside a one-hour window around now
    india = [f"+9198{i:08d}" for i in range(4)]
    us = [f"+1212555{i:04d}" for i in range(100, 104)]
    rows = [{"phone": p, "name": f"N{i}"} for i, p in enumerate(india + us)]
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows)
    create_campaign(sqlite_url, csv_path, "--window", window, "--days", "all")
    proc = start_cli(
        *daemon_args(sb, "50/s"),
        db_url=sqlite_url,
        log=tmp_path / "run.log",
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(sb.calls()) < len(india):
        time.sleep(0.3)
    time.sleep(1.5)  # give it the chance to (wrongly) call the closed ones
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, (tmp_path / "run.log").read_text()
    called = {c["contact_number"] for c in sb.calls()}
    assert called == set(india)
    engine = make_engine(sqlite_url)
    contacts = contacts_by_phone(engine)
    for p in us:
        c = contacts[p]
        assert c.state == "pending" and c.attempts == 0
        # deferred to the window's next opening in New York, not re-scanned every tick
        assert c.next_attempt_at is not None and c.next_attempt_at > now
        local = c.next_attempt_at.astimezone(ZoneInfo("America/New_York"))
        assert f"{local:%H:%M}" == window.split("-")[0]
    engine.dispose()


def test_sigterm_drains_and_exits_zero(sandbox_factory, sqlite_url: str, tmp_path: Path) -> None:
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "1-2")
    csv_path = write_contacts_csv(tmp_path / "c.csv", indian_rows(30))
    create_campaign(sqlite_url, csv_path, *ALL_DAY)
    proc = start_cli(
        *daemon_args(sb, "10/s", "--log-json"),
        db_url=sqlite_url,
        log=tmp_path / "run.log",
    )
    log = tmp_path / "run.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(sb.calls()) < 5:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)  # mid-campaign: calls in flight and awaiting outcomes
    assert proc.wait(timeout=40) == 0, log.read_text()
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    assert any(x.get("event") == "daemon_stopped" for x in lines)
    engine = make_engine(sqlite_url)
    # nothing is left claimed by the stopped daemon: every attempt is settled or reconcilable
    assert {a.state for a in attempts(engine)} <= {"accepted", "finished", "unknown", "rejected"}
    engine.dispose()


def test_sigterm_while_a_poll_is_retrying_is_quiet(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    """Issue 13: a SIGTERM that lands while a poll waits out its retries (every API answer a
    5xx here) ends the daemon cleanly, without APScheduler's CancelledError traceback."""
    sb = sandbox_factory("--answer-rate", "1", "--faults", "5xx=1")
    csv_path = write_contacts_csv(tmp_path / "c.csv", indian_rows(3))
    create_campaign(sqlite_url, csv_path, *ALL_DAY)
    log = tmp_path / "run.log"
    proc = start_cli(*daemon_args(sb, "10/s"), db_url=sqlite_url, log=log)
    # every trigger-call answer is lost (5xx), so the poller reads the history to reconcile
    # them, and each history request fails and is retried with backoff
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sb.stats()["requests"].get("call-history", 0) < 2:
        time.sleep(0.05)
    assert sb.stats()["requests"].get("call-history", 0) >= 2, log.read_text()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=40) == 0, log.read_text()
    text = log.read_text()
    assert "daemon stopped" in text, text
    assert "Traceback" not in text and "CancelledError" not in text, text
    assert "raised an exception" not in text, text


def test_pause_resume_and_dnc_take_effect_without_restart(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    """campaign pause stops new calls within a tick; a number put on the do-not-call list
    mid-campaign is never dialled; resume finishes the rest, nobody twice."""
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.2-0.4")
    n = 30
    rows = indian_rows(n)
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows)
    cid = create_campaign(sqlite_url, csv_path, *ALL_DAY)
    proc = start_cli(
        *daemon_args(sb, "4/s"),
        db_url=sqlite_url,
        log=tmp_path / "run.log",
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(sb.calls()) < 4:
            time.sleep(0.1)
        assert run_cli("campaign", "pause", str(cid), db_url=sqlite_url).returncode == 0
        late = rows[-1]["Phone"]  # not called yet: the daemon dials in import order
        res = run_cli("dnc", "add", late, "--reason", "asked by email", db_url=sqlite_url)
        assert res.returncode == 0, res.stderr
        time.sleep(2.5)  # trigger-calls claimed before the pause may still go out
        paused_at = len(sb.calls())
        time.sleep(2.0)
        assert len(sb.calls()) == paused_at < n
        assert run_cli("campaign", "resume", str(cid), db_url=sqlite_url).returncode == 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(sb.calls()) < n - 1:
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "run.log").read_text()
    calls = sandbox_calls_by_number(sb)
    assert late not in calls
    assert len(calls) == n - 1 and all(len(v) == 1 for v in calls.values())
    engine = make_engine(sqlite_url)
    assert contacts_by_phone(engine)[late].state == "suppressed"
    engine.dispose()


def test_deleting_the_sqlite_file_stops_the_daemon_within_a_tick(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    """Issue 13: with the database file deleted under it, the daemon used to dial on for
    24 s into an unlinked file whose records are gone. It must notice within one tick, stop
    claiming, drain, and exit non-zero with a message that names the file."""
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "1-2")
    csv_path = write_contacts_csv(tmp_path / "c.csv", indian_rows(300))
    create_campaign(sqlite_url, csv_path, *ALL_DAY)
    log = tmp_path / "run.log"
    proc = start_cli(
        *daemon_args(sb, "20/s", "--max-concurrent", "300"), db_url=sqlite_url, log=log
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(sb.calls()) < 10:
        time.sleep(0.05)
    db_file = Path(sqlite_url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    placed_at_delete = len(sb.calls())
    try:
        code = proc.wait(timeout=30)
    finally:  # a daemon that never noticed must not dial on after the test
        proc.kill()
    text = log.read_text()
    assert code == 1, text
    assert f"the database file {db_file} was deleted or replaced" in text, text
    assert "Traceback" not in text, text
    # one tick (0.25 s) at 20 calls/s, plus the trigger-calls already in flight
    assert len(sb.calls()) - placed_at_delete <= 10, (placed_at_delete, len(sb.calls()))
