"""Issue 13, through the real command line: no output path ever replaces the database or an
input of the same command; a symlink is written through, a FIFO is written into.

Each case is the exact mistake the hostile test of main made: ``report 1 --out t.db``,
``--rejects`` naming the contact CSV or the database.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.cli_helpers import create_campaign, run_cli, write_contacts_csv

ROWS = [{"Phone": f"+9198{i:08d}", "Name": f"Person {i}"} for i in range(20)] + [
    {"Phone": "12345", "Name": "Bad number"}
]


def _db_file(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _integrity_ok(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == len(ROWS)


@pytest.fixture
def campaign(sqlite_url: str, tmp_path: Path) -> tuple[str, Path]:
    csv_path = write_contacts_csv(tmp_path / "contacts.csv", ROWS)
    create_campaign(sqlite_url, csv_path, "--region", "IN")
    return sqlite_url, csv_path


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_report_refuses_the_database_and_its_companion_files(
    campaign: tuple[str, Path], suffix: str
) -> None:
    url, _ = campaign
    db = _db_file(url)
    target = Path(f"{db}{suffix}")
    before = target.read_bytes() if target.exists() else None
    res = run_cli("report", "1", "--out", str(target), db_url=url)
    assert res.returncode == 1, res.stderr
    assert "refusing to write here: it is the campaign database" in res.stderr
    assert "Traceback" not in res.stderr and "Wrote" not in res.stderr
    if before is not None:
        assert target.read_bytes() == before
    _integrity_ok(db)
    assert run_cli("campaign", "list", db_url=url).returncode == 0


def test_report_refuses_a_symlink_to_the_database(campaign: tuple[str, Path]) -> None:
    url, _ = campaign
    db = _db_file(url)
    link = db.with_name("looks-harmless.csv")
    link.symlink_to(db)
    res = run_cli("report", "1", "--out", str(link), db_url=url)
    assert res.returncode == 1 and "the campaign database" in res.stderr, res.stderr
    assert link.is_symlink()
    _integrity_ok(db)


def test_rejects_refuses_the_input_csv_and_the_database(campaign: tuple[str, Path]) -> None:
    url, csv_path = campaign
    original = csv_path.read_bytes()
    for target, what in ((csv_path, "an input of this command"), (_db_file(url), "database")):
        res = run_cli(
            "campaign",
            "create",
            "again",
            "--csv",
            str(csv_path),
            "--agent-id",
            "a",
            "--region",
            "IN",
            "--rejects",
            str(target),
            db_url=url,
        )
        assert res.returncode == 1, res.stderr
        assert "refusing to write here" in res.stderr and what in res.stderr, res.stderr
    assert csv_path.read_bytes() == original  # 300 rows did not become 28 bytes
    _integrity_ok(_db_file(url))
    listed = run_cli("campaign", "list", "--json", db_url=url)
    assert listed.returncode == 0 and listed.stdout.count('"name"') == 1, listed.stdout


def test_report_writes_through_a_symlink_and_into_a_fifo(
    campaign: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = campaign
    real = tmp_path / "reports" / "real.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    os.chmod(real, 0o640)
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    res = run_cli("report", "1", "--out", str(link), "--no-bom", db_url=url)
    assert res.returncode == 0, res.stderr
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text(encoding="utf-8").startswith("Phone,Name,phone_e164")
    assert real.stat().st_mode & 0o777 == 0o640

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    res = run_cli("report", "1", "--out", str(fifo), "--no-bom", db_url=url)
    reader.join(timeout=30)
    assert res.returncode == 0, res.stderr
    assert fifo.exists() and not fifo.is_file()  # still a FIFO, never replaced
    assert got and got[0].decode().count("\n") == len(ROWS) + 1
