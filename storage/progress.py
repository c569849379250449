"""The daemon's periodic bookkeeping in the database: ended campaigns, completion, progress.

Every query here is an index seek (``EXISTS``-style, ``LIMIT 1``) rather than a count over
the contacts, so that it stays cheap every second with a million contacts in a campaign.
Counting per state is done only for the live progress display, and only when one is shown.
Campaigns are completed through :func:`storage.campaigns_repo.complete_campaign`, the same
checked transition as every other (it sets ``updated_at`` and refuses a campaign that is not
running or still has open contacts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, update

from storage import campaigns_repo, outbox
from storage.claims import live_attempts
from storage.engine import reading
from storage.errors import InvalidTransition, NotFound
from storage.models import Campaign, Contact
from storage.states import CampaignStatus, ContactState

#: Contact states that still need the daemon (to dial, to settle, or to read an outcome).
OPEN_STATES = (
    ContactState.PENDING,
    ContactState.RETRY_WAIT,
    ContactState.DIALING,
    ContactState.AWAITING_OUTCOME,
)
WAITING_STATES = (ContactState.PENDING, ContactState.RETRY_WAIT)


@dataclass(frozen=True, kw_only=True)
class Progress:
    """Is there work left for a daemon, how many calls are live, and (for the display only)
    the contacts of each running campaign per state."""

    work_left: bool
    live_attempts: int = 0
    counts: Mapping[int, Mapping[str, int]] = field(default_factory=dict)


def _has_contacts(conn: Connection, campaign_id: int, states: tuple[ContactState, ...]) -> bool:
    for state in states:
        found = conn.execute(
            select(Contact.id)
            .where(Contact.campaign_id == campaign_id, Contact.state == state.value)
            .limit(1)
        ).first()
        if found is not None:
            return True
    return False


def close_ended_campaigns(engine: Engine, now: datetime) -> list[int]:
    """Expire waiting contacts of campaigns past their end, and complete campaigns that have
    nothing open any more (in-flight calls of an ended campaign still finish first).
    Returns the ids of the campaigns completed."""
    finished: list[int] = []
    with engine.begin() as conn:
        rows = conn.execute(
            select(Campaign.id, Campaign.end_at).where(
                Campaign.status == CampaignStatus.RUNNING.value
            )
        ).all()
        for cid, end_at in rows:
            if end_at is not None and end_at <= now:
                outbox.update_contacts(  # with their contact.finished events
                    conn,
                    update(Contact)
                    .where(
                        Contact.campaign_id == cid,
                        Contact.state.in_([s.value for s in WAITING_STATES]),
                    )
                    .values(
                        state=ContactState.EXPIRED.value,
                        reason="the campaign ended before this contact could be reached",
                        updated_at=now,
                    ),
                    cid,
                    now=now,
                )
            if not _has_contacts(conn, cid, OPEN_STATES):
                finished.append(cid)
    completed = []
    for cid in finished:
        try:
            campaigns_repo.complete_campaign(engine, cid, now=now)
        except (InvalidTransition, NotFound):  # paused, completed elsewhere, or new contacts
            continue
        completed.append(cid)
    return completed


def progress(engine: Engine, *, with_counts: bool = False) -> Progress:
    """Is there work left for a daemon? (and, for the display, counts per state)."""
    with reading(engine).connect() as conn:
        running = conn.execute(
            select(Campaign.id).where(Campaign.status == CampaignStatus.RUNNING.value)
        ).scalars()
        live = live_attempts(conn)
        work = live > 0 or any(_has_contacts(conn, cid, OPEN_STATES) for cid in running)
        counts: dict[int, dict[str, int]] = {}
        if with_counts:
            for cid, state, n in conn.execute(
                select(Contact.campaign_id, Contact.state, func.count())
                .join(Campaign, Campaign.id == Contact.campaign_id)
                .where(Campaign.status == CampaignStatus.RUNNING.value)
                .group_by(Contact.campaign_id, Contact.state)
            ):
                counts.setdefault(cid, {})[state] = int(n)
        return Progress(work_left=work, live_attempts=live, counts=counts)
