"""Run the real ``vaani-campaigns`` command line in a subprocess, as a user would."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from storage.models import Attempt, Contact

#: End-to-end tests re-dial within seconds: they lower the --retry-delay floor (120 s).
TEST_MIN_RETRY_DELAY = "1s"


#: A calling window open around the clock, every day, for end-to-end runs at any hour.
ALL_DAY = ("--window", "00:00-24:00", "--days", "all")
#: The daemon's timings for end-to-end tests: poll often, reconcile lost answers quickly.
DAEMON_FAST = ("--poll-interval", "0.3", "--reconcile-grace", "1s", "--no-progress")


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAANI_")}
    env.pop("DATABASE_URL", None)
    env["VAANI_MIN_RETRY_DELAY"] = TEST_MIN_RETRY_DELAY
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    db_url: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 180,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "campaigns"]
    if db_url:
        cmd += ["--db", db_url]
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(env),
        cwd=cwd,
    )


def start_cli(
    *args: str, db_url: str, env: Mapping[str, str] | None = None, log: Path
) -> subprocess.Popen[bytes]:
    """Start a long-running command (the daemon) with its output in ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "campaigns", "--db", db_url, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=cli_env(env),
        )


def write_contacts_csv(path: Path, rows: Iterable[Mapping[str, str]]) -> Path:
    rows = list(rows)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    return path


def create_campaign(db_url: str, csv_path: Path, *options: str, name: str = "e2e") -> int:
    res = run_cli(
        "campaign",
        "create",
        name,
        "--csv",
        str(csv_path),
        "--agent-id",
        "agent-e2e",
        "--json",
        *options,
        db_url=db_url,
    )
    assert res.returncode == 0, res.stderr
    return int(json.loads(res.stdout)["campaign_id"])


def contacts_by_phone(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {c.phone_e164: c for c in conn.execute(select(Contact))}


def attempts(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(Attempt).order_by(Attempt.id)))
