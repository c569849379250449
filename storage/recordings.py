"""Which calls of a campaign have a recording to download: the answered ones.

``campaign recordings`` (``campaigns.services.recordings``) asks for them in attempt order, so
that a run that stopped midway and a run after it walk the calls the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from storage.engine import Engine
from storage.models import Attempt
from storage.states import Outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class AnsweredCall:
    """One answered call: its attempt, and the provider's id for it."""

    attempt_id: int
    call_id: str
    provider: str


def answered_calls(engine: Engine, campaign_id: int) -> list[AnsweredCall]:
    """Every attempt of the campaign with a call id whose outcome is ``answered``, oldest
    first."""
    stmt = (
        select(Attempt.id, Attempt.call_id, Attempt.provider)
        .where(
            Attempt.campaign_id == campaign_id,
            Attempt.call_id.is_not(None),
            Attempt.outcome == Outcome.ANSWERED.value,
        )
        .order_by(Attempt.id)
    )
    with engine.connect() as conn:
        return [
            AnsweredCall(attempt_id=aid, call_id=str(call_id), provider=provider)
            for aid, call_id, provider in conn.execute(stmt)
        ]
