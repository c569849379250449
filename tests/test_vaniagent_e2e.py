"""VaniAgent end to end (issue 10): the real CLI against ``sandbox --provider vaniagent``.

``campaign create --provider vaniagent``, then ``run`` with ``VANIAGENT_API_KEY`` /
``VANIAGENT_BASE_URL`` under 429, 5xx and lost-answer faults, SIGKILLed mid-run and restarted
with ``--until-done``; request windows from the config file's ``[providers.vaniagent]
rate-limit`` list. Then, against the sandbox's ground truth: every number was called exactly
once, and the report's ``outcome``, ``summary`` and ``entity.*`` columns are what VaniAgent
said about each call. The key appears in no log, database, report or error.
"""

from __future__ import annotations

import csv
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from campaigns.report_pages import text_cell
from scheduler.outcomes import classify
from storage.engine import make_engine
from storage.models import Base
from tests.cli_helpers import (
    ALL_DAY,
    DAEMON_FAST,
    create_campaign,
    run_cli,
    start_cli,
    write_contacts_csv,
)
from tests.conftest import Sandbox

pytestmark = pytest.mark.slow

FAULTS = "429=0.1,5xx=0.05,lost=0.1"
CONNECTED = ("completed", "voicemail")
ASSETS = "https://assets.vaniagent.sandbox"


def rows(n: int) -> list[dict[str, str]]:
    return [
        {"Phone": f"+1415555{i:04d}", "Customer Name": f"Customer {i}", "customer_id": f"c-{i}"}
        for i in range(n)
    ]


def env_for(sb: Sandbox, key: str | None = None) -> dict[str, str]:
    return {"VANIAGENT_API_KEY": key or sb.api_key, "VANIAGENT_BASE_URL": sb.base_url}


def config_file(tmp_path: Path) -> Path:
    """Windows well above the test's pace: the windowed gate is on the path, never the cap."""
    path = tmp_path / "campaigns.toml"
    path.write_text('[providers.vaniagent]\nrate-limit = "6000/min, 100000/h"\n')
    return path


def run_args(config: Path, *extra: str) -> tuple[str, ...]:
    return (
        "--config",
        str(config),
        "run",
        *extra,
        "--rate-limit",
        "100/s",
        "--max-concurrent",
        "50",
        "--request-timeout",
        "2",
        *DAEMON_FAST,
    )


def expected_entities(call: dict[str, Any]) -> dict[str, Any]:
    """What VaniAgent says about a call, from the ground truth (the front's documented rules)."""
    out: dict[str, Any] = {"metadata": call["metadata"]}
    if call["status"] in CONNECTED:
        entity = call["entity"]
        sentiment = "positive" if entity.get("interested") else "neutral"
        out["sentiment"] = "negative" if entity.get("opt_out") else sentiment
        out["transcript_url"] = f"{ASSETS}/transcripts/{call['call_id']}.txt"
        out["recording_url"] = f"{ASSETS}/recordings/{call['call_id']}.mp3"
    return out


def check_against_truth(sb: Sandbox, db_url: str, cid: int, n: int, tmp_path: Path) -> str:
    calls = sb.calls()
    by_number: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        by_number.setdefault(call["contact_number"], []).append(call)
    numbers = [r["Phone"] for r in rows(n)]
    assert {p: len(by_number.get(p, [])) for p in numbers} == dict.fromkeys(numbers, 1)
    assert all(c["final"] for c in calls)
    statuses = {c["status"] for c in calls}
    assert {"completed", "no_answer"} <= statuses, statuses  # the mapping is really exercised

    out = tmp_path / "report.csv"
    res = run_cli("report", str(cid), "--out", str(out), "--json", db_url=db_url)
    assert res.returncode == 0, res.stderr
    with out.open(encoding="utf-8-sig", newline="") as f:
        report = list(csv.DictReader(f))
    assert len(report) == n
    entity_cols = {h for h in report[0] if h.startswith("entity.")}
    assert {"entity.sentiment", "entity.transcript_url", "entity.metadata"} <= entity_cols
    for row in report:
        call = by_number[row["phone_e164"]][0]
        assert row["last_call_id"] == call["call_id"]
        outcome = classify(call["status"])
        assert outcome is not None and row["outcome"] == outcome.value, (row, call["status"])
        assert row["summary"] == text_cell(call["summary"])
        expected = expected_entities(call)
        got = {c.removeprefix("entity."): row[c] for c in entity_cols}
        assert got == {k: text_cell(expected.get(k)) for k in got}, row["phone_e164"]
        assert set(expected) <= set(got)
    return out.read_text(encoding="utf-8-sig")


