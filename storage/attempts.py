"""Live attempts and their reconciliation: what the poller reads and how lost answers settle.

* :func:`load_live` reads every attempt still waiting on the API (``accepted`` calls awaiting
  an outcome, ``unknown`` lost answers) as :class:`LiveAttempt` values, and the numbers with
  a trigger-call in flight;
* :func:`free_slots` lets attempts whose call cannot be live stop counting against the cap;
* :func:`linked_call_ids`, :func:`mark_reconciled` and :func:`mark_not_placed` settle a lost
  answer once the scheduler has matched it against the call history (the matching itself is a
  pure function in ``scheduler.reconcile``);
* :func:`reconcile_stale_claims` turns claims of dead daemons (or expired leases) into
  ``unknown`` attempts, so that they are reconciled rather than re-dialled blindly.

Call ids are unique per provider (migration 0002): every lookup by call id is made within the
attempt's own provider. Each update is a compare-and-set on the state it expects.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, exists, false, or_, select, true, update
from sqlalchemy.orm import aliased

from storage import breaker, outbox
from storage.breaker import Trip
from storage.errors import IntegrityConflict
from storage.models import Attempt, Campaign, Contact
from storage.states import AttemptState, ContactState

#: The rule "a campaign stopped or cancelled meanwhile closes the contact": given the
#: campaign's status (None when the campaign is gone), the reason to cancel it, or None to
#: give the contact back to the queue. ``campaigns.dialing.cancelled_by_campaign`` is it.
CancelRule = Callable[[str | None], str | None]


@dataclass(frozen=True, kw_only=True)
class LiveAttempt:
    """A live attempt as the poller needs it (a value, never an ORM object)."""

    attempt_id: int
    contact_id: int
    state: str
    provider: str
    call_id: str | None
    phone_e164: str
    agent_id: str | None
    created_at: datetime
    sent_at: datetime | None
    outcome_deadline_at: datetime | None
    slot_freed: bool = False  # no longer counts against the concurrency cap

    @property
    def since(self) -> datetime:
        """The earliest the API can have created this call."""
        return min(t for t in (self.created_at, self.sent_at) if t is not None)


def load_live(
    engine: Engine, *, provider: str | None = None, owner: str | None = None
) -> tuple[list[LiveAttempt], list[str]]:
    """Accepted and unknown attempts (oldest first), and the numbers of reserved ones (POST
    in flight); of ``provider`` only, when given (a daemon reads only its provider's calls),
    and owned by daemon ``owner`` only, when given (``storage.owners``: each live call is
    polled by one daemon). The busy numbers are every daemon's."""
    states = [s.value for s in (AttemptState.ACCEPTED, AttemptState.UNKNOWN)]
    mine = Attempt.provider == provider if provider is not None else true()
    owned = Attempt.daemon_id == owner if owner is not None else true()
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Attempt.id,
                Attempt.contact_id,
                Attempt.state,
                Attempt.provider,
                Attempt.call_id,
                Attempt.phone_e164,
                Campaign.agent_id,
                Attempt.created_at,
                Attempt.sent_at,
                Attempt.outcome_deadline_at,
                Attempt.slot_freed_at,
            )
            .join(Campaign, Campaign.id == Attempt.campaign_id)
            .where(Attempt.state.in_(states), mine, owned)
            .order_by(Attempt.created_at, Attempt.id)
        ).all()
        busy = conn.execute(
            select(Attempt.phone_e164).where(Attempt.state == AttemptState.RESERVED.value, mine)
        ).scalars()
        live = [
            LiveAttempt(
                attempt_id=r.id,
                contact_id=r.contact_id,
                state=r.state,
                provider=r.provider,
                call_id=r.call_id,
                phone_e164=r.phone_e164,
                agent_id=r.agent_id,
                created_at=r.created_at,
                sent_at=r.sent_at,
                outcome_deadline_at=r.outcome_deadline_at,
                slot_freed=r.slot_freed_at is not None,
            )
            for r in rows
        ]
        return live, list(busy)


def linked_call_ids(engine: Engine, provider: str, call_ids: Collection[str]) -> set[str]:
    """Those of ``call_ids`` (of ``provider``) already recorded on an attempt."""
    if not call_ids:
        return set()
    with engine.connect() as conn:
        rows = conn.execute(
            select(Attempt.call_id).where(
                Attempt.provider == provider, Attempt.call_id.in_(list(call_ids))
            )
        )
        return {c for c in rows.scalars() if c is not None}


def mark_reconciled(
    engine: Engine,
    attempt_id: int,
    *,
    call_id: str,
    call_started_at: datetime | None,
    now: datetime,
    outcome_deadline: timedelta,
) -> bool:
    """``unknown`` -> ``accepted`` with the call found in the history. False when the attempt
    was no longer unknown, or the call was linked to another attempt of the same provider
    meanwhile."""
    other = aliased(Attempt)
    try:
        with engine.begin() as conn:
            moved = conn.execute(
                update(Attempt)
                .where(
                    Attempt.id == attempt_id,
                    Attempt.state == AttemptState.UNKNOWN.value,
                    ~exists().where(other.call_id == call_id, other.provider == Attempt.provider),
                )
                .values(
                    state=AttemptState.ACCEPTED.value,
                    call_id=call_id,
                    accepted_at=now,
                    outcome_deadline_at=now + outcome_deadline,
                    call_started_at=call_started_at,
                    slot_freed_at=None,  # found after all: its call may be live again
                )
            ).rowcount
            return bool(moved)
    except IntegrityConflict:  # another daemon linked the same call a moment ago
        return False


