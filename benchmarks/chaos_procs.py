"""The processes of the chaos soak: the sandbox, the daemons, one-shot CLI commands, databases.

Everything here drives the product through its command line (``python -m campaigns ...``) and
reads the sandbox only through its ground truth (``/sandbox/calls``, ``/sandbox/stats``), so the
soak does not depend on the internals it is testing. Every process started is registered in a
:class:`Procs`, whose ``kill_all`` the soak calls in a ``finally``: nothing outlives the run,
even on failure. Every wait has a deadline. Only loopback addresses are used.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# the tests' CLI environment: no VAANI_* of the caller's, and the --retry-delay floor lowered
# for re-dials within seconds
from tests.cli_helpers import cli_env  # noqa: E402

LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1  # prctl(2)
PG_ADMIN_URL = os.environ.get(
    "VAANI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def campaigns_cmd(db: str | None, *args: str) -> list[str]:
    """The argv of ``python -m campaigns [--db DB] ARGS``."""
    head = [sys.executable, "-m", "campaigns"]
    return [*head, "--db", db, *args] if db else [*head, *args]


def _die_with_parent() -> None:
    """In the child, before exec: be SIGKILLed when the soak process dies (Linux), so that
    not even a SIGKILL of the soak itself leaves a daemon or a sandbox behind."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Procs:
    """Every long-running process of one soak, so that all of them can be killed at the end."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``argv`` with stdout and stderr appended to ``log``."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=cli_env(),
                cwd=ROOT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self.started.append(proc)
        return proc

    def kill_all(self) -> None:
        """SIGKILL whatever is still running and reap it (bounded: 10 s per process)."""
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            # a process we cannot reap within 10 s: nothing more we can do about it
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def run(db: str | None, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one CLI command to completion; raise with its stderr when it fails."""
    res = subprocess.run(
        campaigns_cmd(db, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=ROOT,
    )
    if res.returncode != 0:
        raise RuntimeError(
            f"`campaigns {' '.join(args[:3])}` exited {res.returncode}: {res.stderr}"
        )
    return res


def run_json(db: str, *args: str, timeout: float = 120) -> Any:
    """Run a ``--json`` CLI command and decode what it printed."""
    return json.loads(run(db, *args, "--json", timeout=timeout).stdout)


@dataclass
class Sandbox:
    """The sandbox program on a fixed loopback port, restartable on that same port."""

    port: int
    api_key: str
    args: tuple[str, ...]
    procs: Procs
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, seed: int, timeout: float = 20) -> None:
        """Start it (seeded with ``seed``) and wait until it answers its health check."""
        argv = campaigns_cmd(
            None, "sandbox", "--host", LOOPBACK, "--port", str(self.port),
            "--api-key", self.api_key, "--seed", str(seed), *self.args,
        )  # fmt: skip
        self.proc = self.procs.start(argv, self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox exited early: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"sandbox did not answer within {timeout} s")

    def truth(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The ground truth: every call it placed, and its request statistics."""
        calls = httpx.get(f"{self.base_url}/sandbox/calls", timeout=60).json()["calls"]
        stats = httpx.get(f"{self.base_url}/sandbox/stats", timeout=10).json()
        return calls, stats

    def kill(self) -> None:
        """SIGKILL, not SIGTERM: it stops at once, so that no call is placed after the last
        read of its ground truth (a graceful stop keeps serving for a moment)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


@dataclass
class Daemons:
    """``count`` daemons sharing one database; each can be SIGKILLed and restarted."""

    db: str
    argv: tuple[str, ...]  # the `run ...` arguments
    procs: Procs
    work: Path
    live: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: int = 0

    def start(self, count: int) -> None:
        for i in range(count):
            self.live.append(self._spawn(i))

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        return self.procs.start(campaigns_cmd(self.db, *self.argv), self.work / f"d{slot}.log")

    def kill_and_restart(self, slot: int) -> None:
        """SIGKILL the daemon in ``slot`` (a crash at a random instant) and start a new one."""
        proc = self.live[slot]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            self.kills += 1
        proc.wait(timeout=10)
        self.live[slot] = self._spawn(slot)

    def stop(self, timeout: float = 45) -> list[int | None]:
        """SIGTERM every daemon (they drain) and return their exit codes (None: had to kill)."""
        for proc in self.live:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        deadline = time.monotonic() + timeout
        for proc in self.live:
            try:
                codes.append(proc.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                codes.append(None)
        return codes


def create_pg_database() -> str:
    """A new, empty PostgreSQL database on the loopback server; returns its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"vaani_chaos_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    """Drop a database made by :func:`create_pg_database` (connections forced closed)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
