"""The concurrency cap's side of claiming: what holds a slot, and the lock claims take for it.

:func:`slot_holders` counts the live attempts whose call may still be live (an attempt whose
call was seen ended, or whose lost answer is not in a history read past its time, stays live
until settled but holds no slot: ``attempts.slot_freed_at``). On PostgreSQL,
:func:`lock_for_cap` takes the transaction-level advisory lock the cap needs: shared while
even every live daemon claiming :data:`CLAIM_MAX` at once could not reach the cap (``FOR
UPDATE SKIP LOCKED`` already keeps claims apart), exclusive near it, so that each claim there
counts what the others committed.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select, text

from storage.models import Attempt, Daemon
from storage.states import ATTEMPT_LIVE

_CLAIM_LOCK_KEY = 0x5641414E49  # "VAANI": serialises claim transactions near the cap (PG)
#: Contacts one claim transaction takes at most (the lock-free bound of the cap relies on it).
CLAIM_MAX = 256
#: A daemon that heartbeated this recently may be claiming (a generous bound).
_ALIVE = timedelta(seconds=60)


def slot_holders(conn: Connection, providers: Collection[str] | None = None) -> int:
    """Live attempts that hold a slot of the concurrency cap (of ``providers`` only, when
    given: each provider's plan has its own cap): those whose call may still be live (an
    attempt whose call was seen ended, or whose lost answer is not in a history read past its
    time, stays live until settled but no longer holds a slot)."""
    stmt = (
        select(func.count())
        .select_from(Attempt)
        .where(
            Attempt.state.in_([s.value for s in ATTEMPT_LIVE]),
            Attempt.slot_freed_at.is_(None),
        )
    )
    if providers is not None:
        stmt = stmt.where(Attempt.provider.in_(list(providers)))
    return int(conn.execute(stmt).scalar_one())


def lock_for_cap(conn: Connection, now: datetime, max_live: int) -> bool:
    """Take the claim lock the concurrency cap needs (PostgreSQL). Far from the cap, claims
    share it: ``SKIP LOCKED`` already keeps them apart, and even if every live daemon claimed
    :data:`CLAIM_MAX` at once the cap would hold. Near the cap they take it exclusively, one
    at a time, each counting what the others committed. False: the cap came near while
    waiting for a shared lock; claim nothing this time (the next claim serialises)."""
    far = _far_from_cap(conn, now, max_live)
    fn = "pg_advisory_xact_lock_shared" if far else "pg_advisory_xact_lock"
    conn.execute(text(f"SELECT {fn}(:k)"), {"k": _CLAIM_LOCK_KEY})
    return not far or _far_from_cap(conn, now, max_live)


def _far_from_cap(conn: Connection, now: datetime, max_live: int) -> bool:
    alive = conn.execute(
        select(func.count())
        .select_from(Daemon)
        .where(Daemon.stopped_at.is_(None), Daemon.heartbeat_at >= now - _ALIVE)
    ).scalar_one()
    return slot_holders(conn) + CLAIM_MAX * max(1, int(alive)) <= max_live