def free_slots(engine: Engine, attempt_ids: Collection[int], *, now: datetime) -> int:
    """The live attempts ``attempt_ids`` stop counting against the concurrency cap (their
    call was seen ended, or is not in a history read past their time); they stay live, and
    their contacts blocked, until settled. Returns how many were freed now."""
    if not attempt_ids:
        return 0
    live = [AttemptState.ACCEPTED.value, AttemptState.UNKNOWN.value]
    with engine.begin() as conn:
        return int(
            conn.execute(
                update(Attempt)
                .where(
                    Attempt.id.in_(list(attempt_ids)),
                    Attempt.state.in_(live),
                    Attempt.slot_freed_at.is_(None),
                )
                .values(slot_freed_at=now)
            ).rowcount
        )


def mark_not_placed(
    engine: Engine,
    attempt_id: int,
    *,
    now: datetime,
    reason: str,
    cancel_if: CancelRule,
    tripped: list[Trip] | None = None,
) -> bool:
    """``unknown`` -> ``not_placed``; the contact is due again now, its attempt given back
    (or ``cancelled`` when ``cancel_if`` says so for its campaign's status). A call the API
    lost counts as failed for the campaign's circuit breaker, judged in this transaction; a
    trip is appended to ``tripped`` when given (:mod:`storage.breaker`)."""
    with engine.begin() as conn:
        row = conn.execute(
            update(Attempt)
            .where(Attempt.id == attempt_id, Attempt.state == AttemptState.UNKNOWN.value)
            .values(state=AttemptState.NOT_PLACED.value, finished_at=now, error=reason[:2000])
            .returning(Attempt.contact_id, Attempt.campaign_id)
        ).first()
        if row is None:
            return False
        contact_id, campaign_id = row
        status = conn.execute(
            select(Campaign.status).where(Campaign.id == campaign_id)
        ).scalar_one_or_none()
        cancelled = cancel_if(status)
        moved = conn.execute(
            update(Contact)
            .where(
                Contact.id == contact_id,
                Contact.state == ContactState.AWAITING_OUTCOME.value,
            )
            .values(
                state=(ContactState.CANCELLED if cancelled else ContactState.PENDING).value,
                reason=cancelled,
                next_attempt_at=None if cancelled else now,
                updated_at=now,
            )
        ).rowcount
        conn.execute(
            update(Contact)
            .where(Contact.id == contact_id, Contact.attempts > 0)
            .values(attempts=Contact.attempts - 1)
        )
        if cancelled and moved:  # its contact.finished, in this same transaction
            outbox.contacts_finished(conn, campaign_id, [contact_id], now=now)
        trips = breaker.check(conn, [campaign_id], now=now)
        if tripped is not None:
            tripped.extend(trips)
        return True


def reconcile_stale_claims(engine: Engine, dead_daemon_ids: Collection[str], now: datetime) -> int:
    """Claims that will never be settled by their daemon become ``unknown``.

    A contact ``dialing`` for a daemon in ``dead_daemon_ids`` (or whose claim expired) may
    have had its trigger-call sent just before the daemon died: its reserved attempt becomes
    ``unknown`` (``sent_at`` = now, so the grace period before "not placed" runs from the
    recovery) and the contact ``awaiting_outcome``, to be reconciled against the history.
    Returns the number of attempts changed.
    """
    dead = list(dead_daemon_ids)
    stale_claim = or_(
        Contact.claimed_by.in_(dead) if dead else false(),
        and_(Contact.claim_expires_at.is_not(None), Contact.claim_expires_at < now),
    )
    changed = 0
    with engine.begin() as conn:
        rows = conn.execute(
            select(Attempt.id, Attempt.contact_id, Contact.claimed_by)
            .join(Contact, Contact.id == Attempt.contact_id)
            .where(
                Attempt.state == AttemptState.RESERVED.value,
                Contact.state == ContactState.DIALING.value,
                or_(stale_claim, Attempt.daemon_id.in_(dead) if dead else false()),
            )
        ).all()
        for attempt_id, contact_id, claimed_by in rows:
            who = f"daemon {claimed_by}" if claimed_by else "a daemon"
            moved = conn.execute(
                update(Attempt)
                .where(Attempt.id == attempt_id, Attempt.state == AttemptState.RESERVED.value)
                .values(
                    state=AttemptState.UNKNOWN.value,
                    sent_at=now,
                    error=f"claimed by {who} that stopped before settling it; reconciling",
                )
            ).rowcount
            if not moved:
                continue
            conn.execute(
                update(Contact)
                .where(Contact.id == contact_id, Contact.state == ContactState.DIALING.value)
                .values(
                    state=ContactState.AWAITING_OUTCOME.value,
                    claimed_by=None,
                    claim_expires_at=None,
                    updated_at=now,
                )
            )
            changed += 1
    return changed
