"""An unreachable API is loud and bounded; a 402 drains the live calls (issue 12, items 2, 11).

The real CLI in a subprocess, the real sandbox over loopback, a real SQLite file.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

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
from tests.conftest import TEST_API_KEY, free_port

pytestmark = pytest.mark.slow

CLOSED = "http://127.0.0.1:1"  # nothing listens on port 1: connection refused


def rows(n: int) -> list[dict[str, str]]:
    return [{"Phone": f"+9198{i:08d}", "Customer Name": f"Customer {i}"} for i in range(n)]


def wait_for_text(path: Path, text: str, timeout: float) -> str:
    """The file's content once it contains ``text`` (polled; fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in {path}:\n{content}")


def test_closed_port_warns_once_exits_3_and_records_no_attempt(
    sqlite_url: str, tmp_path: Path
) -> None:
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(3))
    create_campaign(sqlite_url, csv_path, *ALL_DAY, "--max-attempts", "2")
    started = time.monotonic()
    res = run_cli(
        "run",
        "--until-done",
        "--api-key",
        TEST_API_KEY,
        "--base-url",
        CLOSED,
        "--give-up-after",
        "6s",
        *DAEMON_FAST,
        db_url=sqlite_url,
        timeout=90,
    )
    elapsed = time.monotonic() - started
    out = res.stdout + res.stderr
    assert res.returncode == 3, out
    # bounded: the give-up time, plus the last in-flight requests' own connect retries (~8 s)
    assert elapsed < 40, elapsed
    lines = res.stderr.splitlines()
    warning = f"cannot reach {CLOSED}: connection refused"
    warned = [ln for ln in lines if warning in ln and "giving up" not in ln]
    gave_up = [ln for ln in lines if warning in ln and "giving up" in ln]
    assert len(warned) == 1, out  # once, not once per contact or per try
    assert len(gave_up) == 1 and "nothing got through for 6 s" in gave_up[0], out
    assert TEST_API_KEY not in out
    assert "Traceback" not in out
    engine = make_engine(sqlite_url)
    try:
        assert attempts(engine) == []  # never sent: no attempt stored, none numbered
        contacts = contacts_by_phone(engine)
        assert {c.state for c in contacts.values()} == {"pending"}
        assert {c.attempts for c in contacts.values()} == {0}
    finally:
        engine.dispose()


def test_api_coming_up_later_gets_every_contact_one_call_numbered_1(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    n = 4
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(n))
    create_campaign(sqlite_url, csv_path, *ALL_DAY, "--max-attempts", "2")
    port = free_port()
    log = tmp_path / "daemon.log"
    base = f"http://127.0.0.1:{port}"
    proc = start_cli(
        "run",
        "--until-done",
        "--api-key",
        TEST_API_KEY,
        "--base-url",
        base,
        "--give-up-after",
        "120s",
        *DAEMON_FAST,
        db_url=sqlite_url,
        log=log,
    )
    try:
        wait_for_text(log, f"cannot reach {base}: connection refused", timeout=30)
        sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.1-0.3", port=port)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 0, text
    assert "API reachable again" in text
    calls = Counter(call["contact_number"] for call in sb.calls())
    engine = make_engine(sqlite_url)
    try:
        contacts = contacts_by_phone(engine)
        assert {c.state for c in contacts.values()} == {"done"}, text
        assert calls == Counter({phone: 1 for phone in contacts})  # exactly one call each
        rows_ = attempts(engine)
        assert sorted(a.contact_id for a in rows_) == sorted(c.id for c in contacts.values())
        assert {(a.attempt_no, a.state) for a in rows_} == {(1, "finished")}
        assert {c.attempts for c in contacts.values()} == {1}
    finally:
        engine.dispose()


def test_402_collects_the_outcomes_of_calls_already_placed_then_exits_3(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    # calls last 2-3 s: an exit right after the 402 would leave them awaiting their outcome
    sb = sandbox_factory("--balance-calls", "3", "--answer-rate", "1", "--call-seconds", "2-3")
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(6))
    create_campaign(sqlite_url, csv_path, *ALL_DAY)
    res = run_cli(
        "run",
        "--until-done",
        "--api-key",
        sb.api_key,
        "--base-url",
        sb.base_url,
        "--rate-limit",
        "100/s",
        *DAEMON_FAST,
        db_url=sqlite_url,
        timeout=90,
    )
    assert res.returncode == 3, res.stderr
    assert "402" in res.stderr and "dispatch paused" in res.stderr
    placed = {call["call_id"]: call for call in sb.calls()}
    assert len(placed) == 3
    engine = make_engine(sqlite_url)
    try:
        rows_ = attempts(engine)
        contacts = {c.id: c for c in contacts_by_phone(engine).values()}
        # the calls placed before the 402 have their outcomes in the database
        assert {a.call_id for a in rows_} == set(placed)
        assert {(a.state, a.outcome, a.attempt_no) for a in rows_} == {("finished", "answered", 1)}
        for a in rows_:
            assert contacts[a.contact_id].state == "done"
            assert a.summary == placed[a.call_id]["summary"]
        # the others were refused by the 402: not consumed, not numbered, back in the queue
        rest = [c for c in contacts.values() if c.id not in {a.contact_id for a in rows_}]
        assert len(rest) == 3
        assert {(c.state, c.attempts) for c in rest} == {("pending", 0)}
    finally:
        engine.dispose()
