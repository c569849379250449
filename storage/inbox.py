"""The webhook inbox: events providers pushed, kept before they are acknowledged, then applied.

* :func:`store_event` keeps one verified event (a re-delivery with the same provider and event
  id is not stored twice: the answer says so, and nothing changes);
* :func:`ready_events` lists the events not applied yet whose call id is on an attempt of
  that provider, with the attempt's id and state (an event that arrived before dispatch
  recorded its call id is simply not ready yet: it stays, and is listed once the call id lands);
* :func:`apply_events` settles their attempts and records the events applied (or as having
  had nothing to apply) in one transaction.

Applying an event's outcome is ``storage.outcomes``'s, exactly as for a polled outcome; an
attempt that was already settled is left alone by its compare-and-set, so an event applied
twice (two daemons, a replay) changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from storage.models import Attempt, InboxEvent
from storage.outcomes import Applied, CallResult, OutcomeRule, apply_outcomes_on


@dataclass(frozen=True, kw_only=True)
class StoredEvent:
    """One inbox row, as a value."""

    id: int
    provider: str
    event_id: str
    call_id: str
    kind: str
    payload: dict[str, Any]
    received_at: datetime
    applied_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class ReadyEvent:
    """An event not applied yet whose call id is on an attempt: that attempt and its state."""

    event: StoredEvent
    attempt_id: int
    attempt_state: str


def _insert(engine: Engine) -> Any:
    """An INSERT that skips a row whose (provider, event_id) is already stored."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(InboxEvent).on_conflict_do_nothing(index_elements=["provider", "event_id"])
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(InboxEvent).on_conflict_do_nothing(
            index_elements=["provider", "event_id"]
        )
    return insert(InboxEvent)


def store_event(
    engine: Engine,
    *,
    provider: str,
    event_id: str,
    call_id: str,
    kind: str,
    payload: Mapping[str, Any],
    now: datetime,
    applied: bool = False,
) -> bool:
    """Keep one event; False when this provider's ``event_id`` is already stored (a replay).
    ``applied``: the event settles nothing (``call.started``), record it as done."""
    with engine.begin() as conn:
        inserted = conn.execute(
            _insert(engine)
            .values(
                provider=provider,
                event_id=event_id[:200],
                call_id=call_id[:200],
                kind=kind[:64],
                payload=dict(payload),
                received_at=now,
                applied_at=now if applied else None,
            )
            .returning(InboxEvent.id)
        ).scalar_one_or_none()
    return inserted is not None  # rowcount is not reliable for DO NOTHING on every driver


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        id=row.id,
        provider=row.provider,
        event_id=row.event_id,
        call_id=row.call_id,
        kind=row.kind,
        payload=row.payload,
        received_at=row.received_at,
        applied_at=row.applied_at,
    )


_COLUMNS = (
    InboxEvent.id,
    InboxEvent.provider,
    InboxEvent.event_id,
    InboxEvent.call_id,
    InboxEvent.kind,
    InboxEvent.payload,
    InboxEvent.received_at,
    InboxEvent.applied_at,
)


def ready_events(
    engine: Engine, provider: str, *, call_id: str | None = None, limit: int = 200
) -> list[ReadyEvent]:
    """Pending events of ``provider`` (of one call when ``call_id`` is given) whose call id is
    on an attempt, oldest first."""
    query = (
        select(*_COLUMNS, Attempt.id.label("attempt_id"), Attempt.state.label("attempt_state"))
        .join(
            Attempt,
            (Attempt.provider == InboxEvent.provider) & (Attempt.call_id == InboxEvent.call_id),
        )
        .where(InboxEvent.provider == provider, InboxEvent.applied_at.is_(None))
        .order_by(InboxEvent.id)
        .limit(limit)
    )
    if call_id is not None:
        query = query.where(InboxEvent.call_id == call_id)
    with engine.connect() as conn:
        return [
            ReadyEvent(event=_stored(r), attempt_id=r.attempt_id, attempt_state=r.attempt_state)
            for r in conn.execute(query)
        ]


def apply_events(
    engine: Engine,
    ids: Collection[int],
    items: Sequence[tuple[int, CallResult]],
    *,
    now: datetime,
    rules: OutcomeRule,
) -> list[Applied | None]:
    """Settle attempts with ``items`` (attempt id, result) exactly as
    :func:`storage.outcomes.apply_outcomes` does, and record events ``ids`` applied, in ONE
    transaction: an event is never applied without being marked, nor the reverse."""
    with engine.begin() as conn:
        applied = apply_outcomes_on(conn, items, now=now, rules=rules) if items else []
        if ids:
            conn.execute(
                update(InboxEvent)
                .where(InboxEvent.id.in_(sorted(ids)), InboxEvent.applied_at.is_(None))
                .values(applied_at=now)
            )
    return applied


def list_events(engine: Engine, provider: str | None = None) -> list[StoredEvent]:
    """Every stored event (of ``provider`` when given), oldest first."""
    query = select(*_COLUMNS).order_by(InboxEvent.id)
    if provider is not None:
        query = query.where(InboxEvent.provider == provider)
    with engine.connect() as conn:
        return [_stored(r) for r in conn.execute(query)]
