"""``campaign edit`` for the settings beyond the window and caps: the re-dial policy, the days
without calls, callbacks, voice, the webhook and the zone override. The real program in a
subprocess against a real database (and the real daemon and sandbox where an edit must reach
a running daemon); every bad value gets the very message ``campaign create`` gives.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns.webhooks import fingerprint
from storage.engine import make_engine
from storage.models import Campaign
from tests.cli_helpers import (
    ALL_DAY,
    DAEMON_FAST,
    contacts_by_phone,
    create_campaign,
    run_cli,
    start_cli,
    write_contacts_csv,
)

pytestmark = pytest.mark.slow
SECRET = "edit-secret-5f1c"


def _csv(tmp_path: Path, *phones: str) -> Path:
    rows = [{"phone": p, "name": f"Customer {i}"} for i, p in enumerate(phones)]
    return write_contacts_csv(tmp_path / "c.csv", rows)


def _edit_json(db_url: str, cid: int, *args: str) -> dict[str, Any]:
    res = run_cli("campaign", "edit", str(cid), *args, "--json", db_url=db_url)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def _settings(db_url: str, cid: int) -> dict[str, Any]:
    res = run_cli("campaign", "show", str(cid), "--json", db_url=db_url)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["settings"]  # type: ignore[no-any-return]


def _row(db_url: str) -> Any:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(Campaign)).one()
    engine.dispose()
    return row


def _error(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 1, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    return lines[0]


def test_each_setting_is_stored_and_shown_then_cleared(db_url: str, tmp_path: Path) -> None:
    cid = create_campaign(db_url, _csv(tmp_path, "+919800000051"), *ALL_DAY)
    dates = tmp_path / "dates.txt"
    dates.write_text("# closed\n2027-01-01\n", encoding="utf-8")
    res = run_cli(
        "campaign", "edit", str(cid),
        "--retry", "no_answer=2h,busy=15m", "--retry-schedule", "30m,2h,1d",
        "--no-redial-voicemail", "--skip-dates", "2026-12-25", "--skip-dates-file", str(dates),
        "--holidays", "in", "--max-callbacks", "4", "--callback-keys", "call_me_at",
        "--voice", "meera", "--timezone", "Asia/Kolkata",
        "--webhook-url", "https://crm.example.com/hooks", "--webhook-secret", SECRET,
        db_url=db_url,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "  retry_delays: None -> busy=15m,no_answer=2h\n" in res.stdout  # typed-back form
    assert "  retry_schedule: None -> 30m,2h,1d\n" in res.stdout
    assert "  skip_dates: None -> 2026-12-25,2027-01-01\n" in res.stdout
    assert SECRET not in res.stdout + res.stderr

    st = _settings(db_url, cid)
    assert {k: st[k] for k in st if k in _EDITED} == {
        "retry_delays_s": {"busy": 900, "no_answer": 7200},
        "retry_schedule_s": [1800, 7200, 86400],
        "redial_voicemail": False,
        "skip_dates": ["2026-12-25", "2027-01-01"],
        "holidays": "IN",
        "max_callbacks": 4,
        "voice": "meera",
        "timezone": "Asia/Kolkata",
    }
    shown = " ".join(run_cli("campaign", "show", str(cid), db_url=db_url).stdout.split())
    assert "zone override Asia/Kolkata" in shown
    assert (
        "retry busy=15m,no_answer=2h · retry schedule 30m,2h,1d · voicemail not re-dialled · "
        "no calls on 2026-12-25, 2027-01-01 · no calls on public holidays (IN, contact's country)"
    ) in shown
    row = _row(db_url)
    assert (row.callback_keys, row.webhook_url) == (["call_me_at"], "https://crm.example.com/hooks")
    assert row.webhook_secret_fp == fingerprint(SECRET)  # the fingerprint, never the secret
    if db_url.startswith("sqlite"):
        assert SECRET.encode() not in Path(db_url.removeprefix("sqlite:///")).read_bytes()

    # a file alone replaces the dates; none clears each setting
    replaced = _edit_json(db_url, cid, "--skip-dates-file", str(dates))
    assert replaced["changed"] == {"skip_dates": ["2026-12-25,2027-01-01", "2027-01-01"]}
    cleared = _edit_json(
        db_url, cid, "--retry", "none", "--retry-schedule", "none", "--redial-voicemail",
        "--skip-dates", "none", "--holidays", "none", "--voice", "none", "--timezone", "none",
        "--webhook-url", "none", "--callback-keys", "default", "--max-callbacks", "0",
    )  # fmt: skip
    assert set(cleared["changed"]) == {
        "retry_delays", "retry_schedule", "redial_voicemail", "skip_dates", "holidays",
        "voice", "timezone", "webhook_url", "webhook_secret_fp", "callback_keys",
        "max_callbacks",
    }  # fmt: skip
    row = _row(db_url)
    assert (row.retry_delays, row.retry_schedule, row.skip_dates, row.holidays) == (
        {},
        None,
        None,
        None,
    )
    assert (row.voice, row.timezone, row.webhook_url, row.webhook_secret_fp) == (None,) * 4
    assert (row.callback_keys, row.max_callbacks, row.redial_voicemail) == (None, 0, True)
    again = _edit_json(db_url, cid, "--retry", "none")  # {} and None are both "none"
    assert again["changed"] == {}


_EDITED = (
    "retry_delays_s",
    "retry_schedule_s",
    "redial_voicemail",
    "skip_dates",
    "holidays",
    "max_callbacks",
    "voice",
    "timezone",
)


@pytest.mark.parametrize(
    "bad",
    [
        ("--retry", "bogus=1h"),
        ("--retry", "no_answer"),
        ("--retry-schedule", "30s"),  # under the 120 s floor
        ("--retry", "voicemail=2h", "--no-redial-voicemail"),
        ("--skip-dates", "2026-13-01"),
        ("--skip-dates-file", "missing.txt"),
        ("--holidays", "INDIA"),
        ("--max-callbacks", "99"),
        ("--callback-keys", ","),
        ("--timezone", "Mars/Olympus"),
        ("--voice", "v" * 101),
        ("--webhook-url", "ftp://crm.example.com", "--webhook-secret", SECRET),
        ("--webhook-url", "https://crm.example.com/hooks"),  # no secret
    ],
)
def test_a_bad_value_gets_creates_own_error(
    sqlite_url: str, tmp_path: Path, bad: tuple[str, ...]
) -> None:
    csv_path = _csv(tmp_path, "+919800000061")
    cid = create_campaign(sqlite_url, csv_path, *ALL_DAY)
    floor = {"VAANI_MIN_RETRY_DELAY": ""}  # the real 120 s floor
    edited = _error(run_cli("campaign", "edit", str(cid), *bad, db_url=sqlite_url, env=floor))
    created = _error(
        run_cli(
            *("campaign", "create", "x", "--csv", str(csv_path), "--agent-id", "a", *bad),
            db_url=sqlite_url,
            env=floor,
        )
    )
    assert edited == created  # the same check, the same words
    assert edited.startswith(f"Error: {bad[0]}") or "--webhook-secret" in edited, edited
    assert _settings(sqlite_url, cid)["retry_delays_s"] == {}  # nothing was written


def test_zone_override_is_not_removed_from_under_contacts_without_a_zone(
    sqlite_url: str, tmp_path: Path
) -> None:
    csv_path = _csv(tmp_path, "+80012345678", "+919800000071")  # +800: no zone of its own
    cid = create_campaign(sqlite_url, csv_path, *ALL_DAY, "--timezone", "Asia/Kolkata")
    refused = _error(run_cli("campaign", "edit", str(cid), "--timezone", "none", db_url=sqlite_url))
    assert "--timezone: 1 waiting contacts have no time zone of their own" in refused
    moved = _edit_json(sqlite_url, cid, "--timezone", "Europe/London")  # another zone: fine
    assert moved["changed"] == {"timezone": ["Asia/Kolkata", "Europe/London"]}


def test_skip_dates_edited_while_the_daemon_runs(
    sandbox_factory: Any, sqlite_url: str, tmp_path: Path
) -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    if datetime.now(kolkata).hour == 23 and datetime.now(kolkata).minute >= 58:
        time.sleep(125)  # the test needs the same local date from start to end
    today = datetime.now(kolkata).date().isoformat()
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.2-0.4", "--seed", "9")
    phones = ("+919800000081", "+919800000082")
    cid = create_campaign(sqlite_url, _csv(tmp_path, *phones), *ALL_DAY, "--skip-dates", today)
    daemon = ("run", "--api-key", sb.api_key, "--base-url", sb.base_url, *DAEMON_FAST)
    proc = start_cli(*daemon, db_url=sqlite_url, log=tmp_path / "daemon.log")
    engine = make_engine(sqlite_url)

    def wait(check: Any, what: str) -> None:
        deadline = time.monotonic() + 60
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: " + (tmp_path / "daemon.log").read_text()[-3000:])
            time.sleep(0.2)

    try:
        later = datetime.now(UTC) + timedelta(minutes=1)
        wait(
            lambda: all(
                (at := contacts_by_phone(engine)[p].next_attempt_at) is not None and at > later
                for p in phones
            ),
            "both deferred past today",
        )
        assert sb.calls() == []
        _edit_json(sqlite_url, cid, "--skip-dates", "none")  # the next tick dials them
        wait(lambda: len(sb.calls()) == 2, "both called after the edit")
        assert sorted(c["contact_number"] for c in sb.calls()) == sorted(phones)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        engine.dispose()
