"""The command line answers and maps failures to exit codes without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "campaigns", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_help_lists_subcommands() -> None:
    res = run_cli("--help")
    assert res.returncode == 0
    assert "sandbox" in res.stdout


def test_unknown_command_is_usage_error() -> None:
    res = run_cli("no-such-command")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr


def test_db_upgrade_creates_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    res = run_cli("--db", f"sqlite:///{db}", "db", "upgrade")
    assert res.returncode == 0, res.stderr
    assert db.exists()
