"""Webhooks in, end to end: the real CLI (``run --listen``), the real sandbox sending webhooks
with faults, a SIGKILL of the daemon mid-run and a restart ``--until-done``.

The VaniAgent adapter and front-end are written in parallel, so the webhooks ride on the Vaani
wire here (``tests/webhooks_launch.py``): the sandbox's sender posts VaniAgent events for its
calls, and a Vaani client that takes pushed events drives them. Everything that settles calls
from events is the product's: receiver, inbox, sweep, daemon. Checked against the sandbox's
ground truth: every number called exactly once, each outcome and summary as the sandbox says,
most calls settled by their event, the rest by the sweep; the key and the webhook secret in no
log, answer or database row.
"""

from __future__ import annotations

import csv
import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from storage.engine import make_engine
from storage.inbox import list_events
from tests.cli_helpers import (
    ALL_DAY,
    DAEMON_FAST,
    attempts,
    cli_env,
    contacts_by_phone,
    create_campaign,
    run_cli,
    write_contacts_csv,
)
from tests.conftest import TEST_API_KEY, free_port
from tests.webhooks_helpers import SECRET

pytestmark = pytest.mark.slow

LAUNCH = str(Path(__file__).with_name("webhooks_launch.py"))
ROOT = Path(__file__).resolve().parent.parent
#: sim outcome -> the outcome our report shows
OUTCOMES = {
    "completed": "answered",
    "no_answer": "no_answer",
    "voicemail": "voicemail",
    "busy": "busy",
    "failed": "failed",
}
SENTIMENT = {"completed": {"positive", "negative"}, "voicemail": {"neutral"}}


