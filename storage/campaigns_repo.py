"""Campaigns as the rest of the program sees them: read them, count them, move them through
their lifecycle.

The lifecycle (DESIGN.md)::

    draft --start--> running --pause--> paused --resume--> running
    running --complete--> completed          (the daemon: nothing left to do)
    completed --import, requeue--> running   (storage.manage: people to call again)
    draft | running | paused --stop--> stopped      (calls in flight finish)
    draft | running | paused --cancel--> cancelled  (nothing more is dialled)

Every step is one short transaction: the campaign row is read under a lock (``FOR UPDATE`` on
PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite), checked against the allowed transitions, and
updated with a compare-and-set on the status it had. ``stop`` and ``cancel`` also mark the
contacts still waiting (``pending``, ``retry_wait``) ``cancelled`` with a reason, in the same
transaction, and leave in-flight ones (``dialing``, ``awaiting_outcome``) to finish: their
outcomes are still collected. A claim racing with a stop either committed first (its contacts
are then ``dialing`` and not touched) or sees the campaign no longer running. ``resume`` only
flips the status (and starts the circuit breaker's window afresh, clearing the errors it kept:
:mod:`storage.breaker`): it never resets a contact, so nobody is re-dialled because of it. For a
campaign with a webhook, the events a step causes (``campaign.paused``, ``campaign.completed``,
``contact.finished`` of each contact cancelled) are written in the step's own transaction
(:mod:`storage.outbox`).

Reads return :class:`CampaignRecord`, a frozen value object, never an ORM row, so nothing lazy
crosses into async code. Unknown ids raise :class:`~storage.errors.NotFound`, forbidden steps
:class:`~storage.errors.InvalidTransition`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from storage import outbox
from storage.errors import InvalidTransition, NotFound
from storage.models import Campaign, Contact, utcnow
from storage.states import (
    CAMPAIGN_FINAL,
    CONTACT_DIALABLE,
    CONTACT_TERMINAL,
    CampaignStatus,
    ContactState,
)

S = CampaignStatus


@dataclass(frozen=True, kw_only=True)
class CampaignRecord:
    """A campaign row, detached: the same attribute names as ``storage.models.Campaign``."""

    id: int
    name: str
    provider: str
    agent_id: str
    status: str
    status_reason: str | None
    created_at: datetime
    updated_at: datetime
    window_start: str
    window_end: str
    days: str
    timezone: str | None
    region: str | None
    start_at: datetime | None
    end_at: datetime | None
    max_attempts: int
    retry_delay_s: int
    retry_delays: dict[str, int]
    redial_voicemail: bool
    daily_cap_per_number: int | None
    outbound_number: str | None
    voice: str | None
    call_options: dict[str, Any]
    opt_out_entities: list[str]
    columns: list[list[str]]
    phone_column: str | None
    name_column: str | None
    source_file: str | None
    import_stats: dict[str, int]
    webhook_url: str | None = None
    webhook_secret_fp: str | None = None  # a fingerprint only: the secret is never stored
    retry_schedule: list[int] | None = None  # seconds; see storage.models.Campaign
    skip_dates: list[str] | None = None  # ISO dates
    holidays: str | None = None  # "IN,US" or "auto"
    max_callbacks: int = 2
    callback_keys: list[str] | None = None  # None: campaigns.callbacks.DEFAULT_KEYS
    archived_at: datetime | None = None  # `campaign archive`: hidden from `campaign list`
    # the circuit breaker (storage.breaker): on, more than 50 % of the last 20 calls failed
    breaker_enabled: bool = True
    breaker_threshold: int = 50
    breaker_window: int = 20
    breaker_since: datetime | None = None  # its window starts here (the last resume)
    breaker_errors: list[dict[str, Any]] | None = None  # the last errors when it tripped

    @classmethod
    def from_row(cls, row: Any) -> CampaignRecord:
        """Build from a row of ``select(Campaign)`` run on a Connection (or any mapping)."""
        m = row._mapping if hasattr(row, "_mapping") else row
        return cls(**{f.name: m[f.name] for f in fields(cls)})

    @property
    def is_final(self) -> bool:
        """True when nothing more will ever be dialled for this campaign."""
        return self.status in CAMPAIGN_FINAL


@dataclass(frozen=True, kw_only=True)
class TransitionResult:
    """What a lifecycle step did: the campaign after it, the status before it, and how many
    waiting contacts it cancelled (stop/cancel only)."""

    campaign: CampaignRecord
    previous_status: str
    contacts_cancelled: int = 0


@dataclass(frozen=True)
class _Step:
    target: CampaignStatus
    sources: frozenset[CampaignStatus]
    past: str  # "paused", for messages and contact reasons


_STEPS = {
    "start": _Step(S.RUNNING, frozenset({S.DRAFT}), "started"),
    "pause": _Step(S.PAUSED, frozenset({S.RUNNING}), "paused"),
    "resume": _Step(S.RUNNING, frozenset({S.PAUSED}), "resumed"),
    "complete": _Step(S.COMPLETED, frozenset({S.RUNNING}), "completed"),
    "stop": _Step(S.STOPPED, frozenset({S.DRAFT, S.RUNNING, S.PAUSED}), "stopped"),
    "cancel": _Step(S.CANCELLED, frozenset({S.DRAFT, S.RUNNING, S.PAUSED}), "cancelled"),
}
_HINTS: dict[tuple[str, str], str] = {
    ("start", S.PAUSED): "resume it instead",
    ("resume", S.DRAFT): "start it instead",
    ("pause", S.DRAFT): "start it first",
}


def get_campaign(engine: Engine, campaign_id: int) -> CampaignRecord:
    """The campaign with this id. Raises :class:`NotFound`."""
    with engine.connect() as conn:
        return _load(conn, campaign_id)


def list_campaigns(
    engine: Engine, *, statuses: Iterable[str] | None = None, archived: bool = True
) -> list[CampaignRecord]:
    """All campaigns (or those in ``statuses``), oldest first; without the archived ones when
    ``archived`` is False."""
    stmt = select(Campaign).order_by(Campaign.id)
    if not archived:
        stmt = stmt.where(Campaign.archived_at.is_(None))
    if statuses is not None:
        stmt = stmt.where(Campaign.status.in_([str(s) for s in statuses]))
    with engine.connect() as conn:
        return [CampaignRecord.from_row(r) for r in conn.execute(stmt)]


def counts_by_state(engine: Engine, campaign_id: int) -> dict[str, int]:
    """Contacts of the campaign per state, every state present (0 when none), in the order
    of :class:`~storage.states.ContactState`. Raises :class:`NotFound`."""
    with engine.connect() as conn:
        _load(conn, campaign_id)
        rows = conn.execute(
            select(Contact.state, func.count())
            .where(Contact.campaign_id == campaign_id)
            .group_by(Contact.state)
        ).all()
    counts = {s.value: 0 for s in ContactState}
    counts.update({state: int(n) for state, n in rows})
    return counts


def counts_by_campaign(engine: Engine) -> dict[int, dict[str, int]]:
    """``counts_by_state`` for every campaign at once (one grouped query); campaigns without
    contacts map to all zeros."""
    with engine.connect() as conn:
        ids = conn.execute(select(Campaign.id)).scalars().all()
        rows = conn.execute(
            select(Contact.campaign_id, Contact.state, func.count()).group_by(
                Contact.campaign_id, Contact.state
            )
        ).all()
    out = {int(i): {s.value: 0 for s in ContactState} for i in ids}
    for cid, state, n in rows:
        out.setdefault(int(cid), {s.value: 0 for s in ContactState})[state] = int(n)
    return out


def start_campaign(engine: Engine, campaign_id: int) -> TransitionResult:
    """draft -> running: the daemon starts dialling it at its next tick."""
    return _transition(engine, campaign_id, "start")


def pause_campaign(
    engine: Engine, campaign_id: int, *, reason: str | None = None, now: datetime | None = None
) -> TransitionResult:
    """running -> paused: no new calls; calls in flight still report back. ``reason`` is kept
    in ``status_reason`` (e.g. why the daemon paused it)."""
    return _transition(engine, campaign_id, "pause", reason=reason, now=now)


def resume_campaign(
    engine: Engine, campaign_id: int, *, now: datetime | None = None
) -> TransitionResult:
    """paused -> running. Touches no contact: nobody is re-dialled because of a resume. The
    circuit breaker's window starts again at ``now``."""
    return _transition(engine, campaign_id, "resume", now=now)


