"""Claiming due contacts: the dispatcher's half of the contract with the database.

In short transactions:

1. :func:`claim_due` picks due contacts of running campaigns, asks the caller's ``decide``
   function what to do with each (dial, defer to a later instant, or close it: suppressed,
   expired, ...), and for each contact to dial writes the attempt row ``reserved`` and moves
   the contact to ``dialing`` -- all committed BEFORE any request is sent (invariant 2:
   write ahead).
2. After the POST, ``storage.settle`` records what became of it.

Concurrency: on PostgreSQL the candidate rows are locked with ``FOR UPDATE SKIP LOCKED`` so two
daemons never pick the same contact. The concurrent-call cap holds across daemons with a
transaction-level advisory lock, shared while even every live daemon claiming its most at once
could not reach the cap, exclusive (claims one at a time) near it. On SQLite every transaction is
``BEGIN IMMEDIATE`` (see ``storage.engine``), which serialises claims the same way. Every
update is a compare-and-set on the state it expects, and the partial unique index on attempts
forbids a second live attempt for a contact whatever happens.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Update,
    bindparam,
    func,
    insert,
    select,
    update,
)

from storage import outbox
from storage.campaigns_repo import CampaignRecord
from storage.caplock import CLAIM_MAX, lock_for_cap, slot_holders
from storage.models import Attempt, Campaign, Contact, Suppression, UTCDateTime
from storage.states import ATTEMPT_LIVE, AttemptState, CampaignStatus, ContactState

#: Attempt states that count as a call (possibly) placed, for the rolling per-number cap.
PLACED_STATES = (AttemptState.ACCEPTED, AttemptState.UNKNOWN, AttemptState.FINISHED)


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A due contact, with the facts a dial decision needs."""

    contact_id: int
    campaign_id: int
    state: str
    phone_e164: str
    name: str | None
    attributes: dict[str, Any]
    timezones: str | None
    attempts: int
    next_attempt_at: datetime | None
    suppressed: bool
    recent_calls: tuple[datetime, ...]  # placed calls to this number in the last 24 h, any campaign
    callbacks: int = 0  # callbacks scheduled so far: their calls do not count against the cap


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What to do with a candidate: ``dial``; ``defer`` until an instant; or ``close`` it
    into a terminal ``state`` with a ``reason``."""

    action: str
    until: datetime | None = None
    state: str | None = None
    reason: str | None = None

    @classmethod
    def dial(cls) -> Decision:
        return cls(action="dial")

    @classmethod
    def defer(cls, until: datetime, reason: str | None = None) -> Decision:
        return cls(action="defer", until=until, reason=reason)

    @classmethod
    def close(cls, state: ContactState, reason: str) -> Decision:
        return cls(action="close", state=state.value, reason=reason)


@dataclass(frozen=True, kw_only=True)
class DialJob:
    """A reserved attempt, committed, ready to be sent."""

    attempt_id: int
    attempt_no: int
    contact_id: int
    campaign: CampaignRecord  # a value: no ORM object rides into the dial tasks
    phone_e164: str
    name: str
    metadata: dict[str, Any]
    reserved_at: datetime


@dataclass
class ClaimResult:
    jobs: list[DialJob] = field(default_factory=list)
    deferred: int = 0
    closed: dict[str, int] = field(default_factory=dict)
    capped: bool = False  # the concurrency cap allowed fewer than asked for


#: The dial decision for one candidate of a campaign (``campaigns.dialing.Decider``).
Decide = Callable[[CampaignRecord, Candidate, datetime], Decision]


def running_campaigns(
    conn: Connection, now: datetime, providers: Collection[str] | None = None
) -> list[CampaignRecord]:
    """Running campaigns that have started by ``now`` (of ``providers`` only, when given),
    oldest first, as values."""
    table = Campaign.__table__
    stmt = select(table).where(
        table.c.status == CampaignStatus.RUNNING.value,
        (table.c.start_at.is_(None)) | (table.c.start_at <= now),
    )
    if providers is not None:
        stmt = stmt.where(table.c.provider.in_(list(providers)))
    rows = conn.execute(stmt.order_by(table.c.id))
    return [CampaignRecord.from_row(r) for r in rows]


def live_attempts(conn: Connection, providers: Collection[str] | None = None) -> int:
    """Calls in flight or awaiting an outcome, across all campaigns (of ``providers`` only,
    when given: each provider's plan has its own concurrency cap)."""
    stmt = (
        select(func.count())
        .select_from(Attempt)
        .where(Attempt.state.in_([s.value for s in ATTEMPT_LIVE]))
    )
    if providers is not None:
        stmt = stmt.where(Attempt.provider.in_(list(providers)))
    return int(conn.execute(stmt).scalar_one())


@functools.cache
def _due_statements(pg: bool) -> tuple[Any, Any]:
    """The two due-contact scans, built once (statement building costs more than SQLite's
    execution here): timed ones whose time has come, then never-tried ones."""
    cols = (
        Contact.id,
        Contact.campaign_id,
        Contact.state,
        Contact.phone_e164,
        Contact.name,
        Contact.attributes.label("attributes"),
        Contact.timezones,
        Contact.attempts,
        Contact.next_attempt_at,
        Contact.callbacks,
    )
    dialable = [ContactState.PENDING.value, ContactState.RETRY_WAIT.value]
    timed = (
        select(*cols)
        .where(
            Contact.campaign_id == bindparam("b_campaign"),
            Contact.state.in_(dialable),
            Contact.next_attempt_at <= bindparam("b_now", type_=UTCDateTime),
        )
        .order_by(Contact.next_attempt_at, Contact.id)
        .limit(bindparam("b_limit"))
    )
    fresh = (
        select(*cols)
        .where(
            Contact.campaign_id == bindparam("b_campaign"),
            Contact.state == ContactState.PENDING.value,
            Contact.next_attempt_at.is_(None),
        )
        .order_by(Contact.id)
        .limit(bindparam("b_limit"))
    )
    if pg:
        timed = timed.with_for_update(skip_locked=True, of=Contact)
        fresh = fresh.with_for_update(skip_locked=True, of=Contact)
    return timed, fresh


def _due_rows(conn: Connection, campaign_id: int, now: datetime, limit: int) -> list[Any]:
    """Due contacts of one campaign: timed ones whose time has come, then never-tried ones."""
    timed, fresh = _due_statements(conn.dialect.name == "postgresql")
    rows = list(conn.execute(timed, {"b_campaign": campaign_id, "b_now": now, "b_limit": limit}))
    if len(rows) < limit:
        rows.extend(conn.execute(fresh, {"b_campaign": campaign_id, "b_limit": limit - len(rows)}))
    return rows


def _suppressed(conn: Connection, campaign_id: int, phones: Sequence[str]) -> set[str]:
    if not phones:
        return set()
    return set(
        conn.execute(
            select(Suppression.phone_e164).where(
                Suppression.phone_e164.in_(phones),
                (Suppression.campaign_id.is_(None)) | (Suppression.campaign_id == campaign_id),
            )
        ).scalars()
    )


def _recent_calls(
    conn: Connection, phones: Sequence[str], now: datetime
) -> dict[str, list[datetime]]:
    out: dict[str, list[datetime]] = {}
    if not phones:
        return out
    rows = conn.execute(
        select(Attempt.phone_e164, Attempt.created_at).where(
            Attempt.phone_e164.in_(phones),
            Attempt.created_at > now - timedelta(hours=24),
            Attempt.state.in_([s.value for s in PLACED_STATES]),
        )
    )
    for phone, at in rows:
        out.setdefault(phone, []).append(at)
    return out


def _next_attempt_numbers(conn: Connection, contact_ids: Sequence[int]) -> dict[int, int]:
    if not contact_ids:
        return {}
    rows = conn.execute(
        select(Attempt.contact_id, func.max(Attempt.attempt_no))
        .where(Attempt.contact_id.in_(contact_ids))
        .group_by(Attempt.contact_id)
    )
    return {cid: int(n) + 1 for cid, n in rows}


def claim_due(
    engine: Engine,
    *,
    daemon_id: str,
    now: datetime,
    limit: int,
    decide: Decide,
    lease: timedelta = timedelta(minutes=5),
    max_live: int | None = None,
    providers: Collection[str] | None = None,
) -> ClaimResult:
    """Claim up to ``limit`` contacts to dial now, in one short transaction.

    ``max_live`` caps the calls that may be live across every daemon (of ``providers``, when
    given: ``storage.caplock.slot_holders``).
    ``providers`` limits the claim to campaigns of those providers (the ones this daemon can
    place calls with); None claims from every running campaign.
    Contacts that ``decide`` defers get ``next_attempt_at`` moved (so they are not scanned
    again before then); closed ones reach their terminal state with the reason.
    """
    result = ClaimResult()
    limit = min(limit, CLAIM_MAX)
    if limit <= 0:
        return result
    with engine.begin() as conn:
        pg = conn.dialect.name == "postgresql"
        if pg and max_live is not None and not lock_for_cap(conn, now, max_live):
            return result
        if max_live is not None:
            room = max_live - slot_holders(conn, providers)
            result.capped = room < limit
            limit = min(limit, room)
            if limit <= 0:
                return result
        for camp in running_campaigns(conn, now, providers):
            budget = limit - len(result.jobs)
            if budget <= 0:
                break
            _claim_campaign(conn, camp, now, budget, decide, daemon_id, lease, result)
    return result


def _claim_campaign(
    conn: Connection,
    camp: CampaignRecord,
    now: datetime,
    budget: int,
    decide: Decide,
    daemon_id: str,
    lease: timedelta,
    result: ClaimResult,
) -> None:
    # scan a little more than the budget: some candidates will be deferred or closed
    rows = _due_rows(conn, camp.id, now, budget * 2)
    phones = [r.phone_e164 for r in rows if r.phone_e164]
    suppressed = _suppressed(conn, camp.id, phones)
    recent = _recent_calls(conn, phones, now)
    to_dial: list[Candidate] = []
    for r in rows:
        cand = Candidate(
            contact_id=r.id,
            campaign_id=r.campaign_id,
            state=r.state,
            phone_e164=r.phone_e164,
            name=r.name,
            attributes=dict(r.attributes or {}),
            timezones=r.timezones,
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            suppressed=r.phone_e164 in suppressed,
            recent_calls=tuple(sorted(recent.get(r.phone_e164, ()))),
            callbacks=r.callbacks,
        )
        if not cand.phone_e164:
            decision = Decision.close(ContactState.INVALID, "no valid phone number")
        else:
            decision = decide(camp, cand, now)
        if decision.action == "dial":
            if len(to_dial) < budget:
                to_dial.append(cand)
        elif decision.action == "defer":
            assert decision.until is not None
            conn.execute(
                update(Contact)
                .where(Contact.id == cand.contact_id, Contact.state == cand.state)
                .values(next_attempt_at=decision.until, updated_at=now)
            )
            result.deferred += 1
        else:
            closed = conn.execute(
                update(Contact)
                .where(Contact.id == cand.contact_id, Contact.state == cand.state)
                .values(state=decision.state, reason=decision.reason, updated_at=now)
            ).rowcount
            if closed and camp.webhook_url:  # its contact.finished, in this transaction
                outbox.contacts_finished(conn, camp.id, [cand.contact_id], now=now, checked=True)
            key = decision.state or "closed"
            result.closed[key] = result.closed.get(key, 0) + 1
    if not to_dial:
        return
    numbers = _next_attempt_numbers(conn, [c.contact_id for c in to_dial])
    claim_contact, insert_attempts = _claim_statements()
    moved = conn.execute(
        claim_contact,
        [
            {
                "b_id": c.contact_id,
                "b_state": c.state,
                "b_daemon": daemon_id,
                "b_expires": now + lease,
                "b_now": now,
            }
            for c in to_dial
        ],
    ).rowcount
    if moved != len(to_dial):
        # the rows are locked (FOR UPDATE / BEGIN IMMEDIATE): this cannot happen unless
        # something bypassed the locks; refuse to reserve anything rather than guess
        raise RuntimeError(f"claimed {len(to_dial)} contacts but {moved} moved; rolling back")
    params: list[dict[str, Any]] = [
        {
            "contact_id": c.contact_id,
            "campaign_id": c.campaign_id,
            "attempt_no": numbers.get(c.contact_id, 1),
            "phone_e164": c.phone_e164,
            "provider": camp.provider,
            "state": AttemptState.RESERVED.value,
            "daemon_id": daemon_id,
            "created_at": now,
            "details_fetched": False,
        }
        for c in to_dial
    ]
    ids = conn.execute(insert_attempts, params).scalars().all()
    for cand, attempt_id, p in zip(to_dial, ids, params, strict=True):
        result.jobs.append(
            DialJob(
                attempt_id=attempt_id,
                attempt_no=p["attempt_no"],
                contact_id=cand.contact_id,
                campaign=camp,
                phone_e164=cand.phone_e164,
                name=cand.name or "",
                metadata=cand.attributes,
                reserved_at=now,
            )
        )


@functools.cache
def _claim_statements() -> tuple[Update, Insert]:
    claim_contact = (
        update(Contact)
        .where(Contact.id == bindparam("b_id"), Contact.state == bindparam("b_state"))
        .values(
            state=ContactState.DIALING.value,
            attempts=Contact.attempts + 1,
            claimed_by=bindparam("b_daemon"),
            claim_expires_at=bindparam("b_expires", type_=UTCDateTime),
            last_attempt_at=bindparam("b_now", type_=UTCDateTime),
            updated_at=bindparam("b_now", type_=UTCDateTime),
        )
    )
    insert_attempts = insert(Attempt).returning(Attempt.id, sort_by_parameter_order=True)
    return claim_contact, insert_attempts
