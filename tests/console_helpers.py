"""Start the real ``vaani-campaigns serve`` as a subprocess, as an operator would, and talk
to it over a real socket with httpx."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.cli_helpers import DAEMON_FAST, cli_env
from tests.conftest import TEST_API_KEY, free_port

TOKEN = "console-test-token-8d1f"


@dataclass
class Console:
    base_url: str
    token: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def with_daemon(sandbox_url: str, rate: str) -> tuple[str, ...]:
    """``serve``'s arguments to run the daemon in it against the sandbox, fast."""
    fast = [a for a in DAEMON_FAST if a != "--no-progress"]  # serve shows no progress line
    return (
        "--with-daemon",
        "--api-key",
        TEST_API_KEY,
        "--base-url",
        sandbox_url,
        "--rate-limit",
        rate,
        *fast,
    )


@contextmanager
def serve(
    db_url: str,
    tmp_path: Path,
    *args: str,
    token: str | None = TOKEN,
    env: dict[str, str] | None = None,
) -> Iterator[Console]:
    """``serve`` on a free port until the block ends (SIGTERM, then a wait for its exit)."""
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "campaigns", "--db", db_url, "serve", "--port", str(port), *args]
    if token:
        cmd += ["--token", token]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=cli_env(env))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited early: {log_path.read_text()}")
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {log_path.read_text()}")
            time.sleep(0.05)
        yield Console(base, token or "", proc, log_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(predicate, timeout: float = 60, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
