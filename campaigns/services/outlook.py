"""Use case: when can a campaign's waiting contacts be called: now, or at the next opening?

The console shows "12 can be called now, the other 30 from 09:00 IST" for a campaign and
for a preview alike; ``campaign show``, the daemon's progress line and its log say "next window
opens 10:00 Asia/Kolkata (in 13h56m)" when every waiting contact is outside its window. The
answer comes from the campaign's own calling policy (:class:`campaigns.calling.CallingPolicy`,
the rules the dispatcher applies) over the zones of the contacts still waiting, grouped in the
database (``storage.contacts.waiting_zones``): one decision per distinct zone list, not one per
contact. A campaign that observes public holidays groups them by country too (the
holidays are those of each contact's country, :mod:`campaigns.blackout`), from the numbers'
leading digits (``storage.contacts.waiting_zone_samples``).

The outlook is told in the calling policy's time: the real clock, unless the test hook of
:mod:`campaigns.testclock` shifts the policy's calendar (then ``as_of`` and the opening are
instants of that shifted calendar, as the policy decides them).

:meth:`Outlook.dialling_eta` is the time to dial those contacts at a given rate *counting the
windows*: dialling time is spent only while a waiting contact's window is open, so a campaign
closed until tomorrow finishes tomorrow, not in the next few hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from campaigns.blackout import country_of
from campaigns.calling import CallingPolicy
from campaigns.testclock import policy_now
from campaigns.wording import duration
from storage import campaigns_repo
from storage.contacts import waiting_zone_samples, waiting_zones
from storage.engine import Engine
from storage.models import utcnow

#: Window boundaries :meth:`Outlook.dialling_eta` walks through before it says "unknown".
_MAX_SEGMENTS = 2000


@dataclass(frozen=True, kw_only=True)
class Outlook:
    """Waiting contacts whose window is open at ``as_of``, the others, and the first instant
    one of the others' windows opens (None: none waiting, or no window ever opens), with the
    zone it opens in."""

    callable_now: int
    later: int
    next_window_at: datetime | None
    as_of: datetime
    next_window_zone: str | None = None
    #: waiting contacts per zone list the policy reads (for :meth:`dialling_eta`)
    groups: tuple[tuple[tuple[str, ...], int], ...] = field(default=(), repr=False)
    policy: CallingPolicy | None = field(default=None, repr=False, compare=False)

    @property
    def all_closed(self) -> bool:
        """Contacts wait, and not one of them may be dialled now (outside every window)."""
        return self.callable_now == 0 and self.later > 0

    def next_window_text(self) -> str | None:
        """``next window opens 10:00 Asia/Kolkata (in 13h56m)`` when :attr:`all_closed`
        (None otherwise): the wall time in the zone that opens first, and how long until."""
        if not self.all_closed:
            return None
        if self.next_window_at is None:
            return "no calling window opens for the waiting contacts before the campaign ends"
        return "next window opens " + window_phrase(
            self.next_window_at, self.next_window_zone, self.as_of
        )

    def dialling_eta(self, per_second: float) -> float | None:
        """Seconds until every waiting contact is dialled at ``per_second`` calls a second,
        dialling only while their windows are open (0 when none waits; None when the rate is
        0 or some contacts' window never opens again). Contacts of unknown zone are never
        dialled, so they do not count."""
        if self.policy is None or not any(zones for zones, _ in self.groups):
            return 0.0
        if per_second <= 0:
            return None
        return _finish_eta(self.policy, self.groups, self.as_of, per_second)

    def to_dict(self) -> dict[str, Any]:
        return {
            "callable_now": self.callable_now,
            "later": self.later,
            "next_window_at": _iso(self.next_window_at),
            "next_window_zone": self.next_window_zone,
            "as_of": _iso(self.as_of),
        }


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def window_phrase(at: datetime, zone: str | None, now: datetime) -> str:
    """``10:00 Asia/Kolkata (in 13h56m)``; the date is added when ``at`` is a day or more
    away (``Mon 2026-11-30 10:00 America/New_York (in 2d03h)``)."""
    from zoneinfo import ZoneInfo

    local = at.astimezone(ZoneInfo(zone)) if zone else at.astimezone(UTC)
    wait = (at - now).total_seconds()
    when = f"{local:%H:%M}" if wait < 86400 else f"{local:%a %Y-%m-%d %H:%M}"
    return f"{when} {zone or 'UTC'} (in {duration(max(wait, 0))})"


def _waiting(
    engine: Engine, campaign_id: int, policy: CallingPolicy
) -> list[tuple[str | None, str | None, int]]:
    """(stored zones, country or None, count) of the waiting contacts: by country only when
    the policy observes holidays (it costs a finer grouping)."""
    if not policy.blackout.uses_country:
        return [(zones, None, n) for zones, n in waiting_zones(engine, campaign_id).items()]
    return [
        (zones, country_of(phone) if phone else None, n)
        for zones, n, phone in waiting_zone_samples(engine, campaign_id)
    ]


def outlook(engine: Engine, campaign_id: int, *, now: datetime | None = None) -> Outlook:
    """The :class:`Outlook` of ``campaign_id`` at ``now`` (real time; NotFound for an unknown
    id)."""
    now = policy_now(now or utcnow())
    policy = CallingPolicy.from_campaign(campaigns_repo.get_campaign(engine, campaign_id))
    callable_now = later = 0
    first: datetime | None = None
    first_zone: str | None = None
    groups: dict[tuple[str, ...], int] = {}
    for stored, country, n in _waiting(engine, campaign_id, policy):
        zones = policy.zones_for(stored)
        groups[zones] = groups.get(zones, 0) + n
        if policy.is_open(zones, now, country):
            callable_now += n
            continue
        later += n
        opening = policy.next_opening(zones, now, country)
        if opening is not None and (first is None or opening < first):
            first, first_zone = opening, zones[0]
    return Outlook(
        callable_now=callable_now,
        later=later,
        next_window_at=first,
        as_of=now,
        next_window_zone=first_zone,
        groups=tuple(groups.items()),
        policy=policy,
    )


def _closes_at(policy: CallingPolicy, zones: tuple[str, ...], t: datetime) -> datetime:
    """The first instant after ``t`` (open) when one of the zones' windows (or the campaign)
    closes."""
    from zoneinfo import ZoneInfo

    closes = []
    for name in zones:
        tz = ZoneInfo(name)
        wall = datetime.combine(t.astimezone(tz).date(), policy.window_end, tzinfo=tz)
        closes.append(wall.astimezone(UTC))
    if policy.end_at is not None:
        closes.append(policy.end_at.astimezone(UTC))
    return max(min(closes), t + timedelta(minutes=1))


def _finish_eta(
    policy: CallingPolicy,
    groups: tuple[tuple[tuple[str, ...], int], ...],
    now: datetime,
    per_second: float,
) -> float | None:
    """Walk the windows from ``now``: while some groups are open, dial them at the rate
    (shared in proportion to what each has left) until they are done, a window closes or
    another group's opens; while none is, jump to the next opening."""
    left = {zones: float(n) for zones, n in groups if n and zones}  # () is never dialled
    t = now
    for _ in range(_MAX_SEGMENTS):
        if not left:
            return (t - now).total_seconds()
        open_ = [z for z in left if policy.is_open(z, t)]
        opens = [o for z in left if z not in open_ and (o := policy.next_opening(z, t))]
        if not open_:
            if not opens:
                return None  # the rest never gets a window again
            t = min(opens)
            continue
        until = min([_closes_at(policy, z, t) for z in open_] + opens)
        need = sum(left[z] for z in open_)
        capacity = per_second * (until - t).total_seconds()
        if need <= capacity:
            t += timedelta(seconds=need / per_second)
            for z in open_:
                del left[z]
        else:
            for z in open_:
                left[z] -= capacity * left[z] / need
            t = until
    return None
