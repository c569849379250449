"""Applying a finished call's outcome: the attempt is finished and its contact moved, in ONE
short transaction, every update a compare-and-set on the state it expects, so that two
daemons applying the same outcome cannot apply it twice.

What the outcome means for the contact (done, re-dial when, exhausted, cancelled, opted out)
is a rule of the calling policy, not of storage: the caller passes an :class:`OutcomeRule`
(``campaigns.dialing.OutcomeRules``), asked mid-transaction with the campaign as a
:class:`~storage.campaigns_repo.CampaignRecord`. When the rule reports an opt-out, the number
joins the global do-not-call list in the same transaction, and so do the campaign's events
out (``contact.finished``, ``contact.opted_out``: :mod:`storage.outbox`), and the circuit
breaker of each campaign the outcomes touched (:mod:`storage.breaker`): a campaign whose calls
keep failing is paused in the transaction of the outcome that tripped it.

Statements are built once: the poller applies thousands of outcomes and statement
construction would cost more than the database work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Engine, Table, Text, bindparam, func, select, update

from storage import breaker, outbox, suppressions
from storage.breaker import Trip
from storage.campaigns_repo import CampaignRecord
from storage.models import Attempt, CallTranscript, Campaign, Contact
from storage.states import CONTACT_TERMINAL, AttemptState, ContactState, Outcome


@dataclass(frozen=True, kw_only=True)
class CallResult:
    """Everything known about a finished call, ready to be stored on its attempt."""

    outcome: Outcome
    call_status: str | None  # the raw status as the API sent it
    duration_ms: float | None = None
    summary: str | None = None
    entity: dict[str, Any] | None = None
    raw: dict[str, Any] | None = None  # the history record as received
    call_started_at: datetime | None = None
    details_fetched: bool = False
    error: str | None = None  # why the outcome is flagged (e.g. no_outcome)
    #: what was said, as the provider sent it (kept in ``call_transcripts``); None: none
    transcript: Any = None


@dataclass(frozen=True, kw_only=True)
class ContactMove:
    """Where a contact goes after an outcome: its state, when it is due again, why, and the
    opt-out entity heard on the call (the number is then suppressed)."""

    state: ContactState
    next_attempt_at: datetime | None = None
    reason: str | None = None
    opted_out: str | None = None
    callback_at: datetime | None = None  # a callback the contact asked for, scheduled then
    callback_note: str | None = None  # why a callback asked for was ignored (or moved)


class OutcomeRule(Protocol):
    """The calling policy's answer to "what now for this contact?" after a call."""

    def after_outcome(
        self,
        campaign: CampaignRecord,
        *,
        outcome: Outcome,
        entity: Mapping[str, Any] | None,
        attempts: int,
        now: datetime,
        callbacks: int = 0,
        timezones: str | None = None,
        ended_at: datetime | None = None,
    ) -> ContactMove: ...


@dataclass(frozen=True, kw_only=True)
class Applied:
    """What :func:`apply_outcome` did."""

    attempt_id: int
    contact_id: int
    outcome: Outcome
    contact_state: str | None  # None when the contact was no longer awaiting this outcome
    next_attempt_at: datetime | None
    opted_out: bool
    campaign_id: int | None = None
    #: set on the last outcome of a campaign whose circuit breaker it tripped (storage.breaker)
    tripped: Trip | None = None


def apply_outcome(
    engine: Engine,
    attempt_id: int,
    result: CallResult,
    *,
    now: datetime,
    rules: OutcomeRule,
    expected_state: AttemptState = AttemptState.ACCEPTED,
) -> Applied | None:
    """Finish attempt ``attempt_id`` with ``result`` and move its contact, in one transaction.

    Returns None when the attempt was not in ``expected_state`` any more (another daemon, or
    an earlier poll, applied an outcome first): nothing is changed then.
    """
    with engine.begin() as conn:
        applied = _apply(conn, attempt_id, result, now, expected_state, rules, {})
        return _judge(conn, [applied], now)[0]


def apply_outcomes(
    engine: Engine,
    items: Sequence[tuple[int, CallResult]],
    *,
    now: datetime,
    rules: OutcomeRule,
) -> list[Applied | None]:
    """:func:`apply_outcome` for several accepted attempts in one short transaction (one
    commit for all the calls a poll found finished); each is still a compare-and-set.

    Rows are updated in attempt-id order whatever the order of ``items``, so that two daemons
    applying overlapping batches on PostgreSQL take their row locks in the same order and
    cannot deadlock. Results come back in the order of ``items``.
    """
    with engine.begin() as conn:
        return apply_outcomes_on(conn, items, now=now, rules=rules)


