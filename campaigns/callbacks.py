"""Callbacks the contact asks for: "call me back at 5pm" heard on a call, re-dialled then.

The agent extracts the time into an entity (keys :data:`DEFAULT_KEYS`, or the campaign's own
``--callback-keys``). :func:`parse_callback` reads it in the contact's own zone:

* ISO 8601 with an offset (``2026-12-01T17:00+05:30``, ``...Z``): that instant;
* ISO 8601 without one (``2026-12-01T17:00``, ``2026-12-01 17:00``, ``2026-12-02``): that wall
  time in the contact's zone (a bare date is its midnight, then moved into the window);
* a local time (``17:00``, ``5pm``, ``5:30 pm``), optionally with ``today`` or ``tomorrow``
  (``tomorrow 5pm``, ``5pm tomorrow``, ``tomorrow at 17:00``): without a day word, the next
  such wall time after the call's end;
* ``in 90 minutes``, ``in 2 hours``, ``in 1h30m``: after the call's end.

:func:`plan_callback` then decides, in this order, so that the report says the first reason:
a time already past when the outcome arrives is ignored; so is one past the campaign's own
cap (``--max-callbacks``, default 2) or its end; a time outside the calling window moves to
the next window opening (:meth:`campaigns.calling.CallingPolicy.next_opening`).

A callback's call does not use up the attempt budget (``--max-attempts``): the contact asked
for it, and the budget is for calls nobody asked for. Callbacks have their own cap instead, so
a contact gets at most ``max_attempts + max_callbacks`` calls. Pure: values in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.calling import CallingPolicy
from campaigns.parsing import parse_duration, parse_zone
from campaigns.wording import plural

#: The entity keys read when a campaign names none (matched case-insensitively).
DEFAULT_KEYS = ("callback_at", "call_back_at", "callback_time")
DEFAULT_MAX_CALLBACKS = 2
_FORMS = "expected ISO 8601, a local time such as 17:00 or 5pm, 'tomorrow 5pm' or 'in 2 hours'"
_CLOCK = r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>am|pm|a\.m\.|p\.m\.)?"
_DAY = r"(?P<day>today|tomorrow)"
_LOCAL = (
    re.compile(rf"{_CLOCK}"),
    re.compile(rf"{_DAY}\s+(?:at\s+)?{_CLOCK}"),
    re.compile(rf"{_CLOCK}\s+{_DAY}"),
)
_IN = re.compile(r"in\s+(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>minutes?|mins?|hours?|hrs?|days?)")
_UNITS = {"min": "m", "hou": "h", "hrs": "h", "hr": "h", "day": "d"}


def _clock(m: re.Match[str]) -> time:
    hour, minute, ampm = int(m["h"]), int(m["m"] or 0), (m["ampm"] or "").replace(".", "")
    if ampm:
        if not 1 <= hour <= 12:
            raise ValueError(f"{hour}{ampm}: the hour of a 12-hour time is 1-12")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    elif m["m"] is None:
        raise ValueError("a bare number is not a time: write 17:00 or 5pm")
    if hour > 23 or minute > 59:
        raise ValueError(f"{hour:02d}:{minute:02d} is not a time of day")
    return time(hour, minute)


def _wall(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock).replace(tzinfo=zone)


def parse_callback(value: Any, *, zone: ZoneInfo, ended_at: datetime) -> datetime:
    """The instant a callback entity asks for (aware), read in ``zone`` and relative to the
    call's end ``ended_at``. ValueError (saying which forms are understood) otherwise."""
    if isinstance(value, datetime):
        return value if value.utcoffset() is not None else value.replace(tzinfo=zone)
    text = " ".join(str(value).strip().lower().split()) if isinstance(value, str) else ""
    if not text:
        raise ValueError(f"{value!r} is not a callback time: {_FORMS}")
    if text[:1].isdigit() and ("-" in text[:5]):  # 2026-12-01..., an ISO date (and time)
        try:
            dt = datetime.fromisoformat(text.upper().replace(" ", "T", 1))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time: {_FORMS}") from None
        return dt if dt.utcoffset() is not None else dt.replace(tzinfo=zone)
    if (m := _IN.fullmatch(text)) is not None:
        unit = _UNITS.get(m["unit"][:3], m["unit"][:1])
        return ended_at + parse_duration(f"{m['n']}{unit}")
    if text.startswith("in "):
        try:
            return ended_at + parse_duration(text[3:].replace(" ", ""))
        except ValueError:
            raise ValueError(f"{value!r} is not a callback time: {_FORMS}") from None
    local = ended_at.astimezone(zone)
    for form in _LOCAL:
        if (m := form.fullmatch(text)) is None:
            continue
        try:
            clock = _clock(m)
        except ValueError as exc:
            raise ValueError(f"{value!r}: {exc}; {_FORMS}") from None
        day = m.groupdict().get("day")
        if day is not None:
            offset = 1 if day == "tomorrow" else 0
            return _wall(local.date() + timedelta(days=offset), clock, zone)
        at = _wall(local.date(), clock, zone)
        return at if at > ended_at else _wall(local.date() + timedelta(days=1), clock, zone)
    raise ValueError(f"{value!r} is not a callback time: {_FORMS}")


