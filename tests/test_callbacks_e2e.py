"""Callbacks end to end: the real CLI, the sandbox over loopback, a real database.

A contact who asks to be called back at a local time gets the second call no earlier than
that time and inside the calling window; one asking for a time outside the window is
scheduled at the next window opening (``campaign show`` and the report say so); the
campaign's callback cap and a time already past are noted in the report.
"""

from __future__ import annotations

import csv
import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from campaigns.calling import CallingPolicy
from campaigns.parsing import parse_window
from storage.engine import make_engine
from tests.cli_helpers import (
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
PHONE = "+919812345678"


def window_around_now() -> tuple[str, str]:
    """A calling window open now in Kolkata but not all day: an hour either side of now,
    clipped to the day (Kolkata has no daylight saving time)."""
    local = datetime.now(KOLKATA)
    start = max(local - timedelta(hours=1), local.replace(hour=0, minute=0, second=0))
    end = local + timedelta(hours=1)
    end_text = "24:00" if end.date() != local.date() else f"{end:%H}:{end.minute:02d}"
    return f"{start:%H:%M}", end_text


def campaign_with(tmp_path: Path, db_url: str, extra: dict[str, str], *options: str) -> int:
    start, end = window_around_now()
    path = write_contacts_csv(tmp_path / "c.csv", [{"Phone": PHONE, "Name": "Asha", **extra}])
    return create_campaign(
        db_url, path, "--window", f"{start}-{end}", "--days", "all", "--max-attempts", "1", *options
    )


def daemon(sb: Sandbox, *head: str) -> tuple[str, ...]:
    return (
        *head,
        "--api-key",
        sb.api_key,
        "--base-url",
        sb.base_url,
        "--rate-limit",
        "50/s",
        *DAEMON_FAST,
    )


def report(db_url: str, cid: int, out: Path, *options: str) -> list[dict[str, str]]:
    res = run_cli("report", str(cid), "--out", str(out), *options, db_url=db_url)
    assert res.returncode == 0, res.stderr
    with out.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_second_call_comes_at_the_local_time_asked_for_inside_the_window(
    tmp_path: Path, db_url: str, sandbox: Sandbox
) -> None:
    asked_local = (datetime.now(KOLKATA) + timedelta(seconds=8)).replace(microsecond=0)
    asked = asked_local.astimezone(UTC)
    # no offset: the contact's own zone (Kolkata, from the +91 number)
    cid = campaign_with(
        tmp_path, db_url, {"sandbox_entity_callback_at": asked_local.strftime("%Y-%m-%dT%H:%M:%S")}
    )
    res = run_cli(*daemon(sandbox, "run", "--until-done"), db_url=db_url, timeout=120)
    assert res.returncode == 0, res.stderr
    calls = [c for c in sandbox.calls() if c["contact_number"] == PHONE]
    assert len(calls) == 2  # --max-attempts 1: the callback is a call of its own
    second = utc(calls[1]["created_at"])
    assert second >= asked
    start, end = parse_window(run_window(db_url, cid))
    policy = CallingPolicy(window_start=start, window_end=end, days=frozenset(range(7)))
    assert policy.is_open(("Asia/Kolkata",), second)
    assert not policy.is_open(("Asia/Kolkata",), second + timedelta(hours=2))  # not all day
    rows = report(db_url, cid, tmp_path / "a.csv", "--attempts")
    assert [r["callback_at"] for r in rows] == [asked.strftime("%Y-%m-%dT%H:%M:%SZ"), ""]
    assert rows[0]["callback_note"] == ""
    # the second call heard the same (now past) time: ignored, and the report says why
    assert "already past when the outcome arrived" in rows[1]["callback_note"]
    (contact,) = report(db_url, cid, tmp_path / "c.csv")
    assert (contact["state"], contact["attempts"]) == ("done", "2")


def run_window(db_url: str, cid: int) -> str:
    res = run_cli("campaign", "show", str(cid), "--json", db_url=db_url)
    assert res.returncode == 0, res.stderr
    return str(json.loads(res.stdout)["settings"]["window"])


def test_a_callback_outside_the_window_waits_for_the_next_opening_and_shows(
    tmp_path: Path, db_url: str, sandbox: Sandbox
) -> None:
    cid = campaign_with(tmp_path, db_url, {"sandbox_entity_callback_at": "in 3 hours"})
    log = tmp_path / "daemon.log"
    proc = start_cli(*daemon(sandbox, "run"), db_url=db_url, log=log)
    engine = make_engine(db_url)
    try:
        deadline = time.monotonic() + 60
        while (contact := contacts_by_phone(engine).get(PHONE)) is None or (
            contact.callback_at is None
        ):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        engine.dispose()
    (call,) = sandbox.calls()
    ended = utc(call["ended_at"])
    asked = (ended + timedelta(hours=3)).astimezone(KOLKATA)
    start, _ = run_window(db_url, cid).split("-")
    opening = datetime.combine(asked.date(), datetime.strptime(start, "%H:%M").time(), KOLKATA)
    if opening <= asked:
        opening += timedelta(days=1)
    assert (contact.state, contact.callbacks) == ("retry_wait", 1)
    assert contact.callback_at == contact.next_attempt_at == opening
    shown = run_cli("campaign", "show", str(cid), db_url=db_url)
    assert shown.returncode == 0, shown.stderr
    assert f"1 callback asked for by contacts · next {opening.astimezone(UTC):%Y-%m-%d %H:%M}Z" in (
        shown.stdout.replace("\n", " ")
    )
    as_json = json.loads(run_cli("campaign", "show", str(cid), "--json", db_url=db_url).stdout)
    assert as_json["callbacks_scheduled"] == 1
    assert as_json["next_callback_at"] == opening.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    (row,) = report(db_url, cid, tmp_path / "r.csv")
    assert row["callback_at"] == as_json["next_callback_at"]
    assert "outside the window: moved" in row["callback_note"]
    # in the contact's own zone, named as its number maps (Asia/Calcutta is Kolkata's old name)
    assert f"{asked:%Y-%m-%d %H:%M} {contact.timezones}" in row["callback_note"]


def test_the_callback_cap_is_the_campaigns_own_and_noted(
    tmp_path: Path, db_url: str, sandbox: Sandbox
) -> None:
    # every answered call asks again, 4 s after it ends; the campaign allows one callback
    cid = campaign_with(tmp_path, db_url, {"sandbox_callback_in": "4s"}, "--max-callbacks", "1")
    res = run_cli(*daemon(sandbox, "run", "--until-done"), db_url=db_url, timeout=120)
    assert res.returncode == 0, res.stderr
    calls = [c for c in sandbox.calls() if c["contact_number"] == PHONE]
    assert len(calls) == 2
    assert utc(calls[1]["created_at"]) >= utc(calls[0]["ended_at"]) + timedelta(seconds=4)
    rows = report(db_url, cid, tmp_path / "a.csv", "--attempts")
    assert rows[0]["callback_at"] != "" and rows[1]["callback_at"] == ""
    assert "cap of 1 callback reached" in rows[1]["callback_note"]
