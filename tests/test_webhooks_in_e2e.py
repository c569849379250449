"""Webhooks in, end to end, on the real VaniAgent path (issue 10).

``sandbox --provider vaniagent --webhook-url .../webhooks/vaniagent --webhook-secret S`` with
request faults (429, 5xx, lost answers) and webhook faults (drop, dup, delay, reorder);
``campaign create --provider vaniagent``; ``run --listen`` with ``VANIAGENT_API_KEY`` /
``VANIAGENT_BASE_URL`` / ``VANIAGENT_WEBHOOK_SECRET``, SIGKILLed mid-run and restarted
``--until-done``. Checked against the sandbox's ground truth: every number called exactly
once, the report's outcome, summary and ``entity.*`` columns what VaniAgent said of each call
(the same whether the call was settled by its event or by the sweep), most calls settled by
their event, every stored event applied once; the key and the webhook secret in no log,
report or database row.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from storage.engine import make_engine
from storage.inbox import list_events
from tests.cli_helpers import (
    ALL_DAY,
    attempts,
    create_campaign,
    run_cli,
    start_cli,
    write_contacts_csv,
)
from tests.conftest import Sandbox, free_port
from tests.test_vaniagent_e2e import (
    check_against_truth,
    config_file,
    database_text,
    env_for,
    rows,
)
from tests.test_vaniagent_e2e import (
    run_args as vaniagent_run_args,
)
from tests.webhooks_helpers import SECRET

pytestmark = pytest.mark.slow

FAULTS = (
    "429=0.05,5xx=0.05,lost=0.1,"
    "webhook_drop=0.1,webhook_dup=0.05,webhook_delay=0.05,webhook_reorder=0.05"
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


def pushing_sandbox(sandbox_factory, listen: int, *args: str) -> Sandbox:  # type: ignore[no-untyped-def]
    """The VaniAgent front-end, sending its webhooks to ``run --listen`` on ``listen``."""
    return sandbox_factory(
        *("--webhook-url", f"http://127.0.0.1:{listen}/webhooks/vaniagent"),
        *("--webhook-secret", SECRET),
        *args,
        provider="vaniagent",
    )


def listen_env(sb: Sandbox) -> dict[str, str]:
    return {**env_for(sb), "VANIAGENT_WEBHOOK_SECRET": SECRET}


def vaniagent_campaign(db_url: str, tmp_path: Path, n: int) -> int:
    """A VaniAgent campaign of ``n`` contacts (one attempt each): its id."""
    csv_path = write_contacts_csv(tmp_path / "contacts.csv", rows(n))
    return create_campaign(
        db_url, csv_path, *ALL_DAY, "--provider", "vaniagent", "--max-attempts", "1"
    )


def test_webhooks_settle_calls_under_faults_and_a_sigkill(
    sandbox_factory, db_url: str, tmp_path: Path
) -> None:
    listen = free_port()
    sb = pushing_sandbox(
        sandbox_factory,
        listen,
        *("--answer-rate", "0.6", "--call-seconds", "0.5-1.5", "--seed", "4"),
        *("--faults", FAULTS),
    )
    n = 40
    cid = vaniagent_campaign(db_url, tmp_path, n)
    config = config_file(tmp_path)
    args = vaniagent_run_args(config, "--listen", f"127.0.0.1:{listen}", "--log-json")
    first_log = tmp_path / "run1.log"
    first = start_cli(*args, db_url=db_url, env=listen_env(sb), log=first_log)
    wait_http(f"http://127.0.0.1:{listen}/health", first, first_log)
    # let calls get placed and some settle by their event, then kill the daemon mid-run
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sb.stats()["webhooks"].get("delivered", 0) < n // 4:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert 0 < len(sb.calls()) < n, "the kill must land mid-run"
    second = run_cli(
        *vaniagent_run_args(config, "--listen", f"127.0.0.1:{listen}", "--until-done"),
        "--log-json",
        db_url=db_url,
        env=listen_env(sb),
        timeout=150,
    )
    assert second.returncode == 0, second.stderr[-3000:]

    # every number called once; outcome, summary and entities as the sandbox says
    report = check_against_truth(sb, db_url, cid, n, tmp_path)
    stats = sb.stats()
    assert stats["faults"]["429"] and stats["faults"]["lost"], stats["faults"]
    webhooks = stats["webhooks"]
    assert webhooks["dropped"] > 0 and webhooks["delivered"] > 0, webhooks
    engine = make_engine(db_url)
    try:
        done = [a for a in attempts(engine) if a.state == "finished"]
        # an event's data names the call as ``call_id``; a polled record as ``id`` only
        pushed = [a for a in done if "call_id" in (a.raw or {})]
        assert len(done) == n
        # most calls settle by their event; the rest are the dropped events and those sent
        # while the daemon was down after the SIGKILL (the sandbox retries a delivery for
        # 3.5 s only), which the sweep finds: how many ended in that gap depends on how fast
        # the daemon had dialled, and how soon the second daemon's first sweep (which reads
        # the history at once, recovering the gap) fetches details while dispatch still runs:
        # the bound is loose (15 of 40 seen on a loaded machine; bench_webhooks measures the
        # steady state: 90 % by event with one event in ten dropped)
        assert len(pushed) >= n * 0.25, (len(pushed), webhooks)
        events = list_events(engine, "vaniagent")
        assert len(events) >= len(pushed)
        assert all(e.applied_at is not None for e in events)
        assert len({e.event_id for e in events}) == len(events)  # replays stored once
    finally:
        engine.dispose()
    # no secret anywhere: run logs, sandbox log, report, every database row
    logs = first_log.read_text() + second.stdout + second.stderr + sb.log_path.read_text()
    dump = database_text(db_url)
    assert sb.calls()[0]["call_id"] in dump  # the dump really holds the run
    for secret in (SECRET, sb.api_key):
        for text in (logs, report, dump):
            assert secret not in text
    assert "Traceback" not in logs
    assert '"source": "webhook"' in logs or '"source":"webhook"' in logs


def test_run_listen_refuses_to_start_without_the_webhook_secret(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    sb = sandbox_factory("--answer-rate", "1", provider="vaniagent")
    vaniagent_campaign(sqlite_url, tmp_path, 1)
    args = vaniagent_run_args(config_file(tmp_path), "--listen", f"127.0.0.1:{free_port()}")
    res = run_cli(*args, "--until-done", db_url=sqlite_url, env=env_for(sb), timeout=60)
    assert res.returncode != 0
    assert "set VANIAGENT_WEBHOOK_SECRET" in res.stderr and "Traceback" not in res.stderr
    assert len([line for line in res.stderr.splitlines() if line.strip()]) == 1, res.stderr
    assert sb.calls() == []


def test_run_listen_on_a_port_in_use_is_one_clear_line(
    sandbox_factory, sqlite_url: str, tmp_path: Path
) -> None:
    sb = sandbox_factory("--answer-rate", "1", provider="vaniagent")
    vaniagent_campaign(sqlite_url, tmp_path, 1)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        args = vaniagent_run_args(config_file(tmp_path), "--listen", f"127.0.0.1:{port}")
        res = run_cli(*args, "--until-done", db_url=sqlite_url, env=listen_env(sb), timeout=60)
    assert res.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in res.stderr and "Traceback" not in res.stderr
    assert sb.calls() == []