def callback_value(entity: Mapping[str, Any] | None, keys: Iterable[str]) -> tuple[str, Any]:
    """The first of ``keys`` (case-insensitive) with a value in ``entity``: (key, value), or
    ``("", None)`` when the call asked for no callback."""
    if not entity:
        return "", None
    lowered = {str(k).strip().lower(): v for k, v in entity.items()}
    for key in keys:
        value = lowered.get(str(key).strip().lower())
        if value not in (None, "", False):
            return str(key), value
    return "", None


@dataclass(frozen=True, kw_only=True)
class CallbackPlan:
    """What becomes of a callback asked for on a call: re-dial ``at`` (None: ignored), and a
    ``note`` for the report (why it was ignored, or that it moved into the window)."""

    at: datetime | None
    note: str | None = None


def _local(at: datetime, zone: str) -> str:
    return f"{at.astimezone(parse_zone(zone)).strftime('%Y-%m-%d %H:%M')} {zone}"


def plan_callback(
    policy: CallingPolicy,
    *,
    entity: Mapping[str, Any] | None,
    keys: Sequence[str] | None,
    max_callbacks: int,
    callbacks: int,
    timezones: str | None,
    ended_at: datetime,
    now: datetime,
) -> CallbackPlan | None:
    """The callback a finished call asks for (None: it asks for none). ``callbacks`` is how
    many the contact had scheduled before; ``now`` is when the outcome arrived."""
    key, value = callback_value(entity, keys or DEFAULT_KEYS)
    if not key:
        return None
    zones = policy.zones_for(timezones)
    if not zones:
        return CallbackPlan(at=None, note="callback ignored: the contact's time zone is unknown")
    try:
        at = parse_callback(value, zone=parse_zone(zones[0]), ended_at=ended_at)
    except ValueError as exc:
        return CallbackPlan(at=None, note=f"callback ignored: {key}: {exc}")
    asked = _local(at, zones[0])
    if at < now:
        return CallbackPlan(
            at=None, note=f"callback ignored: {asked} was already past when the outcome arrived"
        )
    if callbacks >= max_callbacks:
        cap = plural(max_callbacks, "callback")
        return CallbackPlan(at=None, note=f"callback ignored ({asked}): cap of {cap} reached")
    if policy.end_at is not None and at >= policy.end_at:
        return CallbackPlan(at=None, note=f"callback ignored: {asked} is after the campaign's end")
    if policy.is_open(zones, at):
        return CallbackPlan(at=at)
    opening = policy.next_opening(zones, at)
    if opening is None:
        return CallbackPlan(
            at=None, note=f"callback ignored ({asked}): no calling window before the campaign's end"
        )
    return CallbackPlan(at=opening, note=f"asked for {asked}, outside the window: moved")