def complete_campaign(
    engine: Engine, campaign_id: int, *, now: datetime | None = None
) -> TransitionResult:
    """running -> completed, only when every contact is in a terminal state (the daemon's
    housekeeping, at its clock's ``now``)."""
    return _transition(engine, campaign_id, "complete", now=now)


def stop_campaign(
    engine: Engine, campaign_id: int, *, reason: str | None = None
) -> TransitionResult:
    """-> stopped: waiting contacts become ``cancelled``; calls in flight finish."""
    return _transition(engine, campaign_id, "stop", reason=reason)


def cancel_campaign(
    engine: Engine, campaign_id: int, *, reason: str | None = None
) -> TransitionResult:
    """-> cancelled: nothing more is dialled; waiting contacts become ``cancelled``."""
    return _transition(engine, campaign_id, "cancel", reason=reason)


def locked(conn: Connection, campaign_id: int) -> CampaignRecord:
    """The campaign, its row locked until the caller's transaction ends (``FOR UPDATE`` on
    PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already holds the write lock). Raises
    :class:`NotFound`."""
    return _load(conn, campaign_id, lock=True)


def _load(conn: Connection, campaign_id: int, *, lock: bool = False) -> CampaignRecord:
    stmt = select(Campaign).where(Campaign.id == campaign_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFound(f"no campaign with id {campaign_id}")
    return CampaignRecord.from_row(row)


def _transition(
    engine: Engine,
    campaign_id: int,
    action: str,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> TransitionResult:
    step = _STEPS[action]
    now = now or utcnow()
    with engine.begin() as conn:
        before = _load(conn, campaign_id, lock=True)
        if before.status not in step.sources:
            if before.status == step.target:
                why = f"it is already {before.status}"
            else:
                why = f"it is {before.status}; {_hint(action, step, before.status)}"
            raise InvalidTransition(
                f"cannot {action} campaign {campaign_id} ({before.name!r}): {why}",
                current=before.status,
                requested=step.target.value,
            )
        if action == "complete":
            _check_all_terminal(conn, before)
        values: dict[str, Any] = {"status": step.target.value, "status_reason": reason}
        if action == "resume":  # the circuit breaker starts a fresh window (storage.breaker)
            values |= {"breaker_since": now, "breaker_errors": None}
        conn.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == before.status)
            .values(**values, updated_at=now)
        )
        cancelled = 0
        if action in ("stop", "cancel"):
            why = f"campaign {step.past}" + (f": {reason}" if reason else "")
            cancelled = outbox.update_contacts(
                conn,
                update(Contact)
                .where(
                    Contact.campaign_id == campaign_id,
                    Contact.state.in_([s.value for s in CONTACT_DIALABLE]),
                )
                .values(state=ContactState.CANCELLED.value, reason=why, updated_at=now),
                campaign_id,
                now=now,
            )
        _campaign_event(conn, before, action, reason, now)
        after = _load(conn, campaign_id)
    return TransitionResult(
        campaign=after, previous_status=before.status, contacts_cancelled=cancelled
    )


