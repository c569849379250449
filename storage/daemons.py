"""Scheduler daemons as the database sees them: registration, heartbeats, clean stops.

Several daemons may share one database. Each registers a row at start, refreshes its
``heartbeat_at`` every few seconds, and marks itself stopped when it shuts down cleanly. A
daemon whose heartbeat is older than a timeout and that never marked itself stopped is *dead*
(killed, crashed, host lost): its claims must not be re-dialled blindly; the dispatcher turns
them into ``unknown`` attempts and reconciles them against the call history (DESIGN.md).

All times are passed in by the caller (aware UTC) so that tests and the daemon's clock agree.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, insert, select, update

from storage.errors import NotFound
from storage.models import Daemon, utcnow


@dataclass(frozen=True, kw_only=True)
class DaemonInfo:
    """A daemon's row, detached from the ORM."""

    id: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> DaemonInfo:
        """Build from a row of ``select(Daemon)``."""
        m = row._mapping
        return cls(
            id=m["id"],
            hostname=m["hostname"],
            pid=m["pid"],
            started_at=m["started_at"],
            heartbeat_at=m["heartbeat_at"],
            stopped_at=m["stopped_at"],
        )


def register_daemon(
    engine: Engine,
    *,
    now: datetime | None = None,
    hostname: str | None = None,
    pid: int | None = None,
) -> str:
    """Record a starting daemon and return its new id (a uuid4 hex string)."""
    now = now or utcnow()
    daemon_id = uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(
            insert(Daemon).values(
                id=daemon_id,
                hostname=(hostname or socket.gethostname())[:255],
                pid=os.getpid() if pid is None else pid,
                started_at=now,
                heartbeat_at=now,
                stopped_at=None,
            )
        )
    return daemon_id


def heartbeat(engine: Engine, daemon_id: str, *, now: datetime | None = None) -> None:
    """Say that ``daemon_id`` is alive at ``now``. Raises :class:`NotFound` for an unknown id."""
    with engine.begin() as conn:
        n = conn.execute(
            update(Daemon).where(Daemon.id == daemon_id).values(heartbeat_at=now or utcnow())
        ).rowcount
    if n == 0:
        raise NotFound(f"no daemon with id {daemon_id!r} is registered")


def mark_stopped(engine: Engine, daemon_id: str, *, now: datetime | None = None) -> None:
    """Record a clean shutdown: the daemon's claims were drained, nothing to reconcile.

    Raises :class:`NotFound` for an unknown id; stopping twice keeps the first stop time.
    """
    now = now or utcnow()
    with engine.begin() as conn:
        found = conn.execute(select(Daemon.id).where(Daemon.id == daemon_id)).first()
        if found is None:
            raise NotFound(f"no daemon with id {daemon_id!r} is registered")
        conn.execute(
            update(Daemon)
            .where(Daemon.id == daemon_id, Daemon.stopped_at.is_(None))
            .values(stopped_at=now, heartbeat_at=now)
        )


def dead_daemons(
    engine: Engine, now: datetime, timeout: timedelta, *, local_pids: bool = False
) -> list[str]:
    """Ids of daemons that did not stop cleanly and whose last heartbeat is older than
    ``now - timeout``, oldest heartbeat first.

    With ``local_pids``, also those registered on this host (other than this process) whose
    process is gone, whatever their heartbeat: a restart after SIGKILL need not wait for the
    heartbeat timeout. Those come after the silent ones.
    """
    cutoff = now - timeout
    with engine.connect() as conn:
        dead = list(
            conn.execute(
                select(Daemon.id)
                .where(Daemon.stopped_at.is_(None), Daemon.heartbeat_at < cutoff)
                .order_by(Daemon.heartbeat_at, Daemon.id)
            ).scalars()
        )
        if local_pids:
            local = conn.execute(
                select(Daemon.id, Daemon.pid)
                .where(
                    Daemon.stopped_at.is_(None),
                    Daemon.hostname == socket.gethostname()[:255],
                    Daemon.pid != os.getpid(),
                )
                .order_by(Daemon.heartbeat_at, Daemon.id)
            ).all()
            dead += [d.id for d in local if d.id not in dead and not _pid_alive(d.pid)]
    return dead


def _pid_alive(pid: int) -> bool:
    """Is process ``pid`` running on this host? (One we may not signal still counts.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def get_daemon(engine: Engine, daemon_id: str) -> DaemonInfo:
    """The daemon's row. Raises :class:`NotFound` for an unknown id."""
    with engine.connect() as conn:
        row = conn.execute(select(Daemon).where(Daemon.id == daemon_id)).first()
    if row is None:
        raise NotFound(f"no daemon with id {daemon_id!r} is registered")
    return DaemonInfo.from_row(row)


def list_daemons(engine: Engine) -> list[DaemonInfo]:
    """Every daemon ever registered, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(Daemon).order_by(Daemon.started_at.desc(), Daemon.id)).all()
    return [DaemonInfo.from_row(r) for r in rows]
