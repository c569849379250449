"""Daemon registration, heartbeats and dead-daemon detection (storage/daemons.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from storage import daemons
from storage.engine import make_engine
from storage.errors import NotFound
from storage.models import utcnow

TIMEOUT = timedelta(seconds=30)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def test_register_records_who_and_when(engine: Engine) -> None:
    now = utcnow()
    a = daemons.register_daemon(engine, now=now)
    b = daemons.register_daemon(engine, now=now, hostname="worker-2", pid=4242)
    assert a != b and len(a) == 32 and int(a, 16) >= 0
    info = daemons.get_daemon(engine, a)
    assert (info.hostname, info.pid) == (socket.gethostname(), os.getpid())
    assert info.started_at == info.heartbeat_at == now
    assert info.stopped_at is None
    assert {d.id for d in daemons.list_daemons(engine)} == {a, b}


def test_dead_daemons_are_the_silent_ones_that_did_not_stop(engine: Engine) -> None:
    t0 = utcnow()
    alive = daemons.register_daemon(engine, now=t0)
    silent = daemons.register_daemon(engine, now=t0)
    stopped = daemons.register_daemon(engine, now=t0)
    daemons.mark_stopped(engine, stopped, now=t0 + timedelta(seconds=1))

    later = t0 + timedelta(seconds=45)
    daemons.heartbeat(engine, alive, now=later - timedelta(seconds=5))
    assert daemons.dead_daemons(engine, later, TIMEOUT) == [silent]
    # exactly at the timeout it is not dead yet; just past it, it is
    assert daemons.dead_daemons(engine, t0 + TIMEOUT, TIMEOUT) == []
    assert daemons.dead_daemons(engine, t0 + TIMEOUT + timedelta(microseconds=1), TIMEOUT) == [
        silent
    ]
    # the alive one dies too if it stops heartbeating
    assert set(daemons.dead_daemons(engine, later + TIMEOUT, TIMEOUT)) == {alive, silent}


def test_dead_daemons_come_oldest_heartbeat_first(engine: Engine) -> None:
    t0 = utcnow()
    ids = [daemons.register_daemon(engine, now=t0 + timedelta(seconds=i)) for i in (3, 1, 2)]
    got = daemons.dead_daemons(engine, t0 + timedelta(hours=1), TIMEOUT)
    assert got == [ids[1], ids[2], ids[0]]


def test_mark_stopped_keeps_the_first_stop(engine: Engine) -> None:
    t0 = utcnow()
    d = daemons.register_daemon(engine, now=t0)
    daemons.mark_stopped(engine, d, now=t0 + timedelta(seconds=5))
    daemons.mark_stopped(engine, d, now=t0 + timedelta(seconds=9))
    assert daemons.get_daemon(engine, d).stopped_at == t0 + timedelta(seconds=5)


def test_unknown_daemon_ids_raise_not_found(engine: Engine) -> None:
    for call in (daemons.heartbeat, daemons.mark_stopped, daemons.get_daemon):
        with pytest.raises(NotFound, match="no daemon with id 'nope'"):
            call(engine, "nope")


def test_local_daemons_whose_process_is_gone_are_dead_at_once(engine: Engine) -> None:
    """A restart after SIGKILL need not wait for the heartbeat timeout: a daemon registered on
    this host whose process no longer exists is dead, even with a fresh heartbeat."""
    now = utcnow()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = socket.gethostname()
    dead_pid = daemons.register_daemon(engine, now=now, hostname=here, pid=gone.pid)
    alive_pid = daemons.register_daemon(engine, now=now, hostname=here, pid=os.getppid())
    me = daemons.register_daemon(engine, now=now)  # this very process: never judged dead
    elsewhere = daemons.register_daemon(engine, now=now, hostname="other-host", pid=gone.pid)
    silent = daemons.register_daemon(engine, now=now - 2 * TIMEOUT, hostname="other-host", pid=1)
    assert daemons.dead_daemons(engine, now, TIMEOUT) == [silent]
    found = daemons.dead_daemons(engine, now, TIMEOUT, local_pids=True)
    assert found == [silent, dead_pid]
    assert not {alive_pid, me, elsewhere} & set(found)
    daemons.mark_stopped(engine, dead_pid, now=now)
    assert daemons.dead_daemons(engine, now, TIMEOUT, local_pids=True) == [silent]
