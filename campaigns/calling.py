"""The calling policy of a campaign: when a contact may be dialled, and when a missed call is
dialled again.

:class:`CallingPolicy` is a frozen value built from a campaign (a
:class:`~storage.campaigns_repo.CampaignRecord`), pure (no I/O, no clock of its own). It answers
"may this contact be dialled now?" (:meth:`~CallingPolicy.is_open`), "when next?"
(:meth:`~CallingPolicy.next_opening`), "is the attempt cap reached?"
(:meth:`~CallingPolicy.cap_reached`, the one place the cap is checked) and "re-dial after this
outcome, and when?" (:meth:`~CallingPolicy.redial_delay`).

Calling windows are wall-clock times in the *contact's* zone. A number that maps to several
zones (a US area code that straddles a zone border) may only be dialled when every one of its
zones is inside the window on an allowed weekday: the rule protects the person at the far end,
so we take the strictest reading. Daylight saving time is handled by :mod:`zoneinfo`: on the
morning the clocks jump forward over the window start, the window opens at the jump.

Blackout dates and public holidays (:mod:`campaigns.blackout`) close a whole local day; the
holidays are those of the contact's country, which callers pass as ``country``. A re-dial
schedule (``retry_schedule``) makes the Nth re-dial wait its Nth step (the last repeats), for
every outcome without a delay of its own in ``retry_delays``.

The module is about 400 lines because the window search (:meth:`next_opening` and its
daylight-saving helpers) belongs with the window it searches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from campaigns.blackout import NO_BLACKOUT, Blackout
from campaigns.parsing import parse_days, parse_window, parse_zone

#: The outcomes (``storage.states.Outcome`` values) after which a contact may be re-dialled.
REDIAL_OUTCOMES = ("no_answer", "busy", "failed", "voicemail", "no_outcome")
BUSY_DELAY_CAP = timedelta(minutes=15)


def default_retry_delays(retry_delay: timedelta) -> dict[str, timedelta]:
    """The per-outcome re-dial delays a campaign gets unless its ``retry_delays`` override one.

    Every outcome waits the campaign's ``retry_delay`` except ``busy``: a busy line means the
    person is on the phone right now, so they are likely reachable soon, and we call again
    after at most 15 minutes. ``failed`` (a carrier or network failure), ``voicemail`` and
    ``no_outcome`` (the call never reported back) wait the full delay, like ``no_answer``.
    """
    delays = dict.fromkeys(REDIAL_OUTCOMES, retry_delay)
    delays["busy"] = min(retry_delay, BUSY_DELAY_CAP)
    return delays


#: The delays of a campaign created with the default ``retry_delay_s`` (7200 s).
DEFAULT_RETRY_DELAYS: Mapping[str, timedelta] = default_retry_delays(timedelta(hours=2))

UNKNOWN_ZONE = "Etc/Unknown"
#: How far ahead :meth:`CallingPolicy.next_opening` looks for a common window. A year, because
#: daylight saving time can make zones overlap only for a few weeks of it.
SEARCH_HORIZON = timedelta(days=400)
_MEMO_LIMIT = 4096


class CampaignSettings(Protocol):
    """The campaign settings a policy is built from (read-only): a
    :class:`~storage.campaigns_repo.CampaignRecord` has them (the importer's row, before the
    campaign exists, too)."""

    @property
    def id(self) -> Any: ...

    @property
    def window_start(self) -> str: ...

    @property
    def window_end(self) -> str: ...

    @property
    def days(self) -> str: ...

    @property
    def timezone(self) -> str | None: ...

    @property
    def start_at(self) -> datetime | None: ...

    @property
    def end_at(self) -> datetime | None: ...

    @property
    def max_attempts(self) -> int: ...

    @property
    def retry_delay_s(self) -> int: ...

    @property
    def retry_delays(self) -> Mapping[str, Any]: ...

    @property
    def redial_voicemail(self) -> bool: ...

    @property
    def daily_cap_per_number(self) -> int | None: ...

    @property
    def retry_schedule(self) -> Sequence[int] | None: ...

    @property
    def skip_dates(self) -> Sequence[str] | None: ...

    @property
    def holidays(self) -> str | None: ...


@dataclass(frozen=True, kw_only=True)
class CallingPolicy:
    """When a campaign may dial a contact, and how it re-dials; built once per campaign.

    All instants are aware datetimes (any zone; compared as instants). Times of day are the
    contact's local wall-clock time: ``[window_start, window_end)`` on ``days`` (0 = Monday).
    """

    window_start: time
    window_end: time
    days: frozenset[int]
    timezone: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    max_attempts: int = 3
    retry_delays: Mapping[str, timedelta] = field(default_factory=lambda: DEFAULT_RETRY_DELAYS)
    redial_voicemail: bool = True
    daily_cap_per_number: int | None = None
    #: escalating re-dial delays (the Nth re-dial waits the Nth, the last repeats); () = none
    retry_schedule: tuple[timedelta, ...] = ()
    #: outcomes whose delay was set on their own (``--retry busy=15m``): the schedule skips them
    retry_explicit: frozenset[str] = frozenset()
    blackout: Blackout = NO_BLACKOUT
    # (zones, from) -> first opening at or after `from` (None: never); see next_opening
    _memo: dict[tuple[str, ...], tuple[datetime, datetime | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _feasible: dict[tuple[str, ...], bool] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.window_end <= self.window_start:
            raise ValueError("the calling window must end after it starts")
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError(f"days must be a non-empty set of weekdays 0-6, not {self.days}")
        if self.timezone is not None:
            parse_zone(self.timezone)
        for name, value in (("start_at", self.start_at), ("end_at", self.end_at)):
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name} must be an aware datetime")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        unknown = set(self.retry_delays) - set(REDIAL_OUTCOMES)
        if unknown:
            raise ValueError(
                f"retry delays for unknown outcomes {sorted(unknown)}; "
                f"expected some of {', '.join(REDIAL_OUTCOMES)}"
            )

    @classmethod
    def from_campaign(cls, campaign: CampaignSettings) -> CallingPolicy:
        """Build the policy from a campaign (a ``CampaignRecord``); ValueError names the
        campaign and the setting."""
        try:
            return cls._from_campaign(campaign)
        except ValueError as exc:
            raise ValueError(f"campaign {campaign.id}: {exc}") from None

    @classmethod
    def _from_campaign(cls, campaign: CampaignSettings) -> CallingPolicy:
        start, end = parse_window(f"{campaign.window_start}-{campaign.window_end}")
        delays = default_retry_delays(timedelta(seconds=campaign.retry_delay_s))
        for outcome, seconds in (campaign.retry_delays or {}).items():
            if outcome not in delays:
                raise ValueError(
                    f"retry delay for unknown outcome {outcome!r}; "
                    f"expected one of {', '.join(REDIAL_OUTCOMES)}"
                )
            if not isinstance(seconds, int | float) or not 0 <= seconds <= 10 * 365 * 86400:
                raise ValueError(
                    f"retry delay for {outcome} is not a number of seconds: {seconds!r}"
                )
            delays[outcome] = timedelta(seconds=seconds)
        return cls(
            retry_schedule=tuple(timedelta(seconds=s) for s in campaign.retry_schedule or ()),
            retry_explicit=frozenset(campaign.retry_delays or {}),
            blackout=Blackout.from_stored(campaign.skip_dates, campaign.holidays),
            window_start=start,
            window_end=end,
            days=parse_days(campaign.days),
            timezone=campaign.timezone or None,
            start_at=campaign.start_at,
            end_at=campaign.end_at,
            max_attempts=campaign.max_attempts,
            retry_delays=delays,
            redial_voicemail=campaign.redial_voicemail,
            daily_cap_per_number=campaign.daily_cap_per_number,
        )

    # -- time zones ---------------------------------------------------------------------------

    def zones_for(self, contact_timezones: str | None) -> tuple[str, ...]:
        """The zones whose local time governs a contact: the campaign's override zone, else
        the contact's comma-separated zones; ``()`` when unknown (empty, ``Etc/Unknown`` or a
        name :mod:`zoneinfo` does not know), and then the contact must not be dialled."""
        if self.timezone:
            return (self.timezone,)
        zones: list[str] = []
        for raw in (contact_timezones or "").split(","):
            name = raw.strip()
            if not name:
                continue
            if name == UNKNOWN_ZONE:
                return ()
            try:
                parse_zone(name)
            except ValueError:
                return ()
            if name not in zones:
                zones.append(name)
        return tuple(zones)

    # -- windows ------------------------------------------------------------------------------

    def _zone_open(self, tz: ZoneInfo, now: datetime, country: str | None = None) -> bool:
        local = now.astimezone(tz)
        return (
            self._day_open(local.date(), country)
            and self.window_start <= local.time().replace(tzinfo=None) < self.window_end
        )

    def _day_open(self, day: date, country: str | None) -> bool:
        return day.weekday() in self.days and not self.blackout.closes(day, country)

    def _in_dates(self, now: datetime) -> bool:
        return (self.start_at is None or self.start_at <= now) and (
            self.end_at is None or now < self.end_at
        )

    def is_open(self, zones: Sequence[str], now: datetime, country: str | None = None) -> bool:
        """True when ``now`` is inside the window in *every* zone, on an allowed local weekday
        that is no blackout date nor a public holiday of ``country`` (the contact's), and
        within the campaign's start/end dates. False for no zones (unknown)."""
        _aware(now, "now")
        if not zones or not self._in_dates(now):
            return False
        return all(self._zone_open(parse_zone(z), now, country) for z in zones)

    def next_opening(
        self, zones: Sequence[str], after: datetime, country: str | None = None
    ) -> datetime | None:
        """The earliest instant ``>= after`` at which :meth:`is_open` holds, or None when there
        is none: no zones, the zones' windows never overlap, or the campaign ends first.

        Exact (not minute-stepping): an opening is the start of a zone's window (or the jump of
        a daylight-saving transition), so from a closed instant we move to the latest of the
        closed zones' next openings and check again; each step moves forward to a window start,
        so the loop is short. Results are remembered per zone set, so the dispatcher asking the
        same question for many contacts is cheap.
        """
        _aware(after, "after")
        if not zones:
            return None
        key = tuple(zones)
        if country is not None and self.blackout.uses_country:
            key += (f"country:{country}",)  # holidays differ by country: so do openings
        else:
            country = None
        memo = self._memo.get(key)
        if memo is not None and memo[0] <= after and (memo[1] is None or after <= memo[1]):
            return memo[1]
        result = self._search(tuple(zones), after, self.end_at, country=country)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = (after, result)
        return result

    def feasible(self, zones: Sequence[str], at: datetime | None = None) -> bool:
        """Whether the zones' windows ever overlap: an instant within a year of ``at``
        (default: now) where all are open, regardless of the campaign's start and end dates.
        A year, because daylight saving time shifts overlaps by an hour for part of it."""
        if not zones:
            return False
        key = tuple(zones)
        if at is None and key in self._feasible:  # an importer asks once per row
            return self._feasible[key]
        start = at if at is not None else datetime.now(UTC)
        _aware(start, "at")
        answer = self._search(key, start, None, use_dates=False) is not None
        if at is None:
            if len(self._feasible) >= _MEMO_LIMIT:
                self._feasible.clear()
            self._feasible[key] = answer
        return answer

    def _search(
        self,
        zones: tuple[str, ...],
        after: datetime,
        end_at: datetime | None,
        *,
        use_dates: bool = True,
        country: str | None = None,
    ) -> datetime | None:
        tzs = [parse_zone(z) for z in zones]
        t = after.astimezone(UTC)
        if use_dates and self.start_at is not None and t < self.start_at:
            t = self.start_at.astimezone(UTC)
        limit = t + SEARCH_HORIZON
        if end_at is not None:
            limit = min(limit, end_at.astimezone(UTC))
        while t < limit:
            closed = [tz for tz in tzs if not self._zone_open(tz, t, country)]
            if not closed:
                return t
            t = max(self._zone_next_open(tz, t, country) for tz in closed)
        return None

    def _zone_next_open(self, tz: ZoneInfo, t: datetime, country: str | None = None) -> datetime:
        """The earliest instant after ``t`` (at which the zone is closed) when it is open."""
        local_day = t.astimezone(tz).date()
        best: datetime | None = None
        for k in range(0, 9 + len(self.blackout.dates) + (31 if self.blackout.countries else 0)):
            day = local_day + timedelta(days=k)
            if not self._day_open(day, country):
                continue
            opening = self._window_start_instant(tz, day)
            if opening > t:
                best = opening
                break
        if best is None:  # cannot happen with a non-empty set of days; be safe
            return t + timedelta(days=8)
        # a backward daylight-saving jump between t and best can re-open the window
        if t.astimezone(tz).utcoffset() != best.astimezone(tz).utcoffset():
            jump = _transition(tz, t, best)
            if jump is not None and self._zone_open(tz, jump, country) and jump < best:
                return jump
        return best

    def _window_start_instant(self, tz: ZoneInfo, day: date) -> datetime:
        """The first instant of ``day`` (local) whose wall time is at or after window_start."""
        wall = datetime.combine(day, self.window_start)
        first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
        lo, hi = min(first, second), max(first, second)
        if lo == hi or lo.astimezone(tz).replace(tzinfo=None) == wall:
            return lo  # an ordinary time, or the first of a repeated hour
        # the wall time falls in a gap (clocks jumped forward): the window opens at the jump
        jump = _transition(tz, lo, hi)
        return jump if jump is not None else hi

    # -- re-dials -----------------------------------------------------------------------------

    def cap_reached(self, attempts_made: int) -> bool:
        """Has a contact used up its calls? The one place the lifetime attempt cap is read:
        the dial decision, the re-dial delay and the next contact state all ask here."""
        return attempts_made >= self.max_attempts

    def redial_delay(self, outcome: str, attempts_made: int) -> timedelta | None:
        """How long to wait before calling again after ``outcome``, or None not to re-dial:
        the call was answered, ``attempts_made`` reached ``max_attempts``, or it went to
        voicemail and the campaign does not re-dial voicemail. With a schedule, the
        ``attempts_made``-th re-dial waits its step (busy: 15 minutes at most, as without)."""
        if outcome == "answered" or self.cap_reached(attempts_made):
            return None
        if outcome == "voicemail" and not self.redial_voicemail:
            return None
        if (
            self.retry_schedule
            and outcome in REDIAL_OUTCOMES
            and outcome not in self.retry_explicit
        ):
            step = self.retry_schedule[min(max(attempts_made, 1), len(self.retry_schedule)) - 1]
            return min(step, BUSY_DELAY_CAP) if outcome == "busy" else step
        try:
            return self.retry_delays[outcome]
        except KeyError:
            if outcome in REDIAL_OUTCOMES:
                return DEFAULT_RETRY_DELAYS[outcome]
            raise ValueError(
                f"unknown call outcome {outcome!r}; expected answered or one of "
                f"{', '.join(REDIAL_OUTCOMES)}"
            ) from None


def _aware(value: datetime, name: str) -> None:
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")


def _transition(tz: ZoneInfo, lo: datetime, hi: datetime) -> datetime | None:
    """The instant in ``(lo, hi]`` where ``tz``'s UTC offset changes, if any.

    Transitions fall on whole seconds, so a binary search over epoch seconds finds it exactly.
    """

    def offset(epoch: int) -> timedelta | None:
        return datetime.fromtimestamp(epoch, UTC).astimezone(tz).utcoffset()

    before = lo.astimezone(tz).utcoffset()
    a, b = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    if offset(b) == before:
        return None
    while b - a > 1:  # offset(a) == before != offset(b)
        mid = (a + b) // 2
        if offset(mid) == before:
            a = mid
        else:
            b = mid
    return datetime.fromtimestamp(b, UTC)
