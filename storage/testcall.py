"""What ``campaign test-call`` reads before it places a call: one read-only transaction.

A test call goes to the operator's own number with one contact's metadata, and it writes
nothing: no attempt, no contact change, no count. What it must know first is read here, in
one short transaction (``reading``: never the write lock a daemon needs):

* the contact whose metadata the call carries: the lowest row number among the campaign's
  contacts with a valid number, or the row asked for;
* whether the number to call is on the do-not-call list (global, or the campaign's own);
* the live attempts (reserved, accepted, unknown) to that number, in any campaign: a lost
  answer is reconciled by number and time (``scheduler.reconcile``), so a test call placed
  meanwhile could be taken for that attempt's call;
* the row of this campaign's contact with that number, if one has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, or_, select

from storage.engine import reading
from storage.errors import NotFound
from storage.models import Attempt, Campaign, Contact, Suppression
from storage.states import ATTEMPT_LIVE


@dataclass(frozen=True, kw_only=True)
class SampleContact:
    """The contact whose name and metadata a test call carries."""

    id: int
    row_number: int
    phone_e164: str | None  # None: the row was rejected at import (``reason`` says why)
    name: str | None
    metadata: dict[str, Any]
    timezones: str | None
    state: str
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class LiveCall:
    """A live attempt to the number a test call would ring."""

    campaign_id: int
    row_number: int
    state: str


@dataclass(frozen=True, kw_only=True)
class DialFacts:
    """Everything ``campaign test-call`` checks before it places its call."""

    contact: SampleContact | None  # None: no such row, or no contact with a valid number
    suppressed: bool
    live: tuple[LiveCall, ...]
    #: the row of this campaign's contact whose number is the one to call (None: none)
    same_number_row: int | None


def _contact(row: Any) -> SampleContact:
    return SampleContact(
        id=row.id,
        row_number=row.row_number,
        phone_e164=row.phone_e164,
        name=row.name,
        metadata=dict(row.metadata or {}),
        timezones=row.timezones,
        state=row.state,
        reason=row.reason,
    )


def dial_facts(
    engine: Engine, campaign_id: int, *, to_e164: str, row: int | None = None
) -> DialFacts:
    """The facts about calling ``to_e164`` with a contact of ``campaign_id`` (row ``row``, or
    the first with a valid number). Raises :class:`NotFound` for an unknown campaign."""
    pick = select(Contact).where(Contact.campaign_id == campaign_id)
    if row is None:
        pick = pick.where(Contact.phone_e164.is_not(None)).order_by(Contact.row_number).limit(1)
    else:
        pick = pick.where(Contact.row_number == row)
    on_list = select(Suppression.id).where(
        Suppression.phone_e164 == to_e164,
        or_(Suppression.campaign_id.is_(None), Suppression.campaign_id == campaign_id),
    )
    live = (
        select(Attempt.campaign_id, Contact.row_number, Attempt.state)
        .join(Contact, Contact.id == Attempt.contact_id)
        .where(Attempt.phone_e164 == to_e164, Attempt.state.in_([s.value for s in ATTEMPT_LIVE]))
        .order_by(Attempt.id)
    )
    same = select(Contact.row_number).where(
        Contact.campaign_id == campaign_id, Contact.phone_e164 == to_e164
    )
    with reading(engine).connect() as conn:
        if conn.execute(select(Campaign.id).where(Campaign.id == campaign_id)).first() is None:
            raise NotFound(f"no campaign with id {campaign_id}")
        found = conn.execute(pick).first()
        return DialFacts(
            contact=_contact(found) if found is not None else None,
            suppressed=conn.execute(on_list.limit(1)).first() is not None,
            live=tuple(
                LiveCall(campaign_id=c, row_number=r, state=s) for c, r, s in conn.execute(live)
            ),
            same_number_row=conn.execute(same.limit(1)).scalar(),
        )
