"""What a finished call means for its contact: status classification and outcome application.

The API reports a raw call status (``completed``, ``no-answer``, ``voicemail``, ...). Here it
becomes an :class:`~storage.states.Outcome`; the raw status is always kept beside it (attempt
``call_status``), so nothing the API said is lost when a status we do not know maps to
``failed``. Statuses of calls still going on (``queued``, ``ringing``, ``in_progress``, ...)
classify as ``None``: not final yet.

:func:`apply_outcome` then finishes the attempt and moves the contact, in ONE short
transaction (:func:`apply_outcomes` does the same for every call a poll found finished, with
one commit), every update a compare-and-set on the state it expects, so that two daemons
applying the same outcome cannot apply it twice:

==========================  ==================================================================
answered                    contact ``done``
no_answer, busy, failed,    ``retry_wait`` at now + the campaign's delay for that outcome;
voicemail, no_outcome       ``exhausted`` when the attempt cap is reached; ``done`` when the
                            outcome is not re-dialled (voicemail with re-dial off)
an opt-out entity           the number joins the global do-not-call list; contact ``done``
campaign stopped/cancelled  a re-diallable outcome closes the contact ``cancelled`` instead
==========================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, Text, bindparam, func, select, update

from campaigns.policy import CallingPolicy
from storage import suppressions
from storage.models import Attempt, Campaign, Contact
from storage.states import AttemptState, CampaignStatus, ContactState, Outcome

#: Raw statuses (normalised: lower case, "-" and " " as "_") and the outcome they mean.
STATUS_OUTCOMES: Mapping[str, Outcome] = {
    **dict.fromkeys(
        ("completed", "complete", "answered", "success", "successful"), Outcome.ANSWERED
    ),
    **dict.fromkeys(
        ("no_answer", "noanswer", "not_answered", "unanswered", "missed", "no_response"),
        Outcome.NO_ANSWER,
    ),
    **dict.fromkeys(("busy", "user_busy", "line_busy"), Outcome.BUSY),
    **dict.fromkeys(
        ("failed", "failure", "error", "cancelled", "canceled", "rejected", "declined"),
        Outcome.FAILED,
    ),
    **dict.fromkeys(
        ("voicemail", "voice_mail", "machine", "answering_machine", "machine_detected"),
        Outcome.VOICEMAIL,
    ),
}

#: Raw statuses of calls that have not ended yet.
NON_FINAL_STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "initiating",
        "created",
        "scheduled",
        "pending",
        "dialing",
        "calling",
        "connecting",
        "ringing",
        "in_progress",
        "inprogress",
        "ongoing",
        "active",
        "connected",
        "started",
        "live",
        "processing",
    }
)

#: Entity values that mean "yes" for an opt-out entity (strings compared case-insensitively).
_TRUTHY_TEXT = frozenset({"true", "yes", "y", "1", "on"})


def normalise_status(status: str | None) -> str | None:
    """``"No-Answer "`` -> ``"no_answer"``; None or blank -> None."""
    if status is None:
        return None
    text = status.strip().lower().replace("-", "_").replace(" ", "_")
    return text or None


def classify(status: str | None) -> Outcome | None:
    """The outcome a raw call status means, or None while the call has not ended.

    A status we do not know and that does not look like a call still in progress is taken as
    final and ``failed`` (the raw status is stored beside it): re-dialling a call we cannot
    read is safer than waiting for it forever.
    """
    key = normalise_status(status)
    if key is None or key in NON_FINAL_STATUSES:
        return None
    return STATUS_OUTCOMES.get(key, Outcome.FAILED)


def is_truthy(value: Any) -> bool:
    """Does an extracted entity value say yes? (``True``, ``"yes"``, ``"true"``, ``1`` ...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in _TRUTHY_TEXT
    return False


def opted_out(entity: Mapping[str, Any] | None, keys: Iterable[str]) -> str | None:
    """The first opt-out entity key that is truthy in ``entity`` (matched case-insensitively),
    or None."""
    if not entity:
        return None
    lowered = {str(k).strip().lower(): v for k, v in entity.items()}
    for key in keys:
        if is_truthy(lowered.get(str(key).strip().lower())):
            return str(key)
    return None


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


@dataclass(frozen=True, kw_only=True)
class Applied:
    """What :func:`apply_outcome` did."""

    attempt_id: int
    contact_id: int
    outcome: Outcome
    contact_state: str | None  # None when the contact was no longer awaiting this outcome
    next_attempt_at: datetime | None
    opted_out: bool


class PolicyCache:
    """Calling policies by campaign, rebuilt when the campaign row changes (``updated_at``)."""

    def __init__(self) -> None:
        self._policies: dict[int, tuple[Any, CallingPolicy]] = {}

    def get(self, campaign: Campaign) -> CallingPolicy:
        cached = self._policies.get(campaign.id)
        if cached is not None and cached[0] == campaign.updated_at:
            return cached[1]
        policy = CallingPolicy.from_campaign(campaign)
        self._policies[campaign.id] = (campaign.updated_at, policy)
        return policy


def load_campaign(conn: Connection, campaign_id: int) -> Campaign | None:
    """The campaign row as a transient ``Campaign`` (a value holder, never flushed)."""
    row = conn.execute(
        select(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id)
    ).first()
    return Campaign(**dict(row._mapping)) if row is not None else None


def _next_contact_state(
    outcome: Outcome,
    attempts: int,
    policy: CallingPolicy,
    campaign_status: str,
    now: datetime,
) -> tuple[ContactState, datetime | None, str | None]:
    """The contact's next state, its next attempt time and a reason, for ``outcome``."""
    if outcome is Outcome.ANSWERED:
        return ContactState.DONE, None, None
    delay = policy.redial_delay(outcome.value, attempts)
    if delay is None:
        if attempts >= policy.max_attempts:
            return ContactState.EXHAUSTED, None, f"attempt cap reached ({attempts} calls)"
        return ContactState.DONE, None, f"{outcome.value} is not re-dialled"
    if campaign_status in (CampaignStatus.STOPPED, CampaignStatus.CANCELLED):
        return ContactState.CANCELLED, None, f"campaign {campaign_status} before a re-dial"
    return ContactState.RETRY_WAIT, now + delay, None


def apply_outcome(
    engine: Engine,
    attempt_id: int,
    result: CallResult,
    *,
    now: datetime,
    expected_state: AttemptState = AttemptState.ACCEPTED,
    policies: PolicyCache | None = None,
) -> Applied | None:
    """Finish attempt ``attempt_id`` with ``result`` and move its contact, in one transaction.

    Returns None when the attempt was not in ``expected_state`` any more (another daemon, or
    an earlier poll, applied an outcome first): nothing is changed then.
    """
    with engine.begin() as conn:
        return _apply(conn, attempt_id, result, now, expected_state, policies or PolicyCache(), {})


def apply_outcomes(
    engine: Engine,
    items: Sequence[tuple[int, CallResult]],
    *,
    now: datetime,
    policies: PolicyCache | None = None,
) -> list[Applied | None]:
    """:func:`apply_outcome` for several accepted attempts in one short transaction (one
    commit for all the calls a poll found finished); each is still a compare-and-set.

    Rows are updated in attempt-id order whatever the order of ``items``, so that two daemons
    applying overlapping batches on PostgreSQL take their row locks in the same order and
    cannot deadlock. Results come back in the order of ``items``.
    """
    policies = policies or PolicyCache()
    campaigns: dict[int, Campaign | None] = {}
    order = sorted(range(len(items)), key=lambda i: items[i][0])
    results: list[Applied | None] = [None] * len(items)
    with engine.begin() as conn:
        for i in order:
            aid, res = items[i]
            results[i] = _apply(conn, aid, res, now, AttemptState.ACCEPTED, policies, campaigns)
    return results


_ATTEMPTS = cast(Table, Attempt.__table__)
_CONTACTS = cast(Table, Contact.__table__)

# Built once: the poller applies thousands of outcomes and statement construction would cost
# more than the database work.
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
_CONTACT_ATTEMPTS = select(_CONTACTS.c.attempts).where(_CONTACTS.c.id == bindparam("cid"))
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
    )
)


