"""The outbox: events for the user's CRM, written where their cause is committed.

An event row is inserted by the SAME transaction as the state change that causes it (a
contact reaching a final state, an opt-out, a campaign completed or paused), so a crash at
any instant leaves both or neither: no event is lost and none describes a change that was
rolled back. The writers here take the caller's ``Connection``; they do nothing for a
campaign without a ``webhook_url``. The row holds the exact body that is sent and signed,
so every retry sends the same bytes under the same ``event_id``.

Delivery is :mod:`storage.outbox_delivery`; :func:`outbox_counts` (waiting, delivered, dead)
is here, for ``campaign show`` and the console.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, Update, and_, func, insert, select

from storage.models import Attempt, Campaign, Contact, OutboxEvent
from storage.states import AttemptState

OUTBOX = cast(Table, OutboxEvent.__table__)
#: Events neither delivered nor dead (yet).
UNDELIVERED = and_(OUTBOX.c.delivered_at.is_(None), OUTBOX.c.dead_at.is_(None))
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
        conn.execute(insert(OUTBOX), rows)
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
        conn.execute(insert(OUTBOX), [_row(campaign_id, contact_id, CONTACT_OPTED_OUT, data, now)])


def campaign_event(
    conn: Connection, campaign_id: int, event: str, data: Mapping[str, Any], *, now: datetime
) -> None:
    """A campaign event (``campaign.completed``, ``campaign.paused``), when it sends events."""
    if enabled(conn, campaign_id):
        row = _row(campaign_id, None, event, {"campaign_id": campaign_id, **data}, now)
        conn.execute(insert(OUTBOX), [row])


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
    o = OUTBOX.c
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
