"""The aggregate queries behind a campaign's summary (``campaign show``, the progress line).

:func:`campaign_aggregates` reads one campaign's counts with a handful of grouped queries (no
contact or attempt row is loaded) in one read-only transaction, and returns them as a frozen
value; ``campaigns.stats`` turns them into the figures people read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from storage.campaigns_repo import CampaignRecord
from storage.engine import reading
from storage.errors import NotFound
from storage.models import Attempt, Campaign, Contact
from storage.states import ContactState, Outcome


@dataclass(frozen=True, kw_only=True)
class CampaignAggregates:
    """Raw counts of one campaign (keys as stored; ``None`` for no outcome yet)."""

    campaign: CampaignRecord
    by_state: dict[str, int]  # contacts per state
    by_outcome: dict[str | None, int]  # contacts per last known outcome
    call_outcomes: dict[str, int]  # placed calls per outcome
    avg_answered_duration_s: float | None
    attempts_histogram: dict[int, int]  # contacts per number of attempts (> 0)
    placed_since: int  # calls accepted at or after ``since``
    callbacks_scheduled: int = 0  # contacts waiting for a callback they asked for
    next_callback_at: datetime | None = None  # the soonest of those callbacks
    #: with none since: calls accepted in the ``span`` up to the last one (0: never placed)
    placed_before_last: int = 0


def campaign_aggregates(
    engine: Engine, campaign_id: int, *, since: datetime, span: timedelta | None = None
) -> CampaignAggregates:
    """The counts of ``campaign_id``; ``placed_since`` counts calls accepted from ``since``,
    and when there is none (and ``span`` is given), ``placed_before_last`` those accepted in
    the ``span`` up to the last call (the rate it dialled at before its windows closed).
    Raises :class:`NotFound` when there is no such campaign."""
    with reading(engine).connect() as conn:
        row = conn.execute(select(Campaign).where(Campaign.id == campaign_id)).first()
        if row is None:
            raise NotFound(f"no campaign with id {campaign_id}")
        of_campaign = Contact.campaign_id == campaign_id
        by_state = conn.execute(
            select(Contact.state, func.count()).where(of_campaign).group_by(Contact.state)
        ).all()
        by_outcome = conn.execute(
            select(Contact.outcome, func.count()).where(of_campaign).group_by(Contact.outcome)
        ).all()
        placed = (Attempt.campaign_id == campaign_id) & Attempt.accepted_at.is_not(None)
        call_outcomes = conn.execute(
            select(Attempt.outcome, func.count())
            .where(placed, Attempt.outcome.is_not(None))
            .group_by(Attempt.outcome)
        ).all()
        avg_dur = conn.execute(
            select(func.avg(Attempt.duration_s)).where(
                placed, Attempt.outcome == Outcome.ANSWERED.value
            )
        ).scalar()
        histogram = conn.execute(
            select(Contact.attempts, func.count())
            .where(of_campaign, Contact.attempts > 0)
            .group_by(Contact.attempts)
        ).all()
        recent = conn.execute(
            select(func.count()).where(placed, Attempt.accepted_at >= since)
        ).scalar_one()
        callbacks, next_callback = conn.execute(
            select(func.count(), func.min(Contact.callback_at)).where(
                of_campaign,
                Contact.state == ContactState.RETRY_WAIT.value,
                Contact.callback_at.is_not(None),
            )
        ).one()
        before_last = 0
        if not recent and span is not None:
            last = conn.execute(
                select(Attempt.accepted_at)
                .where(placed)
                .order_by(Attempt.accepted_at.desc())
                .limit(1)
            ).scalar()
            if last is not None:
                before_last = conn.execute(
                    select(func.count()).where(placed, Attempt.accepted_at >= last - span)
                ).scalar_one()
    return CampaignAggregates(
        campaign=CampaignRecord.from_row(row),
        by_state={str(s): int(n) for s, n in by_state},
        by_outcome={o: int(n) for o, n in by_outcome},
        call_outcomes={str(o): int(n) for o, n in call_outcomes},
        avg_answered_duration_s=float(avg_dur) if avg_dur is not None else None,
        attempts_histogram={int(k): int(n) for k, n in histogram},
        placed_since=int(recent),
        callbacks_scheduled=int(callbacks),
        next_callback_at=next_callback,
        placed_before_last=int(before_last),
    )
