"""``vaani-campaigns demo --serve``: the sandbox, the daemon and the console stay up until
Ctrl-C; the console's URL (with the token made up for the run) is printed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cli_helpers import cli_env
from tests.conftest import free_port
from tests.console_helpers import wait_for


@pytest.mark.slow
def test_demo_serve_keeps_everything_up_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    cmd = [
        sys.executable,
        "-m",
        "campaigns",
        "demo",
        "--serve",
        "--port",
        str(port),
        "--out-dir",
        str(tmp_path / "out"),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=cli_env())
    try:
        banner = wait_for(
            lambda: re.search(rf"http://127\.0\.0\.1:{port}/#token=(\S+)", log.read_text()),
            timeout=60,
            what="the console URL",
        )
        token = banner.group(1)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as api:

            def finished() -> bool:
                listed = api.get("/api/campaigns").json()
                return bool(listed) and listed[0]["finished"] == listed[0]["total"]

            wait_for(finished, timeout=120, what="the demo campaign finished")
            time.sleep(1.5)  # past the daemon's until-done check: with --serve it keeps running
            assert proc.poll() is None
            assert api.get("/api/health").status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert (tmp_path / "out" / "report.csv").stat().st_size > 0, text
    assert "demo-sandbox-key" not in text
