"""``campaign import|edit|requeue|contacts|archive|delete`` end to end: the real program in a
subprocess, the real sandbox over loopback, a real database.

Ground truth for calls is the sandbox's ``/sandbox/calls``. The daemon runs ``--until-done``
where a test needs a finished campaign, and in the background where a change must reach it
without a restart (``edit``).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from storage.engine import make_engine
from storage.models import Attempt, Campaign, Contact, OutboxEvent
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


def rows(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"Phone": f"+9198{start + i:08d}", "Name": f"Customer {start + i}"} for i in range(n)]


def daemon(sb: Sandbox, *extra: str) -> tuple[str, ...]:
    return ("run", "--api-key", sb.api_key, "--base-url", sb.base_url, *DAEMON_FAST, *extra)


def run_until_done(sb: Sandbox, db_url: str) -> None:
    res = run_cli(*daemon(sb, "--until-done", "--rate-limit", "100/s"), db_url=db_url)
    assert res.returncode == 0, res.stderr


def cli_json(db_url: str, *args: str) -> dict:  # type: ignore[type-arg]
    res = run_cli(*args, "--json", db_url=db_url)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 1, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def status(db_url: str, campaign_id: int) -> str:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        value = conn.execute(select(Campaign.status).where(Campaign.id == campaign_id)).scalar()
    engine.dispose()
    return str(value)


def calls_per_number(sb: Sandbox) -> Counter[str]:
    return Counter(c["contact_number"] for c in sb.calls())


def wait_for(check: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_import_into_a_completed_campaign_runs_it_again(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    cid = create_campaign(db_url, write_contacts_csv(tmp_path / "a.csv", rows(2)), *ALL_DAY)
    run_until_done(sandbox, db_url)
    assert status(db_url, cid) == "completed"
    archived = run_cli("campaign", "archive", str(cid), db_url=db_url)
    assert archived.returncode == 0, archived.stderr

    more = write_contacts_csv(tmp_path / "more.csv", rows(3, start=1))  # the first is known
    res = run_cli("campaign", "import", str(cid), "--csv", str(more), db_url=db_url)
    assert res.returncode == 0, res.stderr
    assert f"Campaign {cid} ('e2e', running): 2 of 3 contacts added to call." in res.stdout
    assert "1 duplicate" in res.stdout
    assert status(db_url, cid) == "running"
    assert [c["id"] for c in cli_json(db_url, "campaign", "list")] == [cid]  # type: ignore[attr-defined]

    run_until_done(sandbox, db_url)
    assert status(db_url, cid) == "completed"
    assert calls_per_number(sandbox) == {r["Phone"]: 1 for r in rows(4)}
    engine = make_engine(db_url)
    by_phone = contacts_by_phone(engine)
    engine.dispose()
    assert {p: c.state for p, c in by_phone.items() if p} == {r["Phone"]: "done" for r in rows(4)}

    stopped = create_campaign(db_url, more, *ALL_DAY, name="other")
    run_cli("campaign", "stop", str(stopped), db_url=db_url)
    one_line_error(
        run_cli("campaign", "import", str(stopped), "--csv", str(more), db_url=db_url),
        "is stopped: it will not dial again",
    )


def test_requeue_redials_exhausted_contacts_and_lists_them(
    sandbox_factory: Callable[..., Sandbox], db_url: str, tmp_path: Path
) -> None:
    sqlite_url = db_url  # both backends (the name keeps the lines short)
    sb = sandbox_factory("--answer-rate", "0", "--call-seconds", "0.2-0.4", "--seed", "2")
    people = [r | {"sandbox_outcome": "no_answer"} for r in rows(3)]
    people[2]["sandbox_outcome"] = "busy"
    cid = create_campaign(
        sqlite_url,
        write_contacts_csv(tmp_path / "c.csv", people),
        *ALL_DAY,
        "--max-attempts",
        "1",
    )
    run_until_done(sb, sqlite_url)
    assert status(sqlite_url, cid) == "completed"

    listed = run_cli("campaign", "contacts", str(cid), "--state", "exhausted", db_url=sqlite_url)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["ROW", "PHONE", "STATE", "OUTCOME"]
    assert len(lines) == 4 and all("exhausted" in line for line in lines[1:])
    busy = run_cli(
        "campaign", "contacts", str(cid), "--outcome", "busy", "--json", db_url=sqlite_url
    )
    assert [(c["phone_e164"], c["outcome"], c["attempts"]) for c in json.loads(busy.stdout)] == [
        (people[2]["Phone"], "busy", 1)
    ]
    one_line_error(
        run_cli("campaign", "contacts", str(cid), "--state", "bogus", db_url=sqlite_url),
        "--state: unknown state 'bogus'",
    )

    one_line_error(
        run_cli("campaign", "requeue", str(cid), "--state", "suppressed", db_url=sqlite_url),
        "--state: 'suppressed' cannot be requeued",
    )
    done = cli_json(
        sqlite_url,
        "campaign",
        "requeue",
        str(cid),
        "--state",
        "exhausted",
        "--outcome",
        "no_answer",
    )
    assert done == {
        "campaign_id": cid,
        "requeued": 2,
        "status": "running",
        "previous_status": "completed",
    }
    run_until_done(sb, sqlite_url)
    assert status(sqlite_url, cid) == "completed"
    no_answer = [r["Phone"] for r in people[:2]]
    assert calls_per_number(sb) == {no_answer[0]: 2, no_answer[1]: 2, people[2]["Phone"]: 1}

    # the attempts history stays: the report lists every call, the first ones included
    report = tmp_path / "attempts.csv"
    res = run_cli("report", str(cid), "--attempts", "--out", str(report), db_url=sqlite_url)
    assert res.returncode == 0, res.stderr
    lines = report.read_text("utf-8-sig").splitlines()
    assert len(lines) == 1 + 5
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        numbers = conn.execute(select(Attempt.attempt_no).order_by(Attempt.id)).scalars().all()
    engine.dispose()
    assert sorted(numbers) == [1, 1, 1, 2, 2]

    # the issue's own spelling: no_outcome as a state means "closed without an outcome"
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            update(Contact)
            .where(Contact.phone_e164 == people[2]["Phone"])
            .values(state="done", outcome="no_outcome")
        )
    engine.dispose()
    only = cli_json(sqlite_url, "campaign", "requeue", str(cid), "--state", "no_outcome")
    assert only["requeued"] == 1
    again = cli_json(sqlite_url, "campaign", "requeue", str(cid), "--state", "exhausted,no_outcome")
    assert again["requeued"] == 2

    # requeued into a campaign that has ended: they would expire at once, and the CLI says so
    edited = cli_json(sqlite_url, "campaign", "edit", str(cid), "--end-at", "2020-01-01T00:00Z")
    assert edited["changed"]["end_at"][1].startswith("2020-01-01 00:00:00")
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(update(Contact).values(state="expired"))
    engine.dispose()
    late = run_cli("campaign", "requeue", str(cid), "--state", "expired", db_url=sqlite_url)
    assert "3 contacts requeued" in late.stdout, late.stderr
    assert "Note: the campaign ended at 2020-01-01 00:00 UTC" in late.stdout


def _closed_window(zone: str) -> str:
    """A half-hour window that is far from now in ``zone`` (never wraps midnight)."""
    hour = datetime.now(ZoneInfo(zone)).hour
    return "23:00-23:30" if hour < 12 else "01:00-01:30"


def test_edit_reaches_a_running_daemon_without_a_restart(
    sandbox_factory: Callable[..., Sandbox], db_url: str, tmp_path: Path
) -> None:
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.3-0.6", "--seed", "4")
    n = 40
    cid = create_campaign(db_url, write_contacts_csv(tmp_path / "c.csv", rows(n)), *ALL_DAY)
    log = tmp_path / "daemon.log"
    proc = start_cli(*daemon(sb, "--rate-limit", "2/s"), db_url=db_url, log=log)
    try:
        wait_for(lambda: len(sb.calls()) >= 3, what="the first calls")
        edited = cli_json(
            db_url, "campaign", "edit", str(cid), "--window", _closed_window("Asia/Kolkata")
        )
        assert set(edited["changed"]) == {"window_start", "window_end"}
        engine = make_engine(db_url)

        def all_deferred() -> bool:  # the daemon read the new window and deferred the rest
            later = datetime.now(UTC) + timedelta(minutes=30)
            with engine.connect() as conn:
                open_ = conn.execute(
                    select(func.count())
                    .select_from(Contact)
                    .where(
                        Contact.campaign_id == cid,
                        Contact.state.in_(["dialing", "awaiting_outcome"])
                        | (
                            (Contact.state == "pending")
                            & (
                                Contact.next_attempt_at.is_(None)
                                | (Contact.next_attempt_at < later)
                            )
                        ),
                    )
                ).scalar_one()
            return open_ == 0

        wait_for(all_deferred, what="every waiting contact deferred to the new window")
        placed = len(sb.calls())
        time.sleep(2)  # several ticks of 0.3 s: none may place a call
        assert len(sb.calls()) == placed < n
        assert proc.poll() is None, log.read_text()

        # and open again: the deferred contacts are decided anew at the next tick, not at the
        # opening of the closed window hours away
        cli_json(db_url, "campaign", "edit", str(cid), "--window", "00:00-24:00")
        wait_for(lambda: len(sb.calls()) == n, timeout=90, what="every contact called")
        assert calls_per_number(sb) == {r["Phone"]: 1 for r in rows(n)}
        engine.dispose()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_edit_checks_every_value_like_create(sqlite_url: str, tmp_path: Path) -> None:
    cid = create_campaign(sqlite_url, write_contacts_csv(tmp_path / "c.csv", rows(2)), *ALL_DAY)
    edit = ("campaign", "edit", str(cid))
    one_line_error(run_cli(*edit, "--window", "25:00-26:00", db_url=sqlite_url), "--window:")
    one_line_error(run_cli(*edit, "--days", "someday", db_url=sqlite_url), "--days:")
    one_line_error(run_cli(*edit, "--max-attempts", "0", db_url=sqlite_url), "--max-attempts:")
    one_line_error(run_cli(*edit, "--end-at", "tomorrow", db_url=sqlite_url), "--end-at:")
    one_line_error(run_cli(*edit, "--daily-cap", "0", db_url=sqlite_url), "--daily-cap:")
    one_line_error(
        run_cli(
            *edit, "--retry-delay", "30s", db_url=sqlite_url, env={"VAANI_MIN_RETRY_DELAY": ""}
        ),
        "--retry-delay: at least 120 s",
    )
    one_line_error(run_cli(*edit, db_url=sqlite_url), "nothing to change")
    one_line_error(run_cli("campaign", "edit", "99", "--days", "all", db_url=sqlite_url), "99")

    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        stamp = conn.execute(select(Campaign.updated_at)).scalar_one()
    done = cli_json(
        sqlite_url, *edit, "--max-attempts", "5", "--daily-cap", "2", "--end-at", "2030-01-01"
    )
    assert done["changed"]["max_attempts"] == ["3", "5"]
    assert done["changed"]["daily_cap_per_number"] == ["None", "2"]
    with engine.connect() as conn:
        row = conn.execute(select(Campaign)).one()
    engine.dispose()
    assert (row.max_attempts, row.daily_cap_per_number) == (5, 2)
    assert row.end_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert row.updated_at > stamp  # what a daemon's policy cache is keyed by
    res = run_cli(*edit, "--window", "08:00-21:00", db_url=sqlite_url)
    assert "window_start: 00:00 -> 08:00" in res.stdout, res.stderr
    caller = cli_json(sqlite_url, *edit, "--caller-id", "+16505551234")
    assert caller["changed"] == {"outbound_number": ["None", "+16505551234"]}
    one_line_error(run_cli(*edit, "--caller-id", "+1" * 20, db_url=sqlite_url), "--caller-id:")


def test_archive_and_delete(db_url: str, tmp_path: Path) -> None:
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(3))
    cid = create_campaign(db_url, csv_path, *ALL_DAY)
    keep = create_campaign(db_url, csv_path, *ALL_DAY, name="keep")

    one_line_error(run_cli("campaign", "archive", str(cid), db_url=db_url), "stop it first")
    run_cli("campaign", "stop", str(cid), db_url=db_url)
    res = run_cli("campaign", "archive", str(cid), db_url=db_url)
    assert res.returncode == 0 and "archived" in res.stdout, res.stderr
    assert [c["id"] for c in cli_json(db_url, "campaign", "list")] == [keep]  # type: ignore[attr-defined]
    listed = cli_json(db_url, "campaign", "list", "--all")
    assert [c["id"] for c in listed] == [cid, keep]  # type: ignore[attr-defined]
    assert "(archived)" in run_cli("campaign", "list", "--all", db_url=db_url).stdout

    one_line_error(
        run_cli("campaign", "delete", str(cid), db_url=db_url),
        "3 contacts",
        "add --yes",
        f"campaign archive {cid}",
    )
    engine = make_engine(db_url)
    with engine.begin() as conn:  # a call still awaiting its outcome
        conn.execute(
            update(Contact)
            .where(Contact.campaign_id == cid, Contact.row_number == 2)
            .values(state="awaiting_outcome")
        )
    one_line_error(
        run_cli("campaign", "delete", str(cid), "--yes", db_url=db_url), "calls are live"
    )
    with engine.begin() as conn:
        conn.execute(update(Contact).where(Contact.campaign_id == cid).values(state="cancelled"))
    res = run_cli("campaign", "delete", str(cid), "--yes", db_url=db_url)
    assert res.returncode == 0, res.stderr
    assert f"Deleted campaign {cid} ('e2e'): 3 contacts, 0 call attempts" in res.stdout
    with engine.connect() as conn:
        left = conn.execute(select(Contact.campaign_id, func.count()).group_by(Contact.campaign_id))
        assert dict(left.all()) == {keep: 3}
        assert conn.execute(select(Campaign.id)).scalars().all() == [keep]
        assert conn.execute(select(func.count()).select_from(OutboxEvent)).scalar_one() == 0
    engine.dispose()
    one_line_error(run_cli("campaign", "delete", str(cid), "--yes", db_url=db_url), "no campaign")


def test_console_requeue_route(sqlite_url: str, tmp_path: Path) -> None:
    from tests.console_helpers import serve

    cid = create_campaign(sqlite_url, write_contacts_csv(tmp_path / "c.csv", rows(3)), *ALL_DAY)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(update(Contact).values(state="exhausted", outcome="no_answer", attempts=3))
        conn.execute(update(Campaign).values(status="completed"))
    with serve(sqlite_url, tmp_path) as console, console.client() as api:
        bad = api.post(f"/api/campaigns/{cid}/requeue", json={"states": "pending"})
        assert bad.status_code == 400 and "cannot be requeued" in bad.json()["error"]
        done = api.post(f"/api/campaigns/{cid}/requeue", json={"outcomes": "no_answer"})
        assert done.status_code == 200, done.text
        assert done.json() == {
            "id": cid,
            "requeued": 3,
            "status": "running",
            "previous_status": "completed",
        }
        assert api.post("/api/campaigns/999/requeue").status_code == 404
        assert (
            "/api/campaigns/{campaign_id}/requeue" in api.get("/api/openapi.json").json()["paths"]
        )
    with engine.connect() as conn:
        assert set(conn.execute(select(Contact.state, Contact.attempts)).all()) == {("pending", 0)}
    engine.dispose()
