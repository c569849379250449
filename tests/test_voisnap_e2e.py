"""Voisnap end to end (issue 10): the real CLI against ``sandbox --provider voisnap`` under 429,
5xx and lost-answer faults, with a SIGKILL of the daemon mid-run and a restart: every number
called exactly once, and the report's outcome, summary and entity columns equal the sandbox's
ground truth. Also: the key never shows in logs, the database, the report or errors."""

from __future__ import annotations

import csv
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select

from campaigns.csvsafe import safe_cell
from storage.engine import make_engine
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
KEY = "vsnp_sb_e2e7c41d93b2a6f05"
FAULTS = "429=0.1,5xx=0.05,lost=0.08"


def voisnap_env(sb: Sandbox, **extra: str) -> dict[str, str]:
    return {"VOISNAP_API_KEY": sb.api_key, "VOISNAP_BASE_URL": sb.base_url, **extra}


def rows(n: int) -> list[dict[str, str]]:
    return [{"Phone": f"+9197{i:08d}", "Customer Name": f"Kavya {i} Rao"} for i in range(n)]


def expected_entity(call: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's entity plus what the Voisnap front's analysis adds for completed calls
    (documented in scheduler.sandbox.front_voisnap): intent and sentiment from ``interested``."""
    entity = dict(call.get("entity") or {})
    if call["status"] == "completed":
        liked = entity["interested"]
        entity["intent"] = "interested" if liked else "not_interested"
        entity["sentiment"] = "positive" if liked else "negative"
    return entity


def cell(value: Any) -> str:
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
    return safe_cell(text)


def wait_for_calls(sb: Sandbox, at_least: int, proc: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the daemon exited before it was killed"
        if sb.stats()["calls_placed"] >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} calls placed in {timeout} s")


def database_text(db_url: str) -> str:
    """Every row of every table, as text (to look for a leaked key)."""
    engine = make_engine(db_url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        text = "\n".join(repr(list(conn.execute(select(table)))) for table in meta.sorted_tables)
    engine.dispose()
    return text


def test_voisnap_cli_under_faults_and_sigkill_calls_everyone_once(
    sandbox_factory: Any, db_url: str, tmp_path: Path
) -> None:
    sb = sandbox_factory(
        *("--answer-rate", "0.6", "--call-seconds", "0.4-1.2", "--seed", "11"),
        *("--faults", FAULTS),
        api_key=KEY,
        provider="voisnap",
    )
    n = 40
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(n))
    cid = create_campaign(
        db_url, csv_path, *ALL_DAY, "--provider", "voisnap", "--max-attempts", "1"
    )
    env = voisnap_env(sb)
    common = ("--rate-limit", "100/s", "--max-concurrent", "50", *DAEMON_FAST, "--log-json")
    first = start_cli("run", *common, db_url=db_url, env=env, log=tmp_path / "first.log")
    wait_for_calls(sb, n // 3, first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    engine = make_engine(db_url)
    left = [c for c in contacts_by_phone(engine).values() if c.state != "done"]
    engine.dispose()
    assert left, "the kill came after the run: it proves nothing"
    res = run_cli("run", "--until-done", *common, db_url=db_url, env=env, timeout=150)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr

    # every number called exactly once (ground truth), whatever the faults and the kill
    calls = sb.calls()
    by_number = {c["contact_number"]: c for c in calls}
    assert len(calls) == len(by_number) == n
    stats = sb.stats()
    assert all(stats["faults"][f] > 0 for f in ("429", "5xx", "lost")), stats["faults"]
    engine = make_engine(db_url)
    contacts = contacts_by_phone(engine)
    engine.dispose()
    assert set(contacts) == set(by_number)
    statuses = {c["status"] for c in calls}
    assert {"completed", "no_answer"} <= statuses, statuses  # the seed mixes outcomes
    for phone, contact in contacts.items():
        truth = by_number[phone]
        want = "answered" if truth["status"] == "completed" else truth["status"]
        assert contact.outcome == want, (phone, contact.outcome, truth["status"])

    out = tmp_path / "report.csv"
    made = run_cli("report", str(cid), "--out", str(out), "--json", db_url=db_url)
    assert made.returncode == 0, made.stderr
    with out.open(encoding="utf-8-sig", newline="") as f:
        report = list(csv.DictReader(f))
    assert len(report) == n
    entity_cols = [h for h in report[0] if h.startswith("entity.")]
    assert {"entity.email", "entity.intent", "entity.sentiment"} <= set(entity_cols)
    for row in report:
        truth = by_number[row["phone_e164"]]
        assert row["last_call_id"] == truth["call_id"]
        want = "answered" if truth["status"] == "completed" else truth["status"]
        assert row["outcome"] == want
        assert row["summary"] == cell(truth["summary"] or "")
        entity = expected_entity(truth)
        for col in entity_cols:
            assert row[col] == cell(entity.get(col.removeprefix("entity."))), (col, row)

    # the key shows nowhere: logs, database, report
    logs = (tmp_path / "first.log").read_text() + res.stderr + res.stdout
    assert '"event"' in logs  # the JSON logs were written
    assert KEY not in logs
    assert KEY not in database_text(db_url)
    assert KEY not in out.read_text(encoding="utf-8-sig")


def test_voisnap_wrong_key_and_bad_paths_are_one_line_without_the_key(
    sandbox_factory: Any, sqlite_url: str, tmp_path: Path
) -> None:
    sb = sandbox_factory("--answer-rate", "1", api_key=KEY, provider="voisnap")
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(3))
    create_campaign(sqlite_url, csv_path, *ALL_DAY, "--provider", "voisnap")
    wrong = "vsnp_live_0123456789abcdef"
    res = run_cli(
        "run",
        "--until-done",
        *DAEMON_FAST,
        db_url=sqlite_url,
        env={"VOISNAP_API_KEY": wrong, "VOISNAP_BASE_URL": sb.base_url},
        timeout=60,
    )
    assert res.returncode == 3, res.stderr
    assert "401" in res.stderr and "Traceback" not in res.stderr
    assert wrong not in res.stderr + res.stdout
    assert wrong not in database_text(sqlite_url)
    assert sb.calls() == []

    bad = run_cli(
        "run",
        "--until-done",
        *DAEMON_FAST,
        db_url=sqlite_url,
        env=voisnap_env(sb, VOISNAP_PATHS="calls"),
        timeout=60,
    )
    assert bad.returncode != 0
    assert "VOISNAP_PATHS" in bad.stderr and "Traceback" not in bad.stderr
    assert KEY not in bad.stderr + bad.stdout
    assert sb.calls() == []


def test_voisnap_credentials_from_the_config_file_table(
    sandbox_factory: Any, sqlite_url: str, tmp_path: Path
) -> None:
    """``[providers.voisnap]`` in the config file drives Voisnap as its env vars do."""
    sb = sandbox_factory(
        "--answer-rate", "1", "--call-seconds", "0.2-0.4", api_key=KEY, provider="voisnap"
    )
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(3))
    create_campaign(sqlite_url, csv_path, *ALL_DAY, "--provider", "voisnap")
    config = tmp_path / "vaani-campaigns.toml"
    config.write_text(f'[providers.voisnap]\napi-key = "{KEY}"\nbase-url = "{sb.base_url}"\n')
    config.chmod(0o600)
    res = run_cli(
        "--config", str(config), "run", "--until-done", *DAEMON_FAST, db_url=sqlite_url, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert sorted(c["contact_number"] for c in sb.calls()) == [r["Phone"] for r in rows(3)]
    assert KEY not in res.stderr + res.stdout
