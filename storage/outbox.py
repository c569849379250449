"""The outbox: events for the user's CRM, written where their cause is committed.

An event row is inserted by the SAME transaction as the state change that causes it (a
contact reaching a final state, an opt-out, a campaign completed or paused), so a crash at
any instant leaves both or neither: no event is lost and none describes a change that was
rolled back. The writers here take the caller's ``Connection``; they do nothing for a
campaign without a ``webhook_url``. The row holds the exact body that is sent and signed,
so every retry sends the same bytes under the same ``event_id``.

Delivery (``scheduler/webhooks_out.py``) claims due rows with :func:`claim_due`: only the
oldest undelivered event of each contact (of each campaign, for campaign events) is ever
due, which keeps delivery in order per contact; a lease (``claimed_by``, ``lease_until``)
and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL keep two daemons from sending the same row.
Only campaigns whose ``webhook_secret_fp`` matches the daemon's secret are claimed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    Update,
    and_,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import aliased

from storage.models import Attempt, Campaign, Contact, OutboxEvent
from storage.states import AttemptState

_outbox = cast(Table, OutboxEvent.__table__)
_CHUNK = 500

CONTACT_FINISHED = "contact.finished"
CONTACT_OPTED_OUT = "contact.opted_out"
CAMPAIGN_COMPLETED = "campaign.completed"
CAMPAIGN_PAUSED = "campaign.paused"


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _row(
    campaign_id: int, contact_id: int | None, event: str, data: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    event_id = str(uuid.uuid4())
    body = {"id": event_id, "event": event, "created_at": _iso(now), "data": dict(data)}
    return {
        "campaign_id": campaign_id,
        "contact_id": contact_id,
        "event": event,
        "event_id": event_id,
        "payload": json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str),
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": now,
    }


def enabled(conn: Connection, campaign_id: int) -> bool:
    """Does this campaign send events (has it a webhook URL)?"""
    url = conn.execute(
        select(Campaign.webhook_url).where(Campaign.id == campaign_id)
    ).scalar_one_or_none()
    return bool(url)


def update_contacts(conn: Connection, stmt: Update, campaign_id: int, *, now: datetime) -> int:
    """Run ``stmt``, an UPDATE moving contacts of ``campaign_id`` to a final state, and write
    ``contact.finished`` for every contact it moved when the campaign sends events. Returns
    the number of contacts moved (the statement's rowcount)."""
    if not enabled(conn, campaign_id):
        return conn.execute(stmt).rowcount or 0
    ids = list(conn.execute(stmt.returning(Contact.id)).scalars())
    contacts_finished(conn, campaign_id, ids, now=now, checked=True)
    return len(ids)


def contacts_finished(
    conn: Connection,
    campaign_id: int,
    contact_ids: Sequence[int],
    *,
    now: datetime,
    checked: bool = False,
) -> int:
    """Write ``contact.finished`` for contacts that just reached a final state (``checked``:
    the caller knows the campaign sends events). Returns how many events were written."""
    if not contact_ids or not (checked or enabled(conn, campaign_id)):
        return 0
    rows: list[dict[str, Any]] = []
    for start in range(0, len(contact_ids), _CHUNK):
        chunk = list(contact_ids[start : start + _CHUNK])
        calls = _last_calls(conn, chunk)
        contacts = conn.execute(_CONTACT_FIELDS.where(Contact.id.in_(chunk))).all()
        by_id = {c.id: c for c in contacts}
        for cid in chunk:  # in the caller's order
            c = by_id.get(cid)
            if c is not None:
                data = {**_contact_data(c), **calls.get(cid, _NO_CALL)}
                rows.append(_row(campaign_id, cid, CONTACT_FINISHED, data, now))
    if rows:
        conn.execute(insert(_outbox), rows)
    return len(rows)


_NO_CALL: dict[str, Any] = {"duration_s": None, "summary": None, "entities": None}


def _last_calls(conn: Connection, contact_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Duration, summary and entities of each contact's last finished call."""
    out: dict[int, tuple[int, dict[str, Any]]] = {}
    for cid, no, dur, summary, entity in conn.execute(
        select(
            Attempt.contact_id, Attempt.attempt_no, Attempt.duration_s, Attempt.summary,
            Attempt.entity,
        ).where(Attempt.contact_id.in_(contact_ids), Attempt.state == AttemptState.FINISHED.value)
    ):  # fmt: skip
        if cid not in out or no > out[cid][0]:
            out[cid] = (no, {"duration_s": dur, "summary": summary, "entities": entity})
    return {cid: v for cid, (_, v) in out.items()}


_CONTACT_FIELDS = select(
    Contact.id, Contact.campaign_id, Contact.phone_e164, Contact.name,
    Contact.attributes.label("meta"), Contact.state, Contact.reason, Contact.outcome,
    Contact.attempts,
)  # fmt: skip


def _contact_data(c: Any) -> dict[str, Any]:
    return {
        "campaign_id": c.campaign_id,
        "contact": {
            "id": c.id,
            "phone_e164": c.phone_e164,
            "name": c.name,
            "metadata": dict(c.meta or {}),
        },
        "state": c.state,
        "reason": c.reason,
        "outcome": c.outcome,
        "attempts": c.attempts,
    }


def finished_by_attempt(conn: Connection, attempt_id: int, *, now: datetime) -> int:
    """``contact.finished`` for the contact of ``attempt_id`` (which just closed it)."""
    row = conn.execute(
        select(Attempt.campaign_id, Attempt.contact_id).where(Attempt.id == attempt_id)
    ).first()
    return 0 if row is None else contacts_finished(conn, row[0], [row[1]], now=now)


def contact_opted_out(
    conn: Connection, campaign_id: int, contact_id: int, entity: str, *, now: datetime
) -> None:
    """``contact.opted_out``: the person asked on a call not to be called again."""
    c = conn.execute(_CONTACT_FIELDS.where(Contact.id == contact_id)).first()
    if c is not None:
        data = {**_contact_data(c), "entity": entity}
        conn.execute(insert(_outbox), [_row(campaign_id, contact_id, CONTACT_OPTED_OUT, data, now)])


def campaign_event(
    conn: Connection, campaign_id: int, event: str, data: Mapping[str, Any], *, now: datetime
) -> None:
    """A campaign event (``campaign.completed``, ``campaign.paused``), when it sends events."""
    if enabled(conn, campaign_id):
        row = _row(campaign_id, None, event, {"campaign_id": campaign_id, **data}, now)
        conn.execute(insert(_outbox), [row])


# --------------------------------------------------------------------------- delivery


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


_undelivered = and_(_outbox.c.delivered_at.is_(None), _outbox.c.dead_at.is_(None))


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
    o, earlier = _outbox.c, aliased(OutboxEvent)

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
            _undelivered,
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
            stmt = stmt.with_for_update(of=_outbox, skip_locked=True)
        ids = list(conn.execute(stmt).scalars())
        if not ids:
            return []
        conn.execute(
            update(_outbox)
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
            update(_outbox)
            .where(_outbox.c.id == event_id, _undelivered)
            .values(
                delivered_at=now,
                attempts=_outbox.c.attempts + 1,
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
        "attempts": _outbox.c.attempts + 1,
        "claimed_by": None,
        "lease_until": None,
        "last_error": error[:300],
    }
    if retry_at is None:
        values["dead_at"] = now
    else:
        values["next_attempt_at"] = retry_at
    with engine.begin() as conn:
        conn.execute(update(_outbox).where(_outbox.c.id == event_id, _undelivered).values(values))


def release_leases(engine: Engine, daemon_id: str) -> int:
    """A daemon stopping gives back the events it leased but did not finish (sent again by
    whoever claims them next: at least once). Returns how many."""
    with engine.begin() as conn:
        return (
            conn.execute(
                update(_outbox)
                .where(_outbox.c.claimed_by == daemon_id, _undelivered)
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
                .select_from(_outbox)
                .join(Campaign, Campaign.id == _outbox.c.campaign_id)
                .where(_undelivered, Campaign.webhook_secret_fp == fingerprint)
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
                    select(_outbox.c.id)
                    .where(_outbox.c.campaign_id == Campaign.id, _undelivered)
                    .exists(),
                )
                .order_by(Campaign.id)
            ).scalars()
        )


@dataclass(frozen=True, kw_only=True)
class OutboxCounts:
    """A campaign's events: waiting to be delivered, delivered, dead (given up), and the
    newest dead one's error, for ``campaign show`` and the console."""

    pending: int
    delivered: int
    dead: int
    last_dead_event_id: str | None = None
    last_dead_error: str | None = None
    last_dead_at: datetime | None = None


def outbox_counts(engine: Engine, campaign_id: int) -> OutboxCounts:
    """The counts of :class:`OutboxCounts` for one campaign (zeros when it has none)."""
    o = _outbox.c
    with engine.connect() as conn:
        pending, delivered, dead = conn.execute(
            select(
                func.count().filter(o.delivered_at.is_(None), o.dead_at.is_(None)),
                func.count().filter(o.delivered_at.is_not(None)),
                func.count().filter(o.dead_at.is_not(None)),
            ).where(o.campaign_id == campaign_id)
        ).one()
        last = conn.execute(
            select(o.event_id, o.last_error, o.dead_at)
            .where(o.campaign_id == campaign_id, o.dead_at.is_not(None))
            .order_by(o.dead_at.desc(), o.id.desc())
            .limit(1)
        ).first()
    return OutboxCounts(
        pending=int(pending),
        delivered=int(delivered),
        dead=int(dead),
        last_dead_event_id=last[0] if last else None,
        last_dead_error=last[1] if last else None,
        last_dead_at=last[2] if last else None,
    )
