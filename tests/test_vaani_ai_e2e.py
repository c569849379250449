"""vaani.ai end to end (issue 10): the real CLI against ``sandbox --provider vaani-ai``.

``campaign create --provider vaani-ai --caller-id AGENT``, then ``run`` with only
``VAANI_AI_API_KEY`` / ``VAANI_AI_BASE_URL`` in the environment, under 429, 5xx and lost-answer
faults, SIGKILLed once mid-run and restarted ``--until-done``. The sandbox's ground truth
(``/sandbox/calls``) must show every number called exactly once, and the report's outcome,
summary and ``entity.*`` columns must equal it, contact by contact. The key must appear in no
log line, database cell, report or error.
"""

from __future__ import annotations

import csv
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select, update

from campaigns.csvsafe import safe_cell
from scheduler.outcomes import classify
from storage.engine import make_engine
from storage.models import Campaign
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

AGENT = "+16505551234"
KEY = "vaaniai-secret-key-9d4c7b1e"
FAULTS = "429=0.1,5xx=0.08,lost=0.1"


def rows(n: int) -> list[dict[str, str]]:
    return [
        {"Phone": f"+9198{i:08d}", "Customer Name": f"Kavya {i}", "Plan": f"P-{i % 3}"}
        for i in range(n)
    ]


def env(sb: Sandbox) -> dict[str, str]:
    return {"VAANI_AI_API_KEY": sb.api_key, "VAANI_AI_BASE_URL": sb.base_url}


def run_args(*extra: str) -> tuple[str, ...]:
    return ("run", "--rate-limit", "50/s", "--request-timeout", "2", *DAEMON_FAST, *extra)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def report(db_url: str, campaign_id: int, out: Path) -> list[dict[str, str]]:
    res = run_cli("report", str(campaign_id), "--out", str(out), "--json", db_url=db_url)
    assert res.returncode == 0, res.stderr
    with out.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def db_text(db_url: str) -> str:
    """Every cell of every table, as text: to prove the key is not in the database."""
    engine = make_engine(db_url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        cells = [repr(tuple(r)) for t in meta.sorted_tables for r in conn.execute(select(t))]
    engine.dispose()
    return "\n".join(cells)


def check_against_ground_truth(sb: Sandbox, db_url: str, cid: int, n: int, tmp: Path) -> None:
    truth = sb.calls()
    by_number: dict[str, list[dict[str, Any]]] = {}
    for call in truth:
        by_number.setdefault(call["contact_number"], []).append(call)
    engine = make_engine(db_url)
    contacts = contacts_by_phone(engine)
    engine.dispose()
    assert len(contacts) == n
    assert {p: len(by_number.get(p, [])) for p in contacts} == dict.fromkeys(contacts, 1)
    assert {c["agent_id"] for c in truth} == {AGENT}  # the caller id went as agent_phone_number
    table = report(db_url, cid, tmp / "report.csv")
    assert len(table) == n
    entity_cols = [h for h in table[0] if h.startswith("entity.")]
    assert {"entity.email", "entity.interested"} <= set(entity_cols)
    outcomes = set()
    for row in table:
        (call,) = by_number[row["phone_e164"]]
        assert call["final"], call
        expected = classify(call["status"])
        assert expected is not None
        assert row["outcome"] == expected.value, (row, call["status"])
        assert row["last_call_id"] == call["call_id"]
        assert row["summary"] == safe_cell(call["summary"] or "")
        for col in entity_cols:
            value = (call["entity"] or {}).get(col.removeprefix("entity."))
            shown = "" if value is None else value if isinstance(value, str) else json.dumps(value)
            assert row[col] == safe_cell(shown), (col, row, call)
        outcomes.add(row["outcome"])
    assert len(outcomes) >= 3, outcomes  # answered, no-answers and more: the mapping is used
    blob = (tmp / "report.csv").read_text(encoding="utf-8-sig") + db_text(db_url)
    assert sb.api_key not in blob


def test_every_number_called_once_under_faults_and_a_sigkill(
    sandbox_factory: Any, db_url: str, tmp_path: Path
) -> None:
    n = 40
    sb = sandbox_factory(
        "--answer-rate", "0.5", "--call-seconds", "0.5-1.5", "--seed", "11",
        "--faults", FAULTS, "--agents", AGENT, "--background-calls", "5",
        provider="vaani-ai", api_key=KEY,
    )  # fmt: skip
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(n))
    cid = create_campaign(
        db_url, csv_path, *ALL_DAY, "--provider", "vaani-ai", "--caller-id", AGENT,
        "--max-attempts", "1",
    )  # fmt: skip
    log = tmp_path / "run1.log"
    proc = start_cli(*run_args(), db_url=db_url, env=env(sb), log=log)
    try:  # kill it mid-run: some calls placed, some not
        wait_for(lambda: len(sb.calls()) >= n // 3, 60, "a third of the calls")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert len(sb.calls()) < n, "the daemon finished before it could be killed mid-run"
    res = run_cli(*run_args("--until-done"), db_url=db_url, env=env(sb), timeout=150)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    stats = sb.stats()
    assert min(stats["faults"][k] for k in ("429", "5xx", "lost")) > 0, stats["faults"]
    check_against_ground_truth(sb, db_url, cid, n, tmp_path)
    for text in (res.stderr, res.stdout, log.read_text()):
        assert KEY not in text


def test_a_campaign_without_caller_id_is_refused_in_one_line(
    sqlite_url: str, tmp_path: Path
) -> None:
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(2))
    res = run_cli(
        *("campaign", "create", "x", "--csv", str(csv_path), "--agent-id", "a"),
        *("--provider", "vaani-ai"),
        db_url=sqlite_url,
    )
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--caller-id" in lines[0] and "agent's phone number" in lines[0]
    assert "Traceback" not in res.stderr