def killed_then_done(
    sb: Sandbox, db_url: str, tmp_path: Path, *, n: int, seed: int
) -> tuple[int, str, str]:
    csv_path = write_contacts_csv(tmp_path / "contacts.csv", rows(n))
    cid = create_campaign(
        db_url, csv_path, *ALL_DAY, "--provider", "vaniagent", "--max-attempts", "1"
    )
    config = config_file(tmp_path)
    log = tmp_path / "killed.log"
    proc = start_cli(*run_args(config), db_url=db_url, env=env_for(sb), log=log)
    deadline = time.monotonic() + 30
    wanted = random.Random(seed).randint(n // 4, n // 2)
    while len(sb.calls()) < wanted and time.monotonic() < deadline:  # wait on state, then kill
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert 0 < len(sb.calls()) < n, "the kill must land mid-run"
    res = run_cli(*run_args(config, "--until-done"), db_url=db_url, env=env_for(sb), timeout=150)
    assert res.returncode == 0, res.stderr[-3000:]
    return cid, res.stderr + log.read_text(), res.stdout


def test_faults_and_a_sigkill_never_call_twice_and_the_report_is_the_truth(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    sb = sandbox_factory(
        *("--answer-rate", "0.6", "--call-seconds", "0.3-1.0", "--seed", "11"),
        *("--faults", FAULTS, "--slow-seconds", "3"),
        provider="vaniagent",
    )
    n = 40
    cid, logs, stdout = killed_then_done(sb, sqlite_url, tmp_path, n=n, seed=11)
    report = check_against_truth(sb, sqlite_url, cid, n, tmp_path)
    stats = sb.stats()
    assert stats["faults"]["429"] and stats["faults"]["5xx"] and stats["faults"]["lost"], stats
    # the key never shows: logs, output, report, the database file
    db_bytes = Path(sqlite_url.removeprefix("sqlite:///")).read_bytes()
    for text in (logs, stdout, report, db_bytes.decode("latin-1")):
        assert sb.api_key not in text
    assert "Traceback" not in logs


def test_postgresql_end_to_end(sandbox_factory, pg_url: str, tmp_path: Path) -> None:
    """The same run on PostgreSQL (lighter faults, fewer contacts: it shares 2 CPUs)."""
    sb = sandbox_factory(
        *("--answer-rate", "0.6", "--call-seconds", "0.3-0.8", "--seed", "12"),
        *("--faults", "429=0.05,5xx=0.05,lost=0.1"),
        provider="vaniagent",
    )
    n = 24
    cid, logs, _ = killed_then_done(sb, pg_url, tmp_path, n=n, seed=12)
    check_against_truth(sb, pg_url, cid, n, tmp_path)
    assert sb.api_key not in logs
    stored = database_text(pg_url)
    assert sb.calls()[0]["call_id"] in stored  # the dump really holds the run
    assert sb.api_key not in stored


def database_text(db_url: str) -> str:
    """Every row of every table, as text (to look for a secret in)."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return "\n".join(
                repr(tuple(row))
                for table in Base.metadata.sorted_tables
                for row in conn.execute(select(table))
            )
    finally:
        engine.dispose()


def test_a_wrong_key_stops_run_in_one_line_that_never_shows_it(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    sb = sandbox_factory("--answer-rate", "1", provider="vaniagent")
    csv_path = write_contacts_csv(tmp_path / "contacts.csv", rows(3))
    create_campaign(sqlite_url, csv_path, *ALL_DAY, "--provider", "vaniagent")
    wrong = "va-wrong-key-93e1c7"
    res = run_cli(
        *run_args(config_file(tmp_path), "--until-done"),
        db_url=sqlite_url,
        env=env_for(sb, wrong),
        timeout=60,
    )
    assert res.returncode == 3, res.stderr
    assert "VaniAgent" in res.stderr and "401" in res.stderr
    assert wrong not in res.stderr + res.stdout and "Traceback" not in res.stderr
    assert sb.calls() == []
    db_bytes = Path(sqlite_url.removeprefix("sqlite:///")).read_bytes()
    assert wrong.encode() not in db_bytes


def test_configured_windows_cap_what_run_sends(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    """``[providers.vaniagent] rate-limit = "50/s, 12/min"``: a run that wants many more
    requests sends 12 in its first minute, whatever the ceiling of ``--rate-limit``."""
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.5-1", provider="vaniagent")
    csv_path = write_contacts_csv(tmp_path / "contacts.csv", rows(8))
    create_campaign(sqlite_url, csv_path, *ALL_DAY, "--provider", "vaniagent")
    config = tmp_path / "windows.toml"
    config.write_text('[providers.vaniagent]\nrate-limit = "50/s, 12/min"\n')
    proc = start_cli(*run_args(config), db_url=sqlite_url, env=env_for(sb), log=tmp_path / "w.log")
    deadline = time.monotonic() + 20
    while sum(sb.stats()["requests"].values()) < 12 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(3)  # at 100/s, without the window, hundreds more would go in this time
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, (tmp_path / "w.log").read_text()
    assert sum(sb.stats()["requests"].values()) == 12
