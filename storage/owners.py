"""Which daemon polls which live call: its owner, the daemon that placed it.

With several daemons on one database, each polling every live call multiplies the details
requests (and history reads) by the number of daemons. So every live attempt has one owner,
``attempts.daemon_id`` (the daemon that claimed it), and a daemon's poller reads only its own
(``storage.attempts.load_live(owner=...)``). When the owner stops (cleanly, or its heartbeat
expires, or it was never registered), :func:`adopt_orphans` hands its live attempts to a
living daemon: one UPDATE, a compare-and-set on the old owner, so two daemons adopting at once
split the orphans without sharing any.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select, update

from storage.models import Attempt, Daemon
from storage.states import AttemptState

_POLLED = (AttemptState.ACCEPTED.value, AttemptState.UNKNOWN.value)


def adopt_orphans(
    engine: Engine, daemon_id: str, *, provider: str, now: datetime, dead_after: timedelta
) -> int:
    """Live attempts of ``provider`` whose owner is gone become ``daemon_id``'s; returns how
    many. Gone: stopped, heartbeat older than ``dead_after``, unknown, or none recorded."""
    alive = select(Daemon.id).where(
        Daemon.stopped_at.is_(None), Daemon.heartbeat_at >= now - dead_after
    )
    with engine.begin() as conn:
        return int(
            conn.execute(
                update(Attempt)
                .where(
                    Attempt.state.in_(_POLLED),
                    Attempt.provider == provider,
                    or_(Attempt.daemon_id.is_(None), Attempt.daemon_id.not_in(alive)),
                )
                .values(daemon_id=daemon_id)
                .execution_options(synchronize_session=False)
            ).rowcount
        )
