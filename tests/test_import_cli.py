"""``vaani-campaigns campaign create`` from the outside: a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns.cli import main
from storage.engine import make_engine
from storage.models import Campaign, Contact

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "campaigns", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def test_create_end_to_end_json(db_url: str, tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    proc = run_cli(
        "--db", db_url, "campaign", "create", "Diwali offers",
        "--csv", str(SAMPLE / "contacts.csv"), "--region", "IN",
        "--dnc", str(SAMPLE / "dnc.txt"), "--rejects", str(rejects),
        "--window", "10:00-19:00", "--days", "mon-fri", "--max-attempts", "4",
        "--retry-delay", "90m", "--caller-id", "+918000000000", "--voice", "meera",
        "--start-at", "2026-12-01T09:00", "--timezone", "Asia/Kolkata", "--json",
        env={"VAANI_AGENT_ID": "agent-from-env"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {k: out[k] for k in ("imported", "duplicates", "invalid", "suppressed")} == {
        "imported": 29,
        "duplicates": 1,
        "invalid": 2,
        "suppressed": 2,
    }
    assert "Traceback" not in proc.stderr and "Importing" not in proc.stderr  # no bar: not a tty
    assert rejects.exists()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            camp = conn.execute(
                select(Campaign.__table__).where(Campaign.id == out["campaign_id"])
            ).one()
            n = conn.execute(select(Contact.id).where(Contact.campaign_id == camp.id)).all()
    finally:
        engine.dispose()
    assert len(n) == 34
    assert (camp.name, camp.agent_id, camp.status) == ("Diwali offers", "agent-from-env", "running")
    assert (camp.window_start, camp.window_end, camp.days) == ("10:00", "19:00",
                                                               "mon,tue,wed,thu,fri")  # fmt: skip
    assert (camp.max_attempts, camp.retry_delay_s, camp.timezone) == (4, 5400, "Asia/Kolkata")
    assert (camp.outbound_number, camp.voice) == ("+918000000000", "meera")
    assert camp.start_at.isoformat() == "2026-12-01T03:30:00+00:00"


def test_no_phone_column_exits_1_without_traceback(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("Customer,Contact\nAsha,98450 12345\n", encoding="utf-8")
    proc = run_cli(
        "--db", str(db), "campaign", "create", "x", "--csv", str(csv_path), "--agent-id", "a"
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert str(csv_path) in proc.stderr and "--phone-column" in proc.stderr
    assert proc.stderr.count("\n") == 1
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            assert conn.execute(select(Campaign.id)).first() is None
    finally:
        engine.dispose()


def _main(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return int(exc.value.code or 0)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--window", "20:00-09:00", "--window"),
        ("--days", "funday", "--days"),
        ("--retry-delay", "soon", "--retry-delay"),
        ("--timezone", "Mars/Base", "--timezone"),
        ("--start-at", "next tuesday", "--start-at"),
        ("--region", "XX", "--region"),
        ("--max-attempts", "0", "--max-attempts"),
        ("--retry-delay", "0s", "--retry-delay: at least 120 s, not '0s'"),
        ("--agent-id", "a" * 201, "--agent-id: at most 200 characters, not 201"),
    ],
)
def test_bad_options_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    code = _main(
        "--db", str(tmp_path / "x.db"), "campaign", "create", "x",
        "--csv", str(SAMPLE / "contacts.csv"), "--agent-id", "a", flag, value,
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err


def test_draft_and_human_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _main(
        "--db", str(tmp_path / "x.db"), "campaign", "create", "Draft one",
        "--csv", str(SAMPLE / "contacts.csv"), "--agent-id", "a", "--region", "IN", "--draft",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "(draft): 31 of 34 contacts to call" in out
    assert "1 duplicate, 2 invalid, 0 on the do-not-call list" in out
    assert "Start it with: vaani-campaigns campaign start" in out  # not `resume`: it refuses
    assert "--rejects" in out
