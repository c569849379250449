"""Reconciling attempts whose trigger-call answer was lost, against the call history.

A POST that timed out after sending, was reset, or got a 5xx may or may not have placed the
call (invariant 3: it is never blindly repeated). Its attempt is ``unknown``. The poller reads
the call history anyway; :func:`match_unknown` looks there for a call to the same number
(same agent when the record names one) created at or after the attempt (minus a clock-skew
margin) and not already linked to another attempt:

* found: the attempt becomes ``accepted`` with that call_id (:func:`mark_reconciled`) and is
  then followed like any other call;
* not found, once the history has been read back past the attempt's time and a grace period
  after sending has passed: the call was never placed. The attempt becomes ``not_placed`` and
  the contact is due again at once, its attempt count given back (:func:`mark_not_placed`).

Claims of daemons that died mid-dispatch (:func:`reconcile_stale_claims`) become ``unknown``
the same way, so that they are reconciled rather than re-dialled blindly.

The matching is a pure function of values, so it is tested without a database or a server.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, exists, false, or_, select, update
from sqlalchemy.orm import aliased

from scheduler.client import CallRecord
from storage.errors import IntegrityConflict
from storage.models import Attempt, Campaign, Contact
from storage.states import AttemptState, CampaignStatus, ContactState

#: How far the API's clock may be behind ours when comparing its created_at with our times.
DEFAULT_SKEW = timedelta(minutes=2)
#: How long after sending we wait for a lost call to show up before declaring it not placed.
DEFAULT_GRACE = timedelta(seconds=60)


@dataclass(frozen=True, kw_only=True)
class UnknownAttempt:
    """An attempt whose POST answer was lost, with what matching needs."""

    attempt_id: int
    contact_id: int
    phone_e164: str
    agent_id: str | None
    created_at: datetime  # reserved at: the call cannot be older than this
    sent_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class HistoryCoverage:
    """How much of the call history a poll has read: back to ``oldest`` (the oldest
    ``created_at`` seen), and whether it reached the very end."""

    oldest: datetime | None
    reached_end: bool

    def covers(self, since: datetime) -> bool:
        """Has every call created at or after ``since`` been read?"""
        return self.reached_end or (self.oldest is not None and self.oldest < since)


@dataclass
class Verdicts:
    """The result of matching: attempt id -> its call, and the attempts never placed."""

    matched: dict[int, CallRecord] = field(default_factory=dict)
    not_placed: list[int] = field(default_factory=list)
    undecided: list[int] = field(default_factory=list)


def phone_key(number: str | None) -> str:
    """Digits only: ``"+91 98000-00001"`` and ``"919800000001"`` are the same number."""
    return "".join(ch for ch in number or "" if ch.isdigit())


def _candidate(record: CallRecord, attempt: UnknownAttempt, skew: timedelta) -> bool:
    if phone_key(record.contact_number) != phone_key(attempt.phone_e164):
        return False
    if record.agent_id and attempt.agent_id and record.agent_id != attempt.agent_id:
        return False
    if str(record.raw.get("call_type", "")).lower() == "inbound":
        return False
    return record.created_at is None or record.created_at >= attempt.created_at - skew


def match_unknown(
    attempts: Sequence[UnknownAttempt],
    records: Iterable[CallRecord],
    *,
    linked: Collection[str],
    coverage: HistoryCoverage,
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
    grace: timedelta = DEFAULT_GRACE,
    busy_phones: Collection[str] = (),
) -> Verdicts:
    """Decide each unknown attempt from the history records read in this poll.

    ``linked`` holds call_ids already recorded on some attempt (they belong to another
    attempt). Attempts are matched oldest first, each to the oldest fitting record, so that
    two lost attempts to one number take two different calls. ``busy_phones`` are numbers
    with a trigger-call still in flight elsewhere: a call to such a number might be that
    one's, so those attempts wait for the next poll.
    """
    verdicts = Verdicts()
    taken = set(linked)
    pool = sorted(
        (r for r in records if r.call_id not in taken),
        key=lambda r: (r.created_at is None, r.created_at or now),
    )
    busy = {phone_key(p) for p in busy_phones}
    for attempt in sorted(attempts, key=lambda a: (a.created_at, a.attempt_id)):
        if phone_key(attempt.phone_e164) in busy:
            verdicts.undecided.append(attempt.attempt_id)
            continue
        found = next(
            (r for r in pool if r.call_id not in taken and _candidate(r, attempt, skew)), None
        )
        if found is not None:
            taken.add(found.call_id)
            verdicts.matched[attempt.attempt_id] = found
            continue
        sent = attempt.sent_at or attempt.created_at
        if coverage.covers(attempt.created_at - skew) and now >= sent + grace:
            verdicts.not_placed.append(attempt.attempt_id)
        else:
            verdicts.undecided.append(attempt.attempt_id)
    return verdicts


# --------------------------------------------------------------------------- database


def linked_call_ids(engine: Engine, call_ids: Collection[str]) -> set[str]:
    """Those of ``call_ids`` already recorded on an attempt."""
    if not call_ids:
        return set()
    with engine.connect() as conn:
        rows = conn.execute(select(Attempt.call_id).where(Attempt.call_id.in_(list(call_ids))))
        return {c for c in rows.scalars() if c is not None}


def mark_reconciled(
    engine: Engine,
    attempt_id: int,
    record: CallRecord,
    *,
    now: datetime,
    outcome_deadline: timedelta,
) -> bool:
    """``unknown`` -> ``accepted`` with the call found in the history. False when the attempt
    was no longer unknown, or the call was linked to another attempt meanwhile."""
    other = aliased(Attempt)
    try:
        with engine.begin() as conn:
            moved = conn.execute(
                update(Attempt)
                .where(
                    Attempt.id == attempt_id,
                    Attempt.state == AttemptState.UNKNOWN.value,
                    ~exists().where(other.call_id == record.call_id),
                )
                .values(
                    state=AttemptState.ACCEPTED.value,
                    call_id=record.call_id,
                    accepted_at=now,
                    outcome_deadline_at=now + outcome_deadline,
                    call_started_at=record.created_at,
                )
            ).rowcount
            return bool(moved)
    except IntegrityConflict:  # another daemon linked the same call a moment ago
        return False


def mark_not_placed(engine: Engine, attempt_id: int, *, now: datetime, reason: str) -> bool:
    """``unknown`` -> ``not_placed``; the contact is due again now, its attempt given back
    (or ``cancelled`` when its campaign was stopped or cancelled meanwhile)."""
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
        closed = status in (CampaignStatus.STOPPED.value, CampaignStatus.CANCELLED.value)
        conn.execute(
            update(Contact)
            .where(
                Contact.id == contact_id,
                Contact.state == ContactState.AWAITING_OUTCOME.value,
            )
            .values(
                state=(ContactState.CANCELLED if closed else ContactState.PENDING).value,
                reason=f"campaign {status} before a re-dial" if closed else None,
                next_attempt_at=None if closed else now,
                updated_at=now,
            )
        )
        conn.execute(
            update(Contact)
            .where(Contact.id == contact_id, Contact.attempts > 0)
            .values(attempts=Contact.attempts - 1)
        )
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
