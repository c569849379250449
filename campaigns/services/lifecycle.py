"""Use cases: list campaigns with their progress, and move one through its lifecycle.

The steps themselves (which status may go where, what happens to waiting contacts) are in
:mod:`storage.campaigns_repo`; this module gives them the words a person needs: an unknown id
raises :class:`~storage.errors.NotFound` with a hint where to look, and a step the status does
not allow raises :class:`~storage.errors.InvalidTransition` saying why and what to do instead.
A running daemon notices a change at its next tick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from storage import campaigns_repo as repo
from storage.campaigns_repo import CampaignRecord, TransitionResult
from storage.engine import Engine
from storage.errors import NotFound

LIST_HINT = "see: vaani-campaigns campaign list"
WAITING = ("pending", "retry_wait")
IN_FLIGHT = ("dialing", "awaiting_outcome")
#: Rows the import set aside: never called, whatever happens (they are not "done").
NOT_CALLED = ("invalid", "suppressed")
#: Contacts that ended without a final outcome: out of attempts, past the end, or cancelled.
CLOSED = ("exhausted", "expired", "cancelled")

Action = Literal["start", "pause", "resume", "stop", "cancel"]
ACTIONS: tuple[Action, ...] = ("start", "pause", "resume", "stop", "cancel")


@dataclass(frozen=True, kw_only=True)
class Progress:
    """Contacts of a campaign per state, and the sums people read in ``campaign list`` and
    ``campaign show`` (one definition, so the two never disagree): waiting, in flight, done,
    not called, closed; together they are the total."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def waiting(self) -> int:
        return sum(self.counts.get(s, 0) for s in WAITING)

    @property
    def in_flight(self) -> int:
        return sum(self.counts.get(s, 0) for s in IN_FLIGHT)

    @property
    def done(self) -> int:
        return self.counts.get("done", 0)

    @property
    def not_called(self) -> int:
        return sum(self.counts.get(s, 0) for s in NOT_CALLED)

    @property
    def closed(self) -> int:
        return sum(self.counts.get(s, 0) for s in CLOSED)

    def summary(self) -> dict[str, int]:
        """``total, waiting, in_flight, done`` as a dict (the ``--json`` fields)."""
        return {
            "total": self.total,
            "waiting": self.waiting,
            "in_flight": self.in_flight,
            "done": self.done,
        }


@dataclass(frozen=True, kw_only=True)
class CampaignProgress:
    """A campaign and its progress."""

    campaign: CampaignRecord
    progress: Progress


@dataclass(frozen=True, kw_only=True)
class Transitioned:
    """What a lifecycle step did, and the campaign's contacts per state after it."""

    action: Action
    result: TransitionResult
    progress: Progress


def list_campaigns(
    engine: Engine, *, statuses: Iterable[str] | None = None, archived: bool = False
) -> list[CampaignProgress]:
    """Every campaign (or those in ``statuses``), oldest first, with its progress; archived
    ones (``campaign archive``) only with ``archived``."""
    campaigns = repo.list_campaigns(engine, statuses=statuses, archived=archived)
    counts = repo.counts_by_campaign(engine)
    return [CampaignProgress(campaign=c, progress=Progress(counts=counts[c.id])) for c in campaigns]


_STEPS: dict[Action, Callable[..., TransitionResult]] = {
    "start": repo.start_campaign,
    "pause": repo.pause_campaign,
    "resume": repo.resume_campaign,
    "stop": repo.stop_campaign,
    "cancel": repo.cancel_campaign,
}
#: The steps that keep a reason with the campaign.
WITH_REASON = frozenset({"pause", "stop", "cancel"})


def transition(
    engine: Engine, action: Action, campaign_id: int, *, reason: str | None = None
) -> Transitioned:
    """Apply ``action`` to the campaign. ``reason`` is kept for pause, stop and cancel.

    Raises :class:`NotFound` (with a hint) or :class:`~storage.errors.InvalidTransition`.
    """
    kwargs = {"reason": reason} if action in WITH_REASON else {}
    try:
        result = _STEPS[action](engine, campaign_id, **kwargs)
    except NotFound as exc:
        raise NotFound(f"{exc} ({LIST_HINT})") from None
    counts = repo.counts_by_state(engine, campaign_id)
    return Transitioned(action=action, result=result, progress=Progress(counts=counts))