def apply_outcomes_on(
    conn: Connection,
    items: Sequence[tuple[int, CallResult]],
    *,
    now: datetime,
    rules: OutcomeRule,
) -> list[Applied | None]:
    """:func:`apply_outcomes` inside the caller's transaction (the webhook inbox records its
    events applied in the same one)."""
    campaigns: dict[int, CampaignRecord | None] = {}
    order = sorted(range(len(items)), key=lambda i: items[i][0])
    results: list[Applied | None] = [None] * len(items)
    for i in order:
        aid, res = items[i]
        results[i] = _apply(conn, aid, res, now, AttemptState.ACCEPTED, rules, campaigns)
    return _judge(conn, results, now)


def _judge(conn: Connection, results: list[Applied | None], now: datetime) -> list[Applied | None]:
    """The circuit breaker of every campaign these outcomes touched, in their transaction;
    a trip is told on the campaign's last outcome (``Applied.tripped``)."""
    last = {r.campaign_id: i for i, r in enumerate(results) if r is not None and r.campaign_id}
    for trip in breaker.check(conn, last, now=now):
        i = last[trip.campaign_id]
        results[i] = replace(cast(Applied, results[i]), tripped=trip)
    return results


_ATTEMPTS = cast(Table, Attempt.__table__)
_CONTACTS = cast(Table, Contact.__table__)
_CAMPAIGNS = cast(Table, Campaign.__table__)
_TRANSCRIPTS = cast(Table, CallTranscript.__table__)

_FINISH_ATTEMPT = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("aid"), _ATTEMPTS.c.state == bindparam("expected"))
    .values(
        state=AttemptState.FINISHED.value,
        call_status=bindparam("call_status"),
        outcome=bindparam("outcome"),
        duration_s=bindparam("duration_s"),
        summary=bindparam("summary"),
        entity=bindparam("entity", type_=_ATTEMPTS.c.entity.type),
        raw=bindparam("raw", type_=_ATTEMPTS.c.raw.type),
        call_started_at=bindparam("call_started_at", type_=_ATTEMPTS.c.call_started_at.type),
        finished_at=bindparam("finished_at", type_=_ATTEMPTS.c.finished_at.type),
        details_fetched=bindparam("details_fetched"),
        error=func.coalesce(bindparam("error", type_=Text()), _ATTEMPTS.c.error),
    )
    .returning(
        _ATTEMPTS.c.contact_id, _ATTEMPTS.c.campaign_id, _ATTEMPTS.c.phone_e164, _ATTEMPTS.c.call_id
    )
)
_KEEP_TRANSCRIPT = _TRANSCRIPTS.insert().values(
    attempt_id=bindparam("aid"),
    transcript=bindparam("transcript", type_=_TRANSCRIPTS.c.transcript.type),
)
_LOAD_CAMPAIGN = select(_CAMPAIGNS).where(_CAMPAIGNS.c.id == bindparam("camp"))
_CONTACT_FACTS = select(_CONTACTS.c.attempts, _CONTACTS.c.callbacks, _CONTACTS.c.timezones).where(
    _CONTACTS.c.id == bindparam("cid")
)
_MOVE_CONTACT = (
    update(_CONTACTS)
    .where(
        _CONTACTS.c.id == bindparam("cid"),
        _CONTACTS.c.state == ContactState.AWAITING_OUTCOME.value,
    )
    .values(
        state=bindparam("new_state"),
        outcome=bindparam("outcome"),
        next_attempt_at=bindparam("next_at", type_=_CONTACTS.c.next_attempt_at.type),
        reason=bindparam("reason", type_=Text()),
        updated_at=bindparam("now", type_=_CONTACTS.c.updated_at.type),
        callback_at=bindparam("callback_at", type_=_CONTACTS.c.callback_at.type),
        callbacks=_CONTACTS.c.callbacks + bindparam("callback_inc"),
    )
)
_NOTE_CALLBACK = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("aid"))
    .values(
        callback_at=bindparam("callback_at", type_=_ATTEMPTS.c.callback_at.type),
        callback_note=bindparam("callback_note", type_=Text()),
    )
)


