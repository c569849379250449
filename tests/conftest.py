"""Fixtures shared by the whole suite: databases (SQLite and PostgreSQL) and the sandbox.

* ``db_url`` runs a test once on a fresh SQLite file and once on a fresh PostgreSQL database
  (created per test from a template that already holds the schema). PostgreSQL is required:
  set ``VAANI_TEST_PG_URL`` to point elsewhere; when it is unreachable the test FAILS rather
  than skipping, unless ``VAANI_TEST_SKIP_PG=1`` is set explicitly (never in CI).
* ``sandbox_factory`` starts the real ``vaani-campaigns sandbox`` program on a free loopback
  port, waits until it answers, and stops it after the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storage.engine import make_engine
from storage.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "VAANI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SKIP_PG = os.environ.get("VAANI_TEST_SKIP_PG") == "1"
TEST_API_KEY = "test-key-5f2b9c0e7a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- databases

_pg_template: str | None = None


def _pg_admin():  # type: ignore[no-untyped-def]
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _pg_url(dbname: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=dbname).render_as_string(hide_password=False)


def _ensure_pg_template() -> str:
    """A template database holding the current schema, made once per test session."""
    global _pg_template
    if _pg_template is None:
        name = f"vaani_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        eng = make_engine(_pg_url(name))
        upgrade(eng)
        eng.dispose()
        _pg_template = name
    return _pg_template


def _drop_pg(name: str) -> None:
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _pg_template is not None:
        with contextlib.suppress(Exception):  # best effort cleanup
            _drop_pg(_pg_template)


def make_pg_database() -> str:
    """Create a fresh PostgreSQL database with the schema; return its URL."""
    tpl = _ensure_pg_template()
    name = f"vaani_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"'))
    admin.dispose()
    return _pg_url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database URL: once SQLite, once PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        eng = make_engine(url)
        upgrade(eng)
        eng.dispose()
        yield url
        return
    if SKIP_PG:
        pytest.skip("VAANI_TEST_SKIP_PG=1")
    url = make_pg_database()
    try:
        yield url
    finally:
        _drop_pg(make_url(url).database or "")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database URL (for tests that only make sense there)."""
    url = make_pg_database()
    try:
        yield url
    finally:
        _drop_pg(make_url(url).database or "")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'test.db'}"
    eng = make_engine(url)
    upgrade(eng)
    eng.dispose()
    return url


# --------------------------------------------------------------------------- the sandbox


@dataclass
class Sandbox:
    """A running sandbox process."""

    base_url: str
    api_key: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def stats(self) -> dict:  # type: ignore[type-arg]
        return httpx.get(f"{self.base_url}/sandbox/stats", timeout=10).json()

    def calls(self) -> list[dict]:  # type: ignore[type-arg]
        return httpx.get(f"{self.base_url}/sandbox/calls", timeout=30).json()["calls"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_sandbox(
    *args: str,
    api_key: str = TEST_API_KEY,
    log_dir: Path,
    port: int | None = None,
    provider: str = "vaani",
) -> Sandbox:
    port = port or free_port()
    log_path = log_dir / f"sandbox-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "campaigns",
        "sandbox",
        "--port",
        str(port),
        "--api-key",
        api_key,
        "--provider",
        provider,
        *args,
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox exited early: {log_path.read_text()}")
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code < 500:
                return Sandbox(base, api_key, proc, log_path)
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"sandbox did not start: {log_path.read_text()}")


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    """``sandbox_factory("--rate-limit", "10/s", ...)`` starts a sandbox (on ``port=`` when
    given, else a free one); stopped at teardown."""
    started: list[Sandbox] = []

    def factory(
        *args: str, api_key: str = TEST_API_KEY, port: int | None = None, provider: str = "vaani"
    ) -> Sandbox:
        sb = start_sandbox(*args, api_key=api_key, log_dir=tmp_path, port=port, provider=provider)
        started.append(sb)
        return sb

    yield factory
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A sandbox that answers every call quickly, no faults, no rate limit."""
    return sandbox_factory("--answer-rate", "1", "--call-seconds", "0.2-0.5", "--seed", "1")
