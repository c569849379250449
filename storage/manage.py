"""Changes to a campaign after its creation: its settings, fresh attempts for closed contacts,
archiving and deletion.

Each is one short transaction on the campaign row, read under a lock (``FOR UPDATE`` on
PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite), like the lifecycle steps of
:mod:`storage.campaigns_repo`:

* :func:`update_settings` writes checked values (the caller checks them) and bumps
  ``updated_at``: a daemon's policy cache is keyed by it, so the next tick uses the new
  policy. Contacts never dialled yet but deferred to a later instant (a window opening, the
  start) are made due now, so the next tick decides them again under the new rules; contacts
  already called keep their time (a re-dial delay, a callback, a back-off are not shortened). Attempts already made
  stand: the cap is read against each contact's count.
* :func:`requeue` moves closed contacts (exhausted, expired, cancelled, done) back to
  ``pending`` with a fresh count (``attempts = 0``); their attempts stay in ``attempts``, so
  ``report --attempts`` still lists every call. A completed campaign runs again
  (:func:`reopen_completed`, also used by an import).
* :func:`archive` hides a final campaign from ``campaign list``; :func:`delete` removes a
  campaign and every row of it, refused while one of its calls is live.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, func, or_, select, update
from sqlalchemy import delete as sql_delete

from storage.campaigns_repo import CampaignRecord, get_campaign, locked
from storage.errors import InvalidTransition
from storage.models import Attempt, Campaign, Contact, OutboxEvent, Suppression, utcnow
from storage.states import ATTEMPT_LIVE, CAMPAIGN_FINAL, CampaignStatus, ContactState

S = CampaignStatus
#: Contact states that ``requeue`` may give fresh attempts (never invalid or suppressed).
REQUEUEABLE = (
    ContactState.EXHAUSTED.value,
    ContactState.EXPIRED.value,
    ContactState.CANCELLED.value,
    ContactState.DONE.value,
)
#: The columns ``update_settings`` may write, in the order ``campaign edit`` shows them.
EDITABLE = (
    "window_start",
    "window_end",
    "days",
    "start_at",
    "end_at",
    "max_attempts",
    "retry_delay_s",
    "daily_cap_per_number",
    "outbound_number",
    "timezone",
    "retry_delays",
    "retry_schedule",
    "redial_voicemail",
    "skip_dates",
    "holidays",
    "max_callbacks",
    "callback_keys",
    "voice",
    "webhook_url",
    "webhook_secret_fp",  # a fingerprint only: the secret is never stored
    "breaker_enabled",
    "breaker_threshold",
    "breaker_window",
)
_LIVE_CONTACT = (ContactState.DIALING.value, ContactState.AWAITING_OUTCOME.value)


@dataclass(frozen=True, kw_only=True)
class Edited:
    """What :func:`update_settings` did: the campaign before and after, and how many deferred
    contacts it made due again."""

    before: CampaignRecord
    after: CampaignRecord
    contacts_redecided: int


@dataclass(frozen=True, kw_only=True)
class Requeued:
    """What :func:`requeue` did: the campaign after it, its status before, contacts moved."""

    campaign: CampaignRecord
    previous_status: str
    requeued: int


@dataclass(frozen=True, kw_only=True)
class Deleted:
    """The rows :func:`delete` removed."""

    campaign: CampaignRecord
    contacts: int
    attempts: int
    events: int


def update_settings(
    engine: Engine, campaign_id: int, values: Mapping[str, Any], *, now: datetime | None = None
) -> Edited:
    """Write ``values`` (columns of :data:`EDITABLE`, already checked) to the campaign.
    Raises :class:`~storage.errors.NotFound`."""
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    now = now or utcnow()
    with engine.begin() as conn:
        before = locked(conn, campaign_id)
        conn.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(**values, updated_at=now)
        )
        redecided = conn.execute(
            update(Contact)
            .where(
                Contact.campaign_id == campaign_id,
                Contact.state == ContactState.PENDING.value,
                Contact.next_attempt_at > now,
                Contact.last_attempt_at.is_(None),  # never dialled: no re-dial time to keep
            )
            .values(next_attempt_at=now, updated_at=now)
        ).rowcount
        after = locked(conn, campaign_id)
    return Edited(before=before, after=after, contacts_redecided=redecided or 0)


def reopen_completed(conn: Connection, campaign_id: int, *, now: datetime) -> bool:
    """completed -> running, inside the caller's transaction: it has contacts to call again
    (an import, a requeue). An archived campaign comes back into ``campaign list`` (it would
    otherwise dial unseen). False when the campaign was not completed."""
    moved = conn.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == S.COMPLETED.value)
        .values(status=S.RUNNING.value, status_reason=None, archived_at=None, updated_at=now)
    ).rowcount
    return bool(moved)


def requeue(
    engine: Engine,
    campaign_id: int,
    *,
    states: Collection[str],
    outcomes: Collection[str] = (),
    no_outcome: bool = False,
    now: datetime | None = None,
) -> Requeued:
    """Give fresh attempts to the contacts in ``states`` (of :data:`REQUEUEABLE`), plus, with
    ``no_outcome``, every closed contact whose last call never reported an outcome; only those
    whose last outcome is in ``outcomes`` when given. Raises :class:`NotFound`, and
    :class:`InvalidTransition` for a stopped or cancelled campaign (closed on purpose)."""
    bad = set(states) - set(REQUEUEABLE)
    if bad:
        raise ValueError(f"not requeueable: {', '.join(sorted(bad))}")
    now = now or utcnow()
    which: list[ColumnElement[bool]] = [Contact.state.in_(list(states))]
    if no_outcome:
        which.append(Contact.state.in_(REQUEUEABLE) & (Contact.outcome == "no_outcome"))
    with engine.begin() as conn:
        before = locked(conn, campaign_id)
        if before.status in (S.STOPPED, S.CANCELLED):
            raise InvalidTransition(
                f"cannot requeue contacts of campaign {campaign_id} ({before.name!r}): it is "
                f"{before.status}, which is final; create a new campaign to call them again",
                current=before.status,
                requested=S.RUNNING.value,
            )
        stmt = update(Contact).where(Contact.campaign_id == campaign_id, or_(*which))
        if outcomes:
            stmt = stmt.where(Contact.outcome.in_(list(outcomes)))
        moved = conn.execute(
            stmt.values(
                state=ContactState.PENDING.value,
                attempts=0,
                next_attempt_at=None,
                reason=f"requeued at {now:%Y-%m-%d %H:%M} UTC",
                claimed_by=None,
                claim_expires_at=None,
                updated_at=now,
            )
        ).rowcount
        if moved:
            reopen_completed(conn, campaign_id, now=now)
        after = locked(conn, campaign_id)
    return Requeued(campaign=after, previous_status=before.status, requeued=moved or 0)


def archive(engine: Engine, campaign_id: int, *, now: datetime | None = None) -> CampaignRecord:
    """Hide a final campaign from ``campaign list``. Raises :class:`InvalidTransition` for a
    campaign that may still dial (it would vanish while calling)."""
    now = now or utcnow()
    with engine.begin() as conn:
        before = locked(conn, campaign_id)
        if before.status not in CAMPAIGN_FINAL:
            raise InvalidTransition(
                f"cannot archive campaign {campaign_id} ({before.name!r}): it is "
                f"{before.status} and may still dial; stop it first "
                f"(vaani-campaigns campaign stop {campaign_id})",
                current=before.status,
                requested="archived",
            )
        if before.archived_at is None:
            conn.execute(update(Campaign).where(Campaign.id == campaign_id).values(archived_at=now))
        return locked(conn, campaign_id)


def count_rows(engine: Engine, campaign_id: int) -> tuple[CampaignRecord, int, int]:
    """The campaign, its contacts and its attempts (what a delete would remove)."""
    campaign = get_campaign(engine, campaign_id)
    with engine.connect() as conn:
        return campaign, _count(conn, Contact, campaign_id), _count(conn, Attempt, campaign_id)


def delete(engine: Engine, campaign_id: int) -> Deleted:
    """Delete the campaign with its contacts, attempts, events and own do-not-call list.
    Raises :class:`InvalidTransition` while one of its calls is live (being placed or
    awaiting its outcome): its result would have nowhere to go."""
    with engine.begin() as conn:
        campaign = locked(conn, campaign_id)
        live = (
            conn.execute(
                select(func.count())
                .select_from(Attempt)
                .where(Attempt.campaign_id == campaign_id, Attempt.state.in_(list(ATTEMPT_LIVE)))
            ).scalar_one()
            + conn.execute(
                select(func.count())
                .select_from(Contact)
                .where(Contact.campaign_id == campaign_id, Contact.state.in_(_LIVE_CONTACT))
            ).scalar_one()
        )
        if live:
            raise InvalidTransition(
                f"cannot delete campaign {campaign_id} ({campaign.name!r}): calls are live; "
                f"stop it (vaani-campaigns campaign stop {campaign_id}) and wait until "
                "`campaign show` has none in flight",
                current=campaign.status,
                requested="deleted",
            )
        events = conn.execute(
            sql_delete(OutboxEvent).where(OutboxEvent.campaign_id == campaign_id)
        ).rowcount
        attempts = conn.execute(
            sql_delete(Attempt).where(Attempt.campaign_id == campaign_id)
        ).rowcount
        conn.execute(sql_delete(Suppression).where(Suppression.campaign_id == campaign_id))
        contacts = conn.execute(
            sql_delete(Contact).where(Contact.campaign_id == campaign_id)
        ).rowcount
        conn.execute(sql_delete(Campaign).where(Campaign.id == campaign_id))
    return Deleted(
        campaign=campaign, contacts=contacts or 0, attempts=attempts or 0, events=events or 0
    )


def _count(conn: Connection, model: type[Contact] | type[Attempt], campaign_id: int) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(model).where(model.campaign_id == campaign_id)
        ).scalar_one()
    )