def launch(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, LAUNCH, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=cli_env(env),
            cwd=ROOT,
        )


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited early: {log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer: {log.read_text()}")


def rows(n: int) -> list[dict[str, str]]:
    return [{"Phone": f"+9198{i:08d}", "Customer Name": f"Customer {i}"} for i in range(n)]


def run_args(base_url: str, listen_port: int, *extra: str) -> tuple[str, ...]:
    return (
        "run",
        "--api-key",
        TEST_API_KEY,
        "--base-url",
        base_url,
        "--rate-limit",
        "20/s",
        "--max-concurrent",
        "20",
        "--listen",
        f"127.0.0.1:{listen_port}",
        "--log-json",
        *DAEMON_FAST,
        *extra,
    )


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_webhooks_settle_calls_under_faults_and_a_sigkill(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db_url = (
        f"sqlite:///{tmp_path / 'e2e.db'}" if db == "sqlite" else request.getfixturevalue("pg_url")
    )
    n = 40
    listen = free_port()
    sb_port = free_port()
    sb_log = tmp_path / "sandbox.log"
    sandbox = launch(
        *("sandbox", "--provider", "vaani-webhooks", "--port", str(sb_port)),
        *("--api-key", TEST_API_KEY, "--seed", "4", "--answer-rate", "0.7"),
        *(
            "--call-seconds",
            "0.5-1.5",
            "--webhook-url",
            f"http://127.0.0.1:{listen}/webhooks/vaani",
        ),
        *("--webhook-secret", SECRET, "--faults"),
        "429=0.05,5xx=0.05,lost=0.05,webhook_drop=0.1,webhook_dup=0.05,"
        "webhook_delay=0.05,webhook_reorder=0.05",
        log=sb_log,
    )
    base = f"http://127.0.0.1:{sb_port}"
    try:
        wait_http(f"{base}/api/health", sandbox, sb_log)
        csv_path = write_contacts_csv(tmp_path / "c.csv", rows(n))
        cid = create_campaign(db_url, csv_path, *ALL_DAY, "--max-attempts", "1")
        env = {"VAANI_WEBHOOK_SECRET": SECRET}
        first_log = tmp_path / "run1.log"
        first = launch("--db", db_url, *run_args(base, listen), log=first_log, env=env)
        wait_http(f"http://127.0.0.1:{listen}/health", first, first_log)
        # let calls get placed and some settle by webhook, then kill the daemon mid-run
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline
            and len(httpx.get(f"{base}/sandbox/calls").json()["calls"]) < n // 3
        ):
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second_log = tmp_path / "run2.log"
        second = launch(
            "--db", db_url, *run_args(base, listen, "--until-done"), log=second_log, env=env
        )
        assert second.wait(timeout=150) == 0, second_log.read_text()[-3000:]
        truth = httpx.get(f"{base}/sandbox/calls").json()["calls"]
        stats = httpx.get(f"{base}/sandbox/stats").json()
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=10)

    # every number called exactly once (ground truth)
    per_number = Counter(c["contact_number"] for c in truth)
    assert len(per_number) == n and set(per_number.values()) == {1}, per_number
    engine = make_engine(db_url)
    try:
        contacts = contacts_by_phone(engine)
        finished = {a.call_id: a for a in attempts(engine) if a.state == "finished"}
        pushed = 0
        for call in truth:
            att = finished[call["call_id"]]
            assert att.outcome == OUTCOMES[call["status"]], (call, att.outcome)
            assert contacts[call["contact_number"]].outcome == att.outcome
            assert att.summary == call["summary"]
            if "end_reason" in (att.raw or {}):  # settled by its event
                pushed += 1
                assert att.entity.get("sentiment") in SENTIMENT.get(call["status"], {None})
                assert att.entity["metadata"] == call["metadata"]
            else:  # settled by the sweep, from the Vaani wire's details
                assert att.entity == call["entity"]
        webhooks = stats["webhooks"]
        assert webhooks["dropped"] > 0 and webhooks["delivered"] > 0
        # most calls settled by their event; the dropped ones (and those sent while the
        # daemon was dead) by the sweep
        assert pushed >= n * 0.6, (pushed, webhooks)
        events = list_events(engine, "vaani")
        assert all(e.applied_at is not None for e in events)
        assert len({e.event_id for e in events}) == len(events)
        # the report says what the sandbox says, call by call
        out = tmp_path / "report.csv"
        res = run_cli("report", str(cid), "--out", str(out), db_url=db_url)
        assert res.returncode == 0, res.stderr
        with out.open(encoding="utf-8-sig", newline="") as f:
            report = {r["last_call_id"]: r for r in csv.DictReader(f)}
        assert set(report) == {c["call_id"] for c in truth}
        for call in truth:
            row = report[call["call_id"]]
            assert row["outcome"] == OUTCOMES[call["status"]]
            assert row["summary"] == (call["summary"] or "")
        # no secret anywhere: logs, sandbox log, database, report
        logs = first_log.read_text() + second_log.read_text() + sb_log.read_text()
        logs += out.read_text(encoding="utf-8-sig") + res.stdout + res.stderr
        with engine.connect() as conn:
            dump = json.dumps(
                [
                    [str(v) for v in row]
                    for table in ("attempts", "inbox_events", "campaigns", "contacts")
                    for row in conn.execute(text(f"SELECT * FROM {table}"))
                ]
            )
        for secret in (SECRET, TEST_API_KEY):
            assert secret not in logs and secret not in dump
        assert "Traceback" not in logs
    finally:
        engine.dispose()


def test_run_listen_refuses_to_start_without_the_webhook_secret(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'x.db'}"
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(1))
    create_campaign(db_url, csv_path, *ALL_DAY)
    log = tmp_path / "run.log"
    proc = launch(
        "--db", db_url, *run_args("http://127.0.0.1:9", free_port(), "--until-done"), log=log
    )
    assert proc.wait(timeout=60) != 0
    out = log.read_text()
    assert "set VAANI_WEBHOOK_SECRET" in out and "Traceback" not in out
    assert len([line for line in out.splitlines() if line.strip()]) == 1, out


def test_run_listen_on_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'x.db'}"
    csv_path = write_contacts_csv(tmp_path / "c.csv", rows(1))
    create_campaign(db_url, csv_path, *ALL_DAY)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        log = tmp_path / "run.log"
        proc = launch(
            "--db",
            db_url,
            *run_args("http://127.0.0.1:9", port, "--until-done"),
            log=log,
            env={"VAANI_WEBHOOK_SECRET": SECRET},
        )
        assert proc.wait(timeout=60) != 0
    out = log.read_text()
    assert f"cannot listen on 127.0.0.1:{port}" in out and "Traceback" not in out