def _apply(
    conn: Connection,
    attempt_id: int,
    result: CallResult,
    now: datetime,
    expected_state: AttemptState,
    policies: PolicyCache,
    campaigns: dict[int, Campaign | None],
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
    if campaign_id not in campaigns:
        campaigns[campaign_id] = load_campaign(conn, campaign_id)
    campaign = campaigns[campaign_id]
    attempts = conn.execute(_CONTACT_ATTEMPTS, {"cid": contact_id}).scalar_one_or_none()
    if campaign is None or attempts is None:  # deleted meanwhile: the attempt is enough
        return Applied(
            attempt_id=attempt_id,
            contact_id=contact_id,
            outcome=result.outcome,
            contact_state=None,
            next_attempt_at=None,
            opted_out=False,
        )
    opt_key = opted_out(result.entity, campaign.opt_out_entities or ())
    reason: str | None
    if opt_key is not None:
        suppressions.add(
            conn,
            [phone],
            campaign_id=None,
            source=f"opt_out:{call_id or attempt_id}",
            reason=f"asked not to be called again ({opt_key}) on a call of campaign {campaign_id}",
        )
        state, next_at, reason = ContactState.DONE, None, f"opted out ({opt_key})"
    else:
        try:
            policy = policies.get(campaign)
        except ValueError as exc:  # a campaign setting we cannot read: do not re-dial
            state, next_at = ContactState.EXHAUSTED, None
            reason = f"not re-dialled: {exc}"
        else:
            state, next_at, reason = _next_contact_state(
                result.outcome, attempts, policy, campaign.status, now
            )
    moved = conn.execute(
        _MOVE_CONTACT,
        {
            "cid": contact_id,
            "new_state": state.value,
            "outcome": result.outcome.value,
            "next_at": next_at,
            "reason": reason,
            "now": now,
        },
    ).rowcount
    return Applied(
        attempt_id=attempt_id,
        contact_id=contact_id,
        outcome=result.outcome,
        contact_state=state.value if moved else None,
        next_attempt_at=next_at if moved else None,
        opted_out=opt_key is not None,
    )
