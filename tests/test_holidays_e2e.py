"""Public holidays end to end: the real CLI creates the campaigns, the real daemon calls the
real sandbox over loopback, and the sandbox's own call log is the truth.

A holiday is a date in the contact's own country, so the daemon is run with the test hook of
:mod:`campaigns.testclock` (``VAANI_TEST_CLOCK_OFFSET``): its calling policy believes it is
noon UTC on an Indian public holiday (17:30 in India, 04:00 in California: the same date in
both), while everything else (the sandbox, pacing, the attempts' timestamps) keeps real time.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns.blackout import holiday_dates
from campaigns.testclock import TEST_CLOCK_OFFSET_ENV
from storage.engine import make_engine
from storage.models import Attempt
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
#: The zone the importer gives Indian numbers (phonenumbers' name for Asia/Kolkata).
INDIA = ZoneInfo("Asia/Calcutta")
IN_A, IN_B, US = "+919800000041", "+919800000042", "+16505550143"


def _is_holiday(day: date, country: str) -> bool:
    return day in holiday_dates(country, day.year)


def _next_day(after: date, keep: Any) -> date:
    day = after + timedelta(days=1)
    while not keep(day):
        day += timedelta(days=1)
    return day


def _offset_to_noon(day: date) -> tuple[str, timedelta]:
    """The hook's value for "it is noon UTC on ``day``", and that offset."""
    offset = datetime.combine(day, clock(12), UTC) - datetime.now(UTC)
    return f"{int(offset.total_seconds())}s", timedelta(seconds=int(offset.total_seconds()))


def _daemon(sb: Sandbox) -> tuple[str, ...]:
    return ("run", "--api-key", sb.api_key, "--base-url", sb.base_url, *DAEMON_FAST)


def test_no_call_on_a_public_holiday_in_the_contacts_country(
    sandbox_factory: Any, sqlite_url: str, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    holiday = _next_day(today, lambda d: _is_holiday(d, "IN") and not _is_holiday(d, "US"))
    reopens = _next_day(holiday, lambda d: not _is_holiday(d, "IN"))
    hook, offset = _offset_to_noon(holiday)
    env = {TEST_CLOCK_OFFSET_ENV: hook}
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.2-0.4", "--seed", "7")
    people = [{"phone": IN_A, "name": "Asha"}, {"phone": US, "name": "Sam"}]
    india = create_campaign(
        sqlite_url, write_contacts_csv(tmp_path / "a.csv", people), *ALL_DAY,
        "--holidays", "IN", name="india",
    )  # fmt: skip
    create_campaign(
        sqlite_url, write_contacts_csv(tmp_path / "b.csv", [{"phone": IN_B, "name": "Ravi"}]),
        *ALL_DAY, "--holidays", "auto", name="auto",
    )  # fmt: skip

    proc = start_cli(*_daemon(sb), db_url=sqlite_url, env=env, log=tmp_path / "daemon.log")
    engine = make_engine(sqlite_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            contacts = contacts_by_phone(engine)
            waiting = [contacts[p].next_attempt_at for p in (IN_A, IN_B)]
            if contacts[US].state == "done" and all(waiting):
                break
            time.sleep(0.2)
        else:
            pytest.fail((tmp_path / "daemon.log").read_text()[-3000:])
        time.sleep(1.5)  # a few more ticks of 0.3 s: still no call to India
        assert {c["contact_number"] for c in sb.calls()} == {US}  # a US number: no holiday
        assert (
            "is set: the calling policy reads the calendar" in (tmp_path / "daemon.log").read_text()
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    # deferred to the first Indian day that is no holiday, stored as a real instant
    opening = datetime.combine(reopens, clock(0), INDIA)
    contacts = contacts_by_phone(engine)
    for phone in (IN_A, IN_B):
        assert contacts[phone].state == "pending"
        assert contacts[phone].next_attempt_at == (opening - offset).astimezone(UTC)
    with engine.connect() as conn:  # the call's own timestamps keep the real clock
        created = conn.execute(select(Attempt.created_at)).scalar_one()
    engine.dispose()
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=5)

    res = run_cli("campaign", "show", str(india), "--json", db_url=sqlite_url, env=env)
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown["next_window_at"] == opening.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert shown["next_window_zone"] == "Asia/Calcutta"
    text = run_cli("campaign", "show", str(india), db_url=sqlite_url, env=env).stdout
    assert "every waiting contact is outside its calling window: next window opens" in text


def test_the_calls_go_out_on_a_normal_day(
    sandbox_factory: Any, sqlite_url: str, tmp_path: Path
) -> None:
    normal = _next_day(datetime.now(UTC).date(), lambda d: not _is_holiday(d, "IN"))
    hook, _ = _offset_to_noon(normal)
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.2-0.4", "--seed", "8")
    rows = [{"phone": IN_A, "name": "Asha"}, {"phone": IN_B, "name": "Ravi"}]
    create_campaign(
        sqlite_url, write_contacts_csv(tmp_path / "c.csv", rows), *ALL_DAY, "--holidays", "IN"
    )
    res = run_cli(
        *_daemon(sb), "--until-done", db_url=sqlite_url, env={TEST_CLOCK_OFFSET_ENV: hook}
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(c["contact_number"] for c in sb.calls()) == [IN_A, IN_B]


def test_a_bad_test_clock_is_a_one_line_error(sqlite_url: str) -> None:
    res = run_cli(
        "run", "--api-key", "k", "--until-done", db_url=sqlite_url,
        env={TEST_CLOCK_OFFSET_ENV: "christmas"},
    )  # fmt: skip
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f"{TEST_CLOCK_OFFSET_ENV}: " in res.stderr.strip().splitlines()[-1]
