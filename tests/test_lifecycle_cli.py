"""``campaign list|start|pause|resume|stop|cancel`` and ``db upgrade|current`` end to end: the real
program (``python -m campaigns``) in a subprocess, against a real database.

Each run of the program costs about a second of start-up, so the lifecycle is walked once per
database backend and the remaining messages are checked on SQLite only; the transitions
themselves are covered exhaustively, on both backends, in test_storage_campaigns.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from storage.engine import make_engine
from storage.migrate import head_revision
from storage.models import Contact
from tests.factories import indian_numbers, make_campaign, make_contacts


def run_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "campaigns", "--db", db_url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_json(db_url: str, *args: str) -> Any:
    proc = run_cli(db_url, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: ")
    for needle in needles:
        assert needle in lines[0]


def test_lifecycle_through_the_cli(db_url: str) -> None:
    engine = make_engine(db_url)
    draft = make_campaign(engine, status="draft", name="Spring renewals")
    make_contacts(engine, draft, indian_numbers(4))
    with engine.begin() as conn:  # one contact already in flight
        conn.execute(
            update(Contact)
            .where(Contact.campaign_id == draft, Contact.row_number == 2)
            .values(state="awaiting_outcome", attempts=1)
        )
    other = make_campaign(engine, status="running", name="Autumn")

    started = run_cli(db_url, "campaign", "start", str(draft))
    assert started.returncode == 0, started.stderr
    assert f"Campaign {draft} ('Spring renewals') is now running (was draft)" in started.stdout
    assert "3 contacts waiting" in started.stdout

    assert_one_line_error(
        run_cli(db_url, "campaign", "start", str(draft)),
        f"cannot start campaign {draft}",
        "already running",
    )

    stopped = run_json(db_url, "campaign", "stop", str(draft), "--reason", "client asked")
    assert stopped["status"] == "stopped"
    assert stopped["previous_status"] == "running"
    assert stopped["contacts_cancelled"] == 3
    assert stopped["counts"]["cancelled"] == 3
    assert stopped["counts"]["awaiting_outcome"] == 1  # the call in flight finishes

    listed = run_json(db_url, "campaign", "list")
    assert [(c["id"], c["name"], c["status"]) for c in listed] == [
        (draft, "Spring renewals", "stopped"),
        (other, "Autumn", "running"),
    ]
    assert listed[0]["status_reason"] == "client asked"
    assert (listed[0]["total"], listed[0]["waiting"], listed[0]["in_flight"]) == (4, 0, 1)
    with engine.connect() as conn:
        states = sorted(conn.execute(select(Contact.state)).scalars())
    assert states == ["awaiting_outcome", "cancelled", "cancelled", "cancelled"]
    engine.dispose()


def test_messages_table_and_unknown_ids(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    running = make_campaign(engine, status="running", name="Diwali offers")
    make_contacts(engine, running, indian_numbers(2))
    engine.dispose()

    paused = run_cli(sqlite_url, "campaign", "pause", str(running), "--reason", "budget review")
    assert paused.returncode == 0, paused.stderr
    assert "is now paused (was running). No new calls will be placed." in paused.stdout

    table = run_cli(sqlite_url, "campaign", "list")
    assert table.returncode == 0, table.stderr
    header, _, row = table.stdout.splitlines()[:3]
    for word in ("ID", "Name", "Status", "Contacts", "Waiting", "In flight", "Done", "Reason"):
        assert word in header
    assert row.split()[0] == str(running)
    for cell in ("Diwali offers", "paused", "budget review"):
        assert cell in row

    resumed = run_cli(sqlite_url, "campaign", "resume", str(running))
    assert resumed.returncode == 0, resumed.stderr
    assert "nobody already called is re-dialled" in resumed.stdout

    assert_one_line_error(
        run_cli(sqlite_url, "campaign", "cancel", "424242"),
        "no campaign with id 424242",
        "campaign list",
    )


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    missing = run_cli(url, "db", "current")  # read-only: a missing file is not created
    assert missing.returncode == 1 and "no database at" in missing.stderr
    assert not (tmp_path / "fresh.db").exists()
    (tmp_path / "fresh.db").touch()  # an empty SQLite file: a database without a schema
    assert run_json(url, "db", "current") == {
        "current": None,
        "head": head_revision(),
        "up_to_date": False,
    }
    up = run_cli(url, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == f"database upgraded from revision none (empty) to {head_revision()}"
    assert run_json(url, "db", "current")["up_to_date"] is True