def _campaign_event(
    conn: Connection, before: CampaignRecord, action: str, reason: str | None, now: datetime
) -> None:
    """``campaign.completed`` / ``campaign.paused`` for the user's CRM, in the transition's
    own transaction (only for a campaign with a webhook)."""
    if not before.webhook_url or action not in ("complete", "pause"):
        return
    data: dict[str, Any] = {"name": before.name, "previous_status": before.status}
    if action == "pause":
        outbox.campaign_event(
            conn, before.id, outbox.CAMPAIGN_PAUSED, data | {"reason": reason}, now=now
        )
        return
    counts = conn.execute(
        select(Contact.state, func.count())
        .where(Contact.campaign_id == before.id)
        .group_by(Contact.state)
    ).all()
    data["counts"] = {str(state): int(n) for state, n in counts}
    outbox.campaign_event(conn, before.id, outbox.CAMPAIGN_COMPLETED, data, now=now)


def _hint(action: str, step: _Step, status: str) -> str:
    hint = _HINTS.get((action, status))
    if hint:
        return hint
    if status in CAMPAIGN_FINAL:
        return f"a {status} campaign is final"
    sources = " or ".join(s.value for s in S if s in step.sources)
    return f"only a {sources} campaign can be {step.past}"


def _check_all_terminal(conn: Connection, campaign: CampaignRecord) -> None:
    open_ = conn.execute(
        select(func.count())
        .select_from(Contact)
        .where(
            Contact.campaign_id == campaign.id,
            Contact.state.not_in([s.value for s in CONTACT_TERMINAL]),
        )
    ).scalar_one()
    if open_:
        raise InvalidTransition(
            f"cannot complete campaign {campaign.id} ({campaign.name!r}): "
            f"{open_} contacts are still waiting or in flight",
            current=campaign.status,
            requested=S.COMPLETED.value,
        )
