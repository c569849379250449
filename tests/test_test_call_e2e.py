"""``campaign test-call`` end to end: the real CLI, the sandbox over loopback, a real database.

Ground truth is the sandbox's ``/sandbox/calls``: the call it was asked to place, with the
metadata it received and the summary and entities it "extracted". The campaign is compared
before and after (``campaign show --json``, the contact rows, the attempts table): a test call
counts for nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from storage.engine import make_engine
from storage.models import Attempt, utcnow
from tests.cli_helpers import (
    ALL_DAY,
    attempts,
    contacts_by_phone,
    create_campaign,
    run_cli,
    write_contacts_csv,
)
from tests.conftest import Sandbox, free_port

pytestmark = pytest.mark.slow

#: The operator's own number, as they would type it (the campaign's region is IN).
TO_LOCAL = "98000 00001"
TO = "+919800000001"
ROWS = [
    # CSV row 2: no valid number, so it is not the first contact a test call can use
    {"Phone": "12", "Name": "Nobody", "email": "", "plan": "", "sandbox_callback_in": ""},
    {
        "Phone": "+919812345678",
        "Name": "Asha Rao",
        "email": "asha@example.in",
        "plan": "gold",
        "sandbox_callback_in": "2h",
    },
    {
        "Phone": "+919812345679",
        "Name": "Ravi",
        "email": "",
        "plan": "silver",
        "sandbox_callback_in": "",
    },
]


def campaign(tmp_path: Path, db_url: str, rows: list[dict[str, str]] | None = None) -> int:
    path = write_contacts_csv(tmp_path / "c.csv", rows or ROWS)
    return create_campaign(db_url, path, "--region", "IN", *ALL_DAY)


def run_test_call(
    sb: Sandbox | tuple[str, str], db_url: str, cid: int, *extra: str, to: str = TO_LOCAL
) -> subprocess.CompletedProcess[str]:
    """``campaign test-call`` against ``sb`` (a sandbox, or a (base URL, key) pair)."""
    base_url, key = sb if isinstance(sb, tuple) else (sb.base_url, sb.api_key)
    return run_cli(
        "campaign",
        "test-call",
        str(cid),
        "--to",
        to,
        "--api-key",
        key,
        "--base-url",
        base_url,
        "--poll-interval",
        "0.2",
        *extra,
        db_url=db_url,
        timeout=60,
    )


def shown(db_url: str, cid: int) -> dict[str, Any]:
    res = run_cli("campaign", "show", str(cid), "--json", db_url=db_url)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    del data["as_of"]  # the time of the reading
    return dict(data)


def snapshot(db_url: str, cid: int) -> tuple[dict[str, Any], dict[str, Any], int]:
    """What a test call must not change: the summary, every contact row, the attempts."""
    engine = make_engine(db_url)
    try:
        contacts = {k: tuple(v) for k, v in contacts_by_phone(engine).items()}
        return shown(db_url, cid), contacts, len(attempts(engine))
    finally:
        engine.dispose()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_one_call_with_the_first_contacts_metadata_and_nothing_counted(
    tmp_path: Path, db_url: str, sandbox: Sandbox
) -> None:
    cid = campaign(tmp_path, db_url)
    before = snapshot(db_url, cid)
    res = run_test_call(sandbox, db_url, cid, "--json")
    assert res.returncode == 0, res.stderr
    (call,) = sandbox.calls()  # placed exactly once
    engine = make_engine(db_url)
    try:
        asha = contacts_by_phone(engine)["+919812345678"]
    finally:
        engine.dispose()
    assert call["contact_number"] == TO  # read with the campaign's region
    assert (call["name"], call["agent_id"]) == ("Asha Rao", "agent-e2e")
    assert call["metadata"] == asha.metadata and call["metadata"]["plan"] == "gold"
    out = json.loads(res.stdout)
    assert out["call_id"] == call["call_id"]
    assert (
        (out["status"], out["outcome"]) == (call["status"], "answered") == ("completed", "answered")
    )
    assert out["summary"] == call["summary"] and "Asha Rao answered" in out["summary"]
    assert out["entities"] == call["entity"]
    assert out["duration_s"] == pytest.approx(call["duration_ms"] / 1000)
    assert (out["contact_row"], out["to"]) == (3, TO)
    # the agent's "call me back in 2 hours", read as the campaign reads a callback
    assert abs((utc(out["callback_at"]) - utc(call["entity"]["callback_at"])).total_seconds()) < 1
    assert call["call_id"] in res.stderr and "waiting for its outcome" in res.stderr
    assert snapshot(db_url, cid) == before  # nothing counted against the campaign

    # the human form, with another row's metadata
    res = run_test_call(sandbox, db_url, cid, "--contact", "4")
    assert res.returncode == 0, res.stderr
    second = sandbox.calls()[1]
    assert second["name"] == "Ravi" and second["metadata"]["plan"] == "silver"
    lines = res.stdout.splitlines()
    assert f"call id: {second['call_id']}" in lines
    assert "status: completed (answered)" in lines
    assert f"summary: {second['summary']}" in lines
    assert "entities:" in lines
    for key, value in second["entity"].items():
        assert f"  {key}: {value if isinstance(value, str) else json.dumps(value)}" in lines
    assert snapshot(db_url, cid) == before


def test_a_number_on_the_do_not_call_list_is_refused_and_nothing_placed(
    tmp_path: Path, db_url: str, sandbox: Sandbox
) -> None:
    cid = campaign(tmp_path, db_url)
    assert run_cli("dnc", "add", TO, db_url=db_url).returncode == 0
    res = run_test_call(sandbox, db_url, cid)
    assert res.returncode == 1
    assert (
        res.stderr.strip()
        == f"Error: --to {TO}: on the do-not-call list; no test call is placed to it"
    )
    assert sandbox.calls() == []


def test_a_number_with_a_live_attempt_is_refused(
    tmp_path: Path, db_url: str, sandbox: Sandbox
) -> None:
    """A lost answer is reconciled by number and time: a test call to that number now could
    be taken for it, so none is placed."""
    cid = campaign(tmp_path, db_url)
    engine = make_engine(db_url)
    try:
        ravi = contacts_by_phone(engine)["+919812345679"]
        with engine.begin() as conn:
            conn.execute(
                insert(Attempt).values(
                    contact_id=ravi.id,
                    campaign_id=cid,
                    attempt_no=1,
                    phone_e164=ravi.phone_e164,
                    state="unknown",
                    created_at=utcnow(),
                    sent_at=utcnow(),
                )
            )
    finally:
        engine.dispose()
    res = run_test_call(sandbox, db_url, cid, to=ravi.phone_e164)
    assert res.returncode == 1
    assert f"--to {ravi.phone_e164}: a call to this number is live in campaign {cid}" in res.stderr
    assert "(row 4, attempt unknown)" in res.stderr and "Traceback" not in res.stderr
    assert sandbox.calls() == []


def test_a_bad_key_exits_3_without_the_key_in_the_output(
    tmp_path: Path, db_url: str, sandbox_factory: Callable[..., Sandbox]
) -> None:
    sb = sandbox_factory("--answer-rate", "1", api_key="the-right-key-3c1d")
    cid = campaign(tmp_path, db_url)
    res = run_test_call((sb.base_url, "wrong-key-9f8e7d6c5b"), db_url, cid)
    assert res.returncode == 3
    (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert "HTTP 401" in line and "check VAANI_API_KEY (or --api-key)" in line
    assert "wrong-key-9f8e7d6c5b" not in res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert sb.calls() == []


@pytest.mark.parametrize(
    ("sandbox_args", "extra_row", "expected"),
    [
        (("--balance-calls", "0"), {}, "HTTP 402: Insufficient balance"),
        (("--agents", "another-agent"), {}, "may not use agent 'agent-e2e'"),
        ((), {"sandbox_outcome": "exploded"}, "HTTP 422: metadata.sandbox_outcome must be"),
    ],
    ids=["402", "403", "422"],
)
def test_the_api_refusing_the_call_is_one_line_and_exit_3(
    tmp_path: Path,
    sqlite_url: str,
    sandbox_factory: Callable[..., Sandbox],
    sandbox_args: tuple[str, ...],
    extra_row: dict[str, str],
    expected: str,
) -> None:
    sb = sandbox_factory(*sandbox_args)
    cid = campaign(tmp_path, sqlite_url, [{**ROWS[1], **extra_row}])
    res = run_test_call(sb, sqlite_url, cid)
    assert res.returncode == 3, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and expected in errors[0], res.stderr
    assert "Traceback" not in res.stderr
    assert sb.calls() == []


def test_an_unreachable_api_is_one_line_and_exit_3(tmp_path: Path, sqlite_url: str) -> None:
    cid = campaign(tmp_path, sqlite_url)
    port = free_port()  # nothing listens there
    res = run_test_call((f"http://127.0.0.1:{port}", "some-key-77"), sqlite_url, cid)
    assert res.returncode == 3
    assert (
        f"Error: cannot reach http://127.0.0.1:{port} (connection refused); no call was placed"
        in (res.stderr)
    )


def test_a_call_that_does_not_end_in_time_exits_3_naming_its_id(
    tmp_path: Path, sqlite_url: str, sandbox: Sandbox
) -> None:
    cid = campaign(tmp_path, sqlite_url, [{**ROWS[1], "sandbox_call_seconds": "60"}])
    res = run_test_call(sandbox, sqlite_url, cid, "--timeout", "1s")
    assert res.returncode == 3
    (call,) = sandbox.calls()
    assert f"Error: no outcome after 1s; call id {call['call_id']}" in res.stderr
    assert not call["final"]


@pytest.mark.parametrize("to", ["12345", "call me", "+1 555"])
def test_an_invalid_to_is_an_error_naming_to(
    tmp_path: Path, sqlite_url: str, sandbox: Sandbox, to: str
) -> None:
    cid = campaign(tmp_path, sqlite_url)
    res = run_test_call(sandbox, sqlite_url, cid, to=to)
    assert res.returncode == 1
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"Error: --to {to!r}: invalid phone number"), line
    assert sandbox.calls() == []


def test_to_is_required(tmp_path: Path, sqlite_url: str) -> None:
    cid = campaign(tmp_path, sqlite_url)
    res = run_cli("campaign", "test-call", str(cid), db_url=sqlite_url)
    assert res.returncode == 2 and "--to" in res.stderr
