"""Issue 12, item 7: when every waiting contact is outside its calling window, the product says
when the next window opens (in the contact's zone, and how long until) in ``campaign show``, the
daemon's progress line and, once, its log; and the time to finish counts the windows.

The show and daemon tests run the real CLI in a subprocess (against the sandbox for the
daemon), with a window chosen three hours after the current hour in India, so that it is
closed whenever the test runs.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_report_builder import Builder

from campaigns.calling import CallingPolicy
from campaigns.services.outlook import Outlook, outlook, window_phrase
from campaigns.stats import campaign_stats
from scheduler.idle import WindowWatch
from scheduler.progress import ProgressLine
from storage.engine import make_engine
from storage.progress import Progress
from tests.cli_helpers import create_campaign, run_cli, start_cli, write_contacts_csv
from tests.conftest import Sandbox

IST = ZoneInfo("Asia/Kolkata")
PHONES = ["+919845012345", "+919820011223", "+919847012345"]
SENTENCE = re.compile(
    r"next window opens (\d\d:\d\d) (Asia/(?:Kolkata|Calcutta)) \(in (\d+)h(\d\d)m\)"
)


def closed_window(now: datetime) -> tuple[str, datetime]:
    """A one-hour window starting three hours after the current hour in India (closed now),
    and the instant it next opens."""
    local = now.astimezone(IST)
    hour = (local.hour + 3) % 24
    end = "24:00" if hour == 23 else f"{hour + 1:02d}:00"
    opening = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if opening <= local:
        opening += timedelta(days=1)
    return f"{hour:02d}:00-{end}", opening.astimezone(UTC)


def _closed_campaign(db_url: str, tmp_path: Path) -> tuple[int, datetime]:
    window, opening = closed_window(datetime.now(UTC))
    rows = [{"phone": p} for p in PHONES] + [{"phone": "12"}]  # one rejected row too
    cid = create_campaign(
        db_url, write_contacts_csv(tmp_path / "c.csv", rows), "--window", window, "--days", "all"
    )
    return cid, opening


def _minutes_until(match: re.Match[str]) -> int:
    return int(match.group(3)) * 60 + int(match.group(4))


def test_show_says_when_the_next_window_opens(db_url: str, tmp_path: Path) -> None:
    cid, opening = _closed_campaign(db_url, tmp_path)
    shown = run_cli("campaign", "show", str(cid), db_url=db_url)
    assert shown.returncode == 0, shown.stderr
    line = next(
        (ln for ln in shown.stdout.splitlines() if "next window opens" in ln), shown.stdout
    )  # one line, not wrapped at 80 columns off a terminal
    assert line.startswith("every waiting contact is outside its calling window: "), line
    match = SENTENCE.search(line)
    assert match, line
    assert match.group(1) == f"{opening.astimezone(IST):%H:%M}"
    left = (opening - datetime.now(UTC)).total_seconds() / 60
    assert abs(_minutes_until(match) - left) <= 2, (line, left)
    assert "time to finish at this rate, counting the calling windows: unknown" in shown.stdout

    as_json = json.loads(run_cli("campaign", "show", str(cid), "--json", db_url=db_url).stdout)
    assert as_json["next_window_at"] == opening.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert as_json["next_window_zone"] in ("Asia/Kolkata", "Asia/Calcutta")
    assert SENTENCE.fullmatch(as_json["next_window"])
    # the sums of `campaign list`: the rejected row is not "done" before any call
    assert as_json["progress"] == {
        "total": 4,
        "waiting": 3,
        "in_flight": 0,
        "done": 0,
        "not_called": 1,
        "closed": 0,
    }


def test_show_says_nothing_of_windows_while_one_is_open(sqlite_url: str, tmp_path: Path) -> None:
    rows = [{"phone": p} for p in PHONES]
    cid = create_campaign(
        sqlite_url, write_contacts_csv(tmp_path / "c.csv", rows), "--window", "00:00-24:00",
        "--days", "all",
    )  # fmt: skip
    shown = run_cli("campaign", "show", str(cid), db_url=sqlite_url)
    assert shown.returncode == 0, shown.stderr
    assert "next window" not in shown.stdout
    as_json = json.loads(run_cli("campaign", "show", str(cid), "--json", db_url=sqlite_url).stdout)
    assert as_json["next_window"] is None and as_json["next_window_at"] is None


# --- the ETA counts the windows ----------------------------------------------------------

# 19:05 in India on a Friday: the 10:00-19:00 window closed five minutes ago
CLOSED_AT = datetime(2026, 11, 20, 13, 35, tzinfo=UTC)
OPENS_AT = datetime(2026, 11, 21, 4, 30, tzinfo=UTC)  # 10:00 IST the next day


def _closed_scenario(engine: object) -> int:
    """Three contacts waiting, two calls placed in the last minutes of the window."""
    b = Builder(engine)  # type: ignore[arg-type]
    cid = b.campaign(
        max_attempts=3, window_start="10:00", window_end="19:00", days="all", status="running"
    )
    for at in (CLOSED_AT - timedelta(minutes=9), CLOSED_AT - timedelta(minutes=7)):
        b.attempt(b.contact(cid, state="done", outcome="answered", attempts=1), at=at)
    for _ in range(3):
        b.contact(cid, state="pending", timezones="Asia/Kolkata")
    return cid


def test_eta_waits_for_the_window_then_dials(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        cid = _closed_scenario(engine)
        closed = campaign_stats(engine, cid, now=CLOSED_AT)
        later = campaign_stats(engine, cid, now=CLOSED_AT + timedelta(hours=3))
    finally:
        engine.dispose()
    dial = 3 * 600 / 2  # three contacts at two calls per ten minutes
    assert closed.placed_last_10min == 2
    assert closed.eta_s == pytest.approx((OPENS_AT - CLOSED_AT).total_seconds() + dial)
    assert not closed.eta_from_last_dialling
    assert closed.next_window_at == OPENS_AT
    assert closed.next_window == "next window opens 10:00 Asia/Kolkata (in 14h55m)"
    # hours later nothing was placed in the last 10 minutes: the rate it last dialled at
    assert later.placed_last_10min == 0 and later.eta_from_last_dialling
    assert later.eta_s == pytest.approx((OPENS_AT - CLOSED_AT).total_seconds() - 3 * 3600 + dial)


def _outlook(policy: CallingPolicy, n: int, at: datetime, zone: str = "UTC") -> Outlook:
    return Outlook(
        callable_now=0, later=n, next_window_at=None, as_of=at, groups=(((zone,), n),),
        policy=policy,
    )  # fmt: skip


def test_dialling_spreads_over_as_many_windows_as_it_takes() -> None:
    policy = CallingPolicy(window_start=dtime(10), window_end=dtime(11), days=frozenset(range(7)))
    nine = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    # 120 calls at one a minute: the 10:00-11:00 window today, then tomorrow's
    eta = _outlook(policy, 120, nine).dialling_eta(1 / 60)
    assert eta == pytest.approx(timedelta(hours=26).total_seconds())
    weekdays = CallingPolicy(window_start=dtime(10), window_end=dtime(11), days=frozenset(range(5)))
    friday = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)  # 30 calls now, 30 on Monday at 10:00
    assert _outlook(weekdays, 60, friday).dialling_eta(1 / 60) == pytest.approx(
        timedelta(days=3).total_seconds()
    )
    ends = CallingPolicy(
        window_start=dtime(10), window_end=dtime(11), days=frozenset(range(7)),
        end_at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
    )  # fmt: skip
    assert _outlook(ends, 120, nine).dialling_eta(1 / 60) is None  # never all dialled
    assert _outlook(policy, 120, nine).dialling_eta(0) is None


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 5000),
    per_minute=st.integers(1, 600),
    start=st.integers(0, 23),
    length=st.integers(1, 24 * 60),
    offset_min=st.integers(0, 7 * 24 * 60),
)
def test_dialling_eta_is_the_dial_time_plus_the_closed_hours(
    n: int, per_minute: int, start: int, length: int, offset_min: int
) -> None:
    """Never less than the time to dial; exactly that with an all-day window; and never more
    than that time stretched over the open share of each day, plus a day (within the year
    the window search looks ahead)."""
    end = start * 60 + length
    window_end = dtime.max if end >= 24 * 60 else dtime(end // 60, end % 60)
    policy = CallingPolicy(
        window_start=dtime(start), window_end=window_end, days=frozenset(range(7))
    )
    at = datetime(2026, 11, 16, tzinfo=UTC) + timedelta(minutes=offset_min)
    dial = n * 60 / per_minute
    open_share = min(length, 24 * 60 - start * 60) / (24 * 60)
    assume(dial / open_share < 300 * 86400)
    eta = _outlook(policy, n, at).dialling_eta(per_minute / 60)
    assert eta is not None
    assert dial - 1e-6 <= eta <= dial / open_share + 86400 + 1
    all_day = CallingPolicy(window_start=dtime(0), window_end=dtime.max, days=frozenset(range(7)))
    assert _outlook(all_day, n, at).dialling_eta(per_minute / 60) == pytest.approx(dial, abs=1)


def test_window_phrase_adds_the_date_beyond_a_day() -> None:
    now = datetime(2026, 11, 20, 13, 35, tzinfo=UTC)
    assert window_phrase(OPENS_AT, "Asia/Kolkata", now) == "10:00 Asia/Kolkata (in 14h55m)"
    monday = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    assert (
        window_phrase(monday, "America/New_York", now)
        == "Mon 2026-11-23 09:00 America/New_York (in 3d00h)"
    )


# --- the daemon: its log, once, and its progress line -------------------------------------


def test_window_watch_logs_each_wait_once(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cid, opening = _closed_campaign(sqlite_url, tmp_path)
    engine = make_engine(sqlite_url)
    watch = WindowWatch(engine, "vaani")
    other = WindowWatch(engine, "voisnap")
    now = datetime.now(UTC)
    try:
        with caplog.at_level(logging.INFO, logger="vaani.daemon"):
            notes = watch.check(now)
            watch.check(now + timedelta(seconds=5))  # the same wait: not said again
            other.check(now)  # not its provider's campaign: the progress note only
            assert outlook(engine, cid, now=opening).next_window_text() is None
            assert watch.check(opening + timedelta(minutes=1)) == {}  # open: the wait is over
            watch.check(opening + timedelta(hours=2))  # closed again: a new wait
    finally:
        engine.dispose()
    said = [r.getMessage() for r in caplog.records if "calling window" in r.getMessage()]
    assert len(said) == 2, said
    assert said[0].startswith(f"campaign {cid}: 3 contacts waiting, all outside their calling")
    assert SENTENCE.search(said[0])
    assert "(in 22h" in said[1]  # the next day's window
    assert SENTENCE.fullmatch(notes[cid]) and other.notes == notes


def test_progress_line_leaves_rows_never_called_out_of_finished() -> None:
    counts = {"pending": 3, "invalid": 1, "done": 2, "suppressed": 1}
    line = ProgressLine.render(
        Progress(work_left=True, counts={4: counts}), {4: "next window opens 10:00 UTC (in 1h00m)"}
    ).plain
    assert line == (
        "campaign 4: 2/5 finished · 3 pending · 2 not to be called · "
        "next window opens 10:00 UTC (in 1h00m)  |  0 live calls"
    )


def test_daemon_logs_the_wait_once_and_shows_it_in_its_progress_line(
    sandbox_factory: object, sqlite_url: str, tmp_path: Path
) -> None:
    sb: Sandbox = sandbox_factory("--answer-rate", "1")  # type: ignore[operator]
    _closed_campaign(sqlite_url, tmp_path)
    log = tmp_path / "run.log"
    proc = start_cli(
        "run", "--api-key", sb.api_key, "--base-url", sb.base_url, "--poll-interval", "0.3",
        "--progress", db_url=sqlite_url, log=log,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "outside their calling window" not in log.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(6)  # past the next idle look (every 5 s): it must not repeat the line
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    text = log.read_text()
    said = [ln for ln in text.splitlines() if "outside their calling window" in ln]
    assert len(said) == 1, text
    assert "3 contacts waiting" in said[0] and SENTENCE.search(said[0]), said
    assert sb.calls() == []  # nothing dialled outside the window
    # off a terminal the live display prints its last line when it stops
    progress = [ln for ln in text.splitlines() if ln.startswith("campaign ")]
    assert progress, text
    assert "0/3 finished · 3 pending · 1 not to be called · next window opens" in progress[-1]
