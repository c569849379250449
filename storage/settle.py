"""Settling an attempt once its trigger-call has been answered (or not).

After the POST, exactly one of :func:`record_accepted_many` (the dispatcher batches accepted
calls into one transaction per tick),
:func:`record_unknown`, :func:`record_not_placed` or :func:`record_rejected` settles the
reserved attempt written by :func:`storage.claims.claim_due` (:func:`record_not_placed` by
deleting it: a request that placed no call is no attempt). Each is a compare-and-set on
the states it expects (attempt ``reserved``, contact ``dialing``), so a claim that was judged
stale and reconciled meanwhile is left alone. Statements are built once per shape: building
them cost more than SQLite's execution.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Update, bindparam, delete, update

from storage import outbox
from storage.models import Attempt, Contact
from storage.states import CONTACT_TERMINAL, AttemptState, ContactState


@functools.cache
def _settle_statements(
    attempt_keys: tuple[str, ...], contact_keys: tuple[str, ...], give_back: bool
) -> tuple[Update, Update]:
    """Compare-and-set updates of an attempt and its contact, built once per shape."""
    acols, ccols = Attempt.__table__.c, Contact.__table__.c
    attempt = (
        update(Attempt)
        .where(Attempt.id == bindparam("b_id"), Attempt.state == bindparam("b_from"))
        .values({k: bindparam(f"a_{k}", type_=acols[k].type) for k in attempt_keys})
        .returning(Attempt.contact_id)
    )
    values: dict[str, Any] = {k: bindparam(f"c_{k}", type_=ccols[k].type) for k in contact_keys}
    if give_back:  # the attempt was not placed: it does not count against the cap
        values["attempts"] = Contact.attempts - 1
    contact = update(Contact).where(
        Contact.id == bindparam("b_cid"), Contact.state == bindparam("b_cfrom")
    )
    return attempt, contact.values(values)


def _settle(
    conn: Connection,
    attempt_id: int,
    attempt_values: dict[str, Any],
    contact_values: dict[str, Any],
    *,
    from_attempt: str = AttemptState.RESERVED.value,
    from_contact: str = ContactState.DIALING.value,
    give_back: bool = False,
) -> bool:
    attempt_stmt, contact_stmt = _settle_statements(
        tuple(attempt_values), tuple(contact_values), give_back
    )
    contact_id = conn.execute(
        attempt_stmt,
        {"b_id": attempt_id, "b_from": from_attempt}
        | {f"a_{k}": v for k, v in attempt_values.items()},
    ).scalar_one_or_none()
    if contact_id is None:
        return False
    conn.execute(
        contact_stmt,
        {"b_cid": contact_id, "b_cfrom": from_contact}
        | {f"c_{k}": v for k, v in contact_values.items()},
    )
    return True


@dataclass(frozen=True, kw_only=True)
class Accepted:
    """A trigger-call the API answered with a call_id."""

    attempt_id: int
    call_id: str
    sent_at: datetime
    accepted_at: datetime


def record_accepted_many(
    engine: Engine, items: Sequence[Accepted], *, outcome_deadline: timedelta
) -> list[bool]:
    """The API gave each of ``items`` a call_id: the calls are placed and await their
    outcomes. One transaction (one commit) for all; each settlement is still a compare-and-set,
    and the list says which succeeded (False: the claim was judged stale meanwhile)."""
    if not items:
        return []
    with engine.begin() as conn:
        return [_accept(conn, item, outcome_deadline) for item in items]


def _accept(conn: Connection, item: Accepted, outcome_deadline: timedelta) -> bool:
    return _settle(
        conn,
        item.attempt_id,
        {
            "state": AttemptState.ACCEPTED.value,
            "call_id": item.call_id,
            "sent_at": item.sent_at,
            "accepted_at": item.accepted_at,
            "http_status": 200,
            "outcome_deadline_at": item.accepted_at + outcome_deadline,
        },
        {
            "state": ContactState.AWAITING_OUTCOME.value,
            "claimed_by": None,
            "claim_expires_at": None,
            "updated_at": item.accepted_at,
        },
    )


def record_unknown(
    engine: Engine,
    attempt_id: int,
    *,
    sent_at: datetime | None,
    now: datetime,
    error: str,
    http_status: int | None = None,
) -> bool:
    """The POST may have placed the call but we never got the answer: reconcile later."""
    with engine.begin() as conn:
        return _settle(
            conn,
            attempt_id,
            {
                "state": AttemptState.UNKNOWN.value,
                "sent_at": sent_at or now,
                "error": error[:2000],
                "http_status": http_status,
            },
            {
                "state": ContactState.AWAITING_OUTCOME.value,
                "claimed_by": None,
                "claim_expires_at": None,
                "updated_at": now,
            },
        )


def record_not_placed(
    engine: Engine,
    attempt_id: int,
    *,
    now: datetime,
    retry_at: datetime | None,
) -> bool:
    """The call was certainly not placed (never sent, 429, account problem): give the contact
    back, due at ``retry_at`` (None: as soon as possible), and delete the write-ahead attempt.

    A request that placed no call is not an attempt: it is neither stored nor numbered, so the
    contact's next trigger-call takes the number this one had and the attempt numbers stay
    1..n over the calls that may have been placed (``attempt_no`` is max + 1, unique per
    contact). The reason is the dispatcher's log line, not a row. A compare-and-set like the
    others: only a ``reserved`` attempt of a ``dialing`` contact is released.
    """
    with engine.begin() as conn:
        contact_id = conn.execute(
            delete(Attempt)
            .where(Attempt.id == attempt_id, Attempt.state == AttemptState.RESERVED.value)
            .returning(Attempt.contact_id)
        ).scalar_one_or_none()
        if contact_id is None:
            return False
        conn.execute(
            update(Contact)
            .where(Contact.id == contact_id, Contact.state == ContactState.DIALING.value)
            .values(
                state=ContactState.PENDING.value,
                next_attempt_at=retry_at,
                claimed_by=None,
                claim_expires_at=None,
                updated_at=now,
                attempts=Contact.attempts - 1,
            )
        )
        return True


def record_rejected(
    engine: Engine,
    attempt_id: int,
    *,
    now: datetime,
    contact_state: ContactState,
    reason: str,
    http_status: int | None,
) -> bool:
    """The API refused this very request (e.g. 422 for the number): not placed, and the
    contact is closed with the reason rather than retried forever (and its
    ``contact.finished`` event written, in the same transaction)."""
    with engine.begin() as conn:
        settled = _settle(
            conn,
            attempt_id,
            {
                "state": AttemptState.REJECTED.value,
                "error": reason[:2000],
                "http_status": http_status,
                "finished_at": now,
            },
            {
                "state": contact_state.value,
                "reason": reason[:2000],
                "claimed_by": None,
                "claim_expires_at": None,
                "updated_at": now,
            },
            give_back=True,
        )
        if settled and contact_state in CONTACT_TERMINAL:
            outbox.finished_by_attempt(conn, attempt_id, now=now)
        return settled
