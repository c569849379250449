"""``campaign show``: the summary figures, computed on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from test_report_builder import T0, Builder, in_process_cli

from campaigns.stats import campaign_stats
from storage.engine import make_engine
from storage.states import ContactState, Outcome

NOW = T0 + timedelta(hours=1)


def scenario(engine: Engine) -> int:
    """Eight contacts; calls: answered x2, no_answer x2, busy, voicemail x2, one without an
    outcome yet, one the API refused; two calls placed within the last 10 minutes."""
    b = Builder(engine)
    cid = b.campaign(
        max_attempts=3,
        window_start="10:00",
        window_end="19:00",
        timezone="Asia/Kolkata",
        status="running",
    )
    a = b.contact(cid, state="done", outcome="answered", attempts=2)
    b.attempt(a, attempt_no=1, outcome="no_answer")
    b.attempt(a, attempt_no=2, outcome="answered", duration_s=30.0, at=NOW - timedelta(minutes=9))
    bb = b.contact(cid, state="done", outcome="answered", attempts=1)
    b.attempt(bb, outcome="answered", duration_s=60.0)
    c = b.contact(cid, state="exhausted", outcome="no_answer", attempts=3)
    for no, o in enumerate(("no_answer", "voicemail", "busy"), start=1):
        b.attempt(c, attempt_no=no, outcome=o, duration_s=5.0)
    d = b.contact(cid, state="retry_wait", outcome="voicemail", attempts=1)
    b.attempt(d, attempt_no=1, outcome="voicemail")
    b.attempt(d, attempt_no=2, state="rejected", outcome=None, call_id=None)
    b.contact(cid, state="pending")
    b.contact(cid, state="invalid", phone_e164=None, reason="bad number")
    g = b.contact(cid, state="awaiting_outcome", attempts=1)
    b.attempt(g, state="accepted", outcome=None, at=NOW - timedelta(minutes=5))
    b.contact(cid, state="pending")
    return cid


def test_stats_figures(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        cid = scenario(engine)
        s = campaign_stats(engine, cid, now=NOW)
    finally:
        engine.dispose()
    assert s.total == 8
    assert list(s.counts) == [st.value for st in ContactState]  # every state, zeros included
    assert s.counts == {
        "pending": 2,
        "dialing": 0,
        "awaiting_outcome": 1,
        "retry_wait": 1,
        "done": 2,
        "exhausted": 1,
        "invalid": 1,
        "suppressed": 0,
        "expired": 0,
        "cancelled": 0,
    }
    assert s.finished == 4
    assert s.outcomes == {
        "answered": 2,
        "no_answer": 1,
        "busy": 0,
        "failed": 0,
        "voicemail": 1,
        "no_outcome": 0,
        "none": 4,
    }
    assert s.call_outcomes == {o.value: 0 for o in Outcome} | {
        "answered": 2,
        "no_answer": 2,
        "busy": 1,
        "voicemail": 2,
    }
    # voicemail excluded from both sides; the unfinished call and the refused one don't count
    assert (s.answered_calls, s.placed_calls) == (2, 5)
    assert s.pickup_rate == pytest.approx(0.4)
    assert s.avg_answered_duration_s == pytest.approx(45.0)
    assert s.attempts_histogram == {1: 3, 2: 1, 3: 1}
    assert s.attempts_mean == pytest.approx(8 / 5)
    assert s.placed_last_10min == 2
    assert s.waiting == 3  # 2 pending + 1 retry_wait
    assert s.eta_s == pytest.approx(3 * 600 / 2)
    assert s.settings["window"] == "10:00-19:00"
    assert s.settings["timezone"] == "Asia/Kolkata"
    assert s.settings["max_attempts"] == 3
    assert (s.status, s.status_reason) == ("running", None)


def test_eta_is_unknown_without_recent_calls_and_zero_when_nothing_waits(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        cid = scenario(engine)
        later = campaign_stats(engine, cid, now=NOW + timedelta(hours=1))
        b = Builder(engine)
        empty = b.campaign(max_attempts=2)
        b.contact(empty, state="invalid", phone_e164=None)
        none_waiting = campaign_stats(engine, empty, now=NOW)
    finally:
        engine.dispose()
    assert later.placed_last_10min == 0
    assert later.eta_s is None
    assert none_waiting.eta_s == 0
    assert none_waiting.pickup_rate is None
    assert none_waiting.attempts_mean is None
    assert none_waiting.attempts_histogram == {1: 0, 2: 0}


def test_cli_json_text_and_unknown_id(
    db_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = make_engine(db_url)
    cid = scenario(engine)
    engine.dispose()
    cli = in_process_cli(request, monkeypatch)

    assert cli("--db", db_url, "campaign", "show", str(cid), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["id"], data["name"], data["status"]) == (cid, "test campaign", "running")
    assert data["counts"]["pending"] == 2 and data["counts"]["cancelled"] == 0
    assert data["outcomes"]["answered"] == 2
    assert data["pickup_rate"] == pytest.approx(0.4)
    assert data["attempts_histogram"] == {"1": 3, "2": 1, "3": 1}
    assert data["created_at"] == "2026-11-20T10:00:00Z"
    assert data["settings"]["window"] == "10:00-19:00"

    monkeypatch.setenv("COLUMNS", "120")
    assert cli("--db", db_url, "campaign", "show", str(cid)) == 0
    text = capsys.readouterr().out
    assert "Campaign" in text and "test campaign" in text
    assert "awaiting_outcome" in text
    assert "pickup rate 40.0% (2/5 placed calls, voicemail excluded)" in text
    assert "avg answered call 45s" in text

    assert cli("--db", db_url, "campaign", "show", "9999") == 1
    err = capsys.readouterr().err
    assert "no campaign with id 9999" in err
    assert "Traceback" not in err