def test_wrong_key_stops_run_naming_vaani_ai_and_never_the_key(
    sandbox_factory: Any, sqlite_url: str, tmp_path: Path
) -> None:
    sb = sandbox_factory(provider="vaani-ai", api_key=KEY)
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(3))
    create_campaign(sqlite_url, csv_path, *ALL_DAY, "--provider", "vaani-ai", "--caller-id", AGENT)
    wrong = "wrong-vaaniai-key-51c0ffee"
    res = run_cli(
        *run_args("--until-done", "--log-json"),
        db_url=sqlite_url,
        env={"VAANI_AI_API_KEY": wrong, "VAANI_AI_BASE_URL": sb.base_url},
        timeout=60,
    )
    assert res.returncode == 3, res.stderr[-2000:]
    assert "401" in res.stderr and "Invalid or missing token" in res.stderr
    assert "Check the API key (VAANI_AI_API_KEY)" in res.stderr
    assert wrong not in res.stderr + res.stdout + db_text(sqlite_url)
    assert "Traceback" not in res.stderr
    engine = make_engine(sqlite_url)
    assert {c.attempts for c in contacts_by_phone(engine).values()} == {0}
    engine.dispose()
    assert sb.calls() == []


def test_credentials_from_the_config_file_table(
    sandbox_factory: Any, sqlite_url: str, tmp_path: Path
) -> None:
    """``[providers.vaani-ai]`` in the config file is enough: no environment variable set."""
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.2-0.4", provider="vaani-ai")
    config = tmp_path / "vaani-campaigns.toml"
    config.write_text(
        f'[providers.vaani-ai]\napi_key = "{sb.api_key}"\nbase_url = "{sb.base_url}"\n'
        'rate_limit = "20/s"\n',
        encoding="utf-8",
    )
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(4))
    create_campaign(sqlite_url, csv_path, *ALL_DAY, "--provider", "vaani-ai", "--caller-id", AGENT)
    res = run_cli(
        "--config", str(config), "run", "--until-done", *DAEMON_FAST, db_url=sqlite_url, timeout=60
    )
    assert res.returncode == 0, res.stderr[-2000:]
    engine = make_engine(sqlite_url)
    contacts = contacts_by_phone(engine)
    engine.dispose()
    assert {c.state for c in contacts.values()} == {"done"}
    assert sorted(c["contact_number"] for c in sb.calls()) == sorted(contacts)


def test_a_campaign_that_lost_its_caller_id_is_paused_at_dial_time(
    sandbox_factory: Any, sqlite_url: str, tmp_path: Path
) -> None:
    """A vaani-ai campaign with no caller id in the database (written by an older version, or
    by hand) is paused with the reason at its first dial: no request, no attempt used."""
    sb = sandbox_factory(provider="vaani-ai")
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(3))
    cid = create_campaign(
        sqlite_url, csv_path, *ALL_DAY, "--provider", "vaani-ai", "--caller-id", AGENT
    )
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(update(Campaign).where(Campaign.id == cid).values(outbound_number=None))
    res = run_cli(*run_args("--until-done"), db_url=sqlite_url, env=env(sb), timeout=60)
    assert res.returncode == 3, res.stderr[-2000:]
    with engine.connect() as conn:
        camp = conn.execute(select(Campaign).where(Campaign.id == cid)).one()
    assert camp.status == "paused" and "--caller-id" in (camp.status_reason or "")
    assert {c.attempts for c in contacts_by_phone(engine).values()} == {0}
    engine.dispose()
    assert sb.calls() == [] and sb.stats()["requests"] == {}
