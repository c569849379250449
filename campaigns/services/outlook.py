"""Use case: when can a campaign's waiting contacts be called: now, or at the next opening?

The console shows "12 can be called now, the other 30 from 09:00 IST" for a campaign and
for a preview alike. The answer comes from the campaign's own calling policy
(:class:`campaigns.calling.CallingPolicy`, the rules the dispatcher applies) over the zones of
the contacts still waiting, grouped in the database (``storage.contacts.waiting_zones``): one
decision per distinct zone list, not one per contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from campaigns.calling import CallingPolicy
from storage import campaigns_repo
from storage.contacts import waiting_zones
from storage.engine import Engine
from storage.models import utcnow


@dataclass(frozen=True, kw_only=True)
class Outlook:
    """Waiting contacts whose window is open at ``as_of``, the others, and the first instant
    one of the others' windows opens (None: none waiting, or no window ever opens)."""

    callable_now: int
    later: int
    next_window_at: datetime | None
    as_of: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "callable_now": self.callable_now,
            "later": self.later,
            "next_window_at": _iso(self.next_window_at),
            "as_of": _iso(self.as_of),
        }


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def outlook(engine: Engine, campaign_id: int, *, now: datetime | None = None) -> Outlook:
    """The :class:`Outlook` of ``campaign_id`` (NotFound for an unknown id)."""
    now = now or utcnow()
    policy = CallingPolicy.from_campaign(campaigns_repo.get_campaign(engine, campaign_id))
    callable_now = later = 0
    first: datetime | None = None
    for stored, n in waiting_zones(engine, campaign_id).items():
        zones = policy.zones_for(stored)
        if policy.is_open(zones, now):
            callable_now += n
            continue
        later += n
        opening = policy.next_opening(zones, now)
        if opening is not None and (first is None or opening < first):
            first = opening
    return Outlook(callable_now=callable_now, later=later, next_window_at=first, as_of=now)
