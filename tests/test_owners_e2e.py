"""Each live call polled by one daemon, across daemons on PostgreSQL (issue 9), end to end:
the real CLI, two daemons, the real sandbox, whose request counts are the ground truth."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from storage.engine import make_engine
from tests.cli_helpers import ALL_DAY, attempts, create_campaign, start_cli, write_contacts_csv
from tests.conftest import Sandbox
from tests.test_daemon_e2e import assert_answered_exactly_once, daemon_args, indian_rows

pytestmark = pytest.mark.slow


def details_requests(sb: Sandbox) -> int:
    return int(sb.stats().get("requests", {}).get("call_details", 0))


def test_two_daemons_fetch_each_outcome_once(sandbox_factory, pg_url: str, tmp_path: Path) -> None:
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "0.5-1.5", "--seed", "9")
    n = 60
    create_campaign(pg_url, write_contacts_csv(tmp_path / "c.csv", indian_rows(n)), *ALL_DAY)
    # 10/s shared by both: dispatch lasts 6 s or more, so the daemon that starts second (a CLI
    # start-up later, longer on a loaded machine) still finds calls to place
    common = daemon_args(sb, "10/s", until_done=True)
    procs = [start_cli(*common, db_url=pg_url, log=tmp_path / f"d{i}.log") for i in range(2)]
    for i, p in enumerate(procs):
        assert p.wait(timeout=150) == 0, (tmp_path / f"d{i}.log").read_text()
    assert_answered_exactly_once(sb, pg_url, n)
    engine = make_engine(pg_url)
    try:
        assert len({a.daemon_id for a in attempts(engine)}) == 2  # both placed calls
    finally:
        engine.dispose()
    # each call's details were fetched by its owner alone: not once per daemon
    assert details_requests(sb) == n


def test_calls_of_a_stopped_daemon_are_adopted_and_finished(
    sandbox_factory, pg_url: str, tmp_path: Path
) -> None:
    sb = sandbox_factory("--answer-rate", "1", "--call-seconds", "4-5", "--seed", "11")
    n = 30
    create_campaign(pg_url, write_contacts_csv(tmp_path / "c.csv", indian_rows(n)), *ALL_DAY)
    first = start_cli(*daemon_args(sb, "40/s"), db_url=pg_url, log=tmp_path / "a.log")
    deadline = time.monotonic() + 60
    while len(sb.calls()) < n and time.monotonic() < deadline:  # all placed by the first
        time.sleep(0.1)
    assert len(sb.calls()) == n
    first.send_signal(signal.SIGTERM)  # calls still live (4-5 s): its outcomes unread
    assert first.wait(timeout=60) == 0, (tmp_path / "a.log").read_text()
    second = start_cli(
        *daemon_args(sb, "40/s", until_done=True), db_url=pg_url, log=tmp_path / "b.log"
    )
    assert second.wait(timeout=120) == 0, (tmp_path / "b.log").read_text()
    assert_answered_exactly_once(sb, pg_url, n)
    assert details_requests(sb) == n