def has_transcript(transcript: Any) -> bool:
    """Is there anything to keep? An empty list, string or object (what providers send for a
    call nobody answered) is stored as nothing, like a missing one."""
    if transcript is None:
        return False
    if isinstance(transcript, str | list | dict):
        return bool(transcript.strip() if isinstance(transcript, str) else transcript)
    return True


def _ended_at(result: CallResult, now: datetime) -> datetime:
    """When the call ended (a callback "in 2 hours" counts from there): its start plus its
    duration when both are known, else now."""
    if result.call_started_at is not None and result.duration_ms is not None:
        return min(now, result.call_started_at + timedelta(milliseconds=result.duration_ms))
    return now


def _campaign(conn: Connection, campaign_id: int) -> CampaignRecord | None:
    row = conn.execute(_LOAD_CAMPAIGN, {"camp": campaign_id}).first()
    return CampaignRecord.from_row(row) if row is not None else None


def _apply(
    conn: Connection,
    attempt_id: int,
    result: CallResult,
    now: datetime,
    expected_state: AttemptState,
    rules: OutcomeRule,
    campaigns: dict[int, CampaignRecord | None],
) -> Applied | None:
    duration_s = result.duration_ms / 1000.0 if result.duration_ms is not None else None
    finished = conn.execute(
        _FINISH_ATTEMPT,
        {
            "aid": attempt_id,
            "expected": expected_state.value,
            "call_status": (result.call_status or "")[:50] or None,
            "outcome": result.outcome.value,
            "duration_s": duration_s,
            "summary": result.summary,
            "entity": result.entity,
            "raw": result.raw,
            "call_started_at": result.call_started_at,
            "finished_at": now,
            "details_fetched": result.details_fetched,
            "error": result.error[:2000] if result.error else None,
        },
    ).first()
    if finished is None:
        return None
    contact_id, campaign_id, phone, call_id = finished
    if has_transcript(result.transcript):  # the attempt was finished just now: no row yet
        conn.execute(_KEEP_TRANSCRIPT, {"aid": attempt_id, "transcript": result.transcript})
    if campaign_id not in campaigns:
        campaigns[campaign_id] = _campaign(conn, campaign_id)
    campaign = campaigns[campaign_id]
    facts = conn.execute(_CONTACT_FACTS, {"cid": contact_id}).first()
    if campaign is None or facts is None:  # deleted meanwhile: the attempt is enough
        return Applied(
            attempt_id=attempt_id,
            contact_id=contact_id,
            outcome=result.outcome,
            contact_state=None,
            next_attempt_at=None,
            opted_out=False,
            campaign_id=campaign_id,
        )
    move = rules.after_outcome(
        campaign,
        outcome=result.outcome,
        entity=result.entity,
        attempts=facts.attempts,
        now=now,
        callbacks=facts.callbacks,
        timezones=facts.timezones,
        ended_at=_ended_at(result, now),
    )
    if move.opted_out is not None:
        suppressions.add(
            conn,
            [phone],
            campaign_id=None,
            source=f"opt_out:{call_id or attempt_id}",
            reason=(
                f"asked not to be called again ({move.opted_out}) on a call of campaign "
                f"{campaign_id}"
            ),
        )
    moved = conn.execute(
        _MOVE_CONTACT,
        {
            "cid": contact_id,
            "new_state": move.state.value,
            "outcome": result.outcome.value,
            "next_at": move.next_attempt_at,
            "reason": move.reason,
            "now": now,
            "callback_at": move.callback_at,
            "callback_inc": 1 if move.callback_at is not None else 0,
        },
    ).rowcount
    if moved and (move.callback_at is not None or move.callback_note):
        conn.execute(
            _NOTE_CALLBACK,
            {
                "aid": attempt_id,
                "callback_at": move.callback_at,
                "callback_note": move.callback_note,
            },
        )
    if moved and campaign.webhook_url:  # events out, in this same transaction
        if move.state in CONTACT_TERMINAL:
            outbox.contacts_finished(conn, campaign_id, [contact_id], now=now, checked=True)
        if move.opted_out is not None:
            outbox.contact_opted_out(conn, campaign_id, contact_id, move.opted_out, now=now)
    return Applied(
        attempt_id=attempt_id,
        contact_id=contact_id,
        outcome=result.outcome,
        contact_state=move.state.value if moved else None,
        next_attempt_at=move.next_attempt_at if moved else None,
        opted_out=move.opted_out is not None,
        campaign_id=campaign_id,
    )
