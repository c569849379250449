"""Claiming and settling the outbox's events for delivery (``scheduler/webhooks_out.py``).

:func:`claim_due` leases due events: only the oldest undelivered event of each contact (of
each campaign, for campaign events) is ever due, which keeps delivery in order per contact; a
lease (``claimed_by``, ``lease_until``) and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL keep two
daemons from sending the same row. Only campaigns whose ``webhook_secret_fp`` is the daemon's
secret's fingerprint are claimed; the others are held (:func:`held_campaigns`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, true, update
from sqlalchemy.orm import aliased

from storage.models import Campaign, OutboxEvent
from storage.outbox import OUTBOX, UNDELIVERED


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """A claimed event, ready to POST: ``payload`` is the exact body to send and sign."""

    id: int
    event_id: str
    event: str
    campaign_id: int
    contact_id: int | None
    url: str
    payload: str
    attempts: int
    created_at: datetime


def claim_due(
    engine: Engine,
    *,
    fingerprint: str,
    daemon_id: str,
    now: datetime,
    lease: timedelta,
    limit: int = 20,
) -> list[Delivery]:
    """Lease up to ``limit`` due events of campaigns signed with ``fingerprint``: each the
    oldest undelivered event of its contact (or of its campaign), not leased by anyone."""
    o, earlier = OUTBOX.c, aliased(OutboxEvent)

    def none_before(same_key: Any) -> Any:
        return ~(
            select(earlier.id)
            .where(
                earlier.campaign_id == o.campaign_id,
                same_key,
                earlier.id < o.id,
                earlier.delivered_at.is_(None),
                earlier.dead_at.is_(None),
            )
            .exists()
        )

    # two plain equalities (not IS NOT DISTINCT FROM) so both use ix_outbox_order
    head = or_(
        and_(o.contact_id.is_not(None), none_before(earlier.contact_id == o.contact_id)),
        and_(o.contact_id.is_(None), none_before(earlier.contact_id.is_(None))),
    )
    stmt = (
        select(o.id)
        .join(Campaign, Campaign.id == o.campaign_id)
        .where(
            UNDELIVERED,
            o.next_attempt_at <= now,
            or_(o.lease_until.is_(None), o.lease_until < now),
            Campaign.webhook_secret_fp == fingerprint,
            Campaign.webhook_url.is_not(None),
            head,
        )
        .order_by(o.next_attempt_at, o.id)
        .limit(limit)
    )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=OUTBOX, skip_locked=True)
        ids = list(conn.execute(stmt).scalars())
        if not ids:
            return []
        conn.execute(
            update(OUTBOX)
            .where(o.id.in_(ids))
            .values(claimed_by=daemon_id, lease_until=now + lease)
        )
        rows = conn.execute(
            select(o.id, o.event_id, o.event, o.campaign_id, o.contact_id, o.payload,
                   o.attempts, o.created_at, Campaign.webhook_url)
            .join(Campaign, Campaign.id == o.campaign_id)
            .where(o.id.in_(ids))
            .order_by(o.id)
        ).all()  # fmt: skip
    return [
        Delivery(
            id=r.id,
            event_id=r.event_id,
            event=r.event,
            campaign_id=r.campaign_id,
            contact_id=r.contact_id,
            url=r.webhook_url,
            payload=r.payload,
            attempts=r.attempts,
            created_at=r.created_at,
        )
        for r in rows
    ]


def mark_delivered(engine: Engine, event_id: int, *, now: datetime) -> None:
    """The receiver answered 2xx."""
    with engine.begin() as conn:
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == event_id, UNDELIVERED)
            .values(
                delivered_at=now,
                attempts=OUTBOX.c.attempts + 1,
                claimed_by=None,
                lease_until=None,
                last_error=None,
            )
        )


def mark_failed(
    engine: Engine, event_id: int, *, now: datetime, error: str, retry_at: datetime | None
) -> None:
    """A delivery failed with ``error`` (short, no secret): due again at ``retry_at``, or
    dead (None: given up, or the receiver said 410 Gone)."""
    values: dict[str, Any] = {
        "attempts": OUTBOX.c.attempts + 1,
        "claimed_by": None,
        "lease_until": None,
        "last_error": error[:300],
    }
    if retry_at is None:
        values["dead_at"] = now
    else:
        values["next_attempt_at"] = retry_at
    with engine.begin() as conn:
        conn.execute(update(OUTBOX).where(OUTBOX.c.id == event_id, UNDELIVERED).values(values))


def release_leases(engine: Engine, daemon_id: str) -> int:
    """A daemon stopping gives back the events it leased but did not finish (sent again by
    whoever claims them next: at least once). Returns how many."""
    with engine.begin() as conn:
        return (
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.claimed_by == daemon_id, UNDELIVERED)
                .values(claimed_by=None, lease_until=None)
            ).rowcount
            or 0
        )


def pending_count(engine: Engine, fingerprint: str | None) -> int:
    """Undelivered events this daemon could deliver (campaigns signed with ``fingerprint``)."""
    if fingerprint is None:
        return 0
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(OUTBOX)
                .join(Campaign, Campaign.id == OUTBOX.c.campaign_id)
                .where(UNDELIVERED, Campaign.webhook_secret_fp == fingerprint)
            ).scalar_one()
        )


def held_campaigns(engine: Engine, fingerprint: str | None) -> list[int]:
    """Campaigns with undelivered events whose secret is not ``fingerprint``'s (held)."""
    fp = Campaign.webhook_secret_fp
    mismatch = true() if fingerprint is None else or_(fp.is_(None), fp != fingerprint)
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(Campaign.id)
                .where(
                    mismatch,
                    select(OUTBOX.c.id)
                    .where(OUTBOX.c.campaign_id == Campaign.id, UNDELIVERED)
                    .exists(),
                )
                .order_by(Campaign.id)
            ).scalars()
        )
