"""Parsers for what people type on the command line and in campaign settings.

:func:`parse_window` (``"09:00-20:00"``), :func:`parse_days` (``"mon-sat"``),
:func:`parse_duration` (``"1h30m"``) and :func:`parse_zone` (``"Asia/Kolkata"``), each pure,
each raising :class:`ValueError` with a message that names the text and shows the accepted
forms; the ``format_*`` functions are their inverses (``campaign show`` prints settings the way
they can be typed back).
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {
    **{name: i for i, name in enumerate(DAY_NAMES)},
    **{
        name: i
        for i, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
    "tues": 1,
    "wednes": 2,
    "thur": 3,
    "thurs": 3,
}
_DAY_GROUPS = {
    "all": frozenset(range(7)),
    "daily": frozenset(range(7)),
    "everyday": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekday": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "weekend": frozenset({5, 6}),
}

_WINDOW_FORMS = (
    "expected START-END on the 24-hour clock, e.g. '09:00-20:00' or '9-20' "
    "(END may be '24:00'; the end must be after the start: overnight windows such as "
    "'22:00-06:00' are not supported)"
)
_DAYS_FORMS = (
    "expected day names or ranges separated by commas, e.g. 'mon-sat', 'mon,wed,fri', "
    "'weekdays', 'weekends' or 'all'"
)
_DURATION_FORMS = (
    "expected a number with units d, h, m, s (and w), e.g. '90s', '30m', '2h', '1d', '1h30m', "
    "or plain seconds such as '3600'"
)

#: The end of the day: a window ending at "24:00" covers the last minute of the day.
END_OF_DAY = time.max

_CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))?")


def _parse_clock(text: str, *, end: bool) -> time | None:
    m = _CLOCK.fullmatch(text.strip())
    if m is None:
        return None
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if end and hour == 24 and minute == 0:
        return END_OF_DAY
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def parse_window(s: str) -> tuple[time, time]:
    """Parse a daily calling window such as ``"09:00-20:00"`` or ``"9-20"``.

    The window is half-open, ``[start, end)``, in the contact's local time. ``"24:00"`` as
    the end means the end of the day. Raises :class:`ValueError` naming the text otherwise.
    """
    parts = re.split(r"\s*[-\u2013]\s*", s.strip()) if isinstance(s, str) else []
    if len(parts) != 2:
        raise ValueError(f"invalid calling window {s!r}: {_WINDOW_FORMS}")
    start = _parse_clock(parts[0], end=False)
    end = _parse_clock(parts[1], end=True)
    if start is None or end is None:
        raise ValueError(f"invalid calling window {s!r}: {_WINDOW_FORMS}")
    if end <= start:
        raise ValueError(
            f"invalid calling window {s!r}: the end must be after the start "
            "(overnight windows are not supported; use two campaigns or widen the window)"
        )
    return start, end


def format_clock(t: time) -> str:
    """``time(9, 0)`` -> ``"09:00"``; :data:`END_OF_DAY` -> ``"24:00"``."""
    return "24:00" if t == END_OF_DAY else f"{t.hour:02d}:{t.minute:02d}"


def format_window(start: time, end: time) -> str:
    """The inverse of :func:`parse_window`: ``"09:00-20:00"``."""
    return f"{format_clock(start)}-{format_clock(end)}"


def parse_days(s: str) -> frozenset[int]:
    """Parse allowed weekdays (0 = Monday): ``"mon-sat"``, ``"mon,wed,fri"``, ``"weekdays"``.

    Case-insensitive; full names ("monday") work too; a range may wrap around the week
    (``"fri-mon"`` is Friday to Monday). Raises :class:`ValueError` naming the bad part.
    """
    if not isinstance(s, str) or not s.strip():
        raise ValueError(f"invalid days {s!r}: {_DAYS_FORMS}")
    days: set[int] = set()
    for raw in s.split(","):
        token = raw.strip().lower()
        if token in _DAY_GROUPS:
            days |= _DAY_GROUPS[token]
            continue
        ends = [p.strip() for p in re.split(r"\s*[-\u2013]\s*", token)]
        if len(ends) > 2 or any(p not in _DAY_ALIASES for p in ends):
            raise ValueError(f"invalid days {s!r}: {raw.strip()!r} is not a day; {_DAYS_FORMS}")
        first, last = _DAY_ALIASES[ends[0]], _DAY_ALIASES[ends[-1]]
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    return frozenset(days)


def format_days(days: frozenset[int] | set[int]) -> str:
    """The inverse of :func:`parse_days`, in the campaign column's form: ``"mon,tue,wed"``."""
    return ",".join(DAY_NAMES[d] for d in sorted(days))


_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)\s*w)?\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*"
    r"(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*"
    r"(?:(\d+(?:\.\d+)?)\s*s)?"
)
_MAX_DURATION = timedelta(days=3660)  # ten years: anything longer is a typo


def parse_duration(s: str) -> timedelta:
    """Parse a duration: ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``, ``"1h30m"``, ``"3600"``.

    Units go from largest to smallest, each at most once; a plain number is seconds.
    Case-insensitive. Raises :class:`ValueError` for anything else, negative values, or more
    than ten years.
    """
    text = s.strip().lower() if isinstance(s, str) else ""
    seconds: float
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        seconds = float(text)
    else:
        m = _DURATION.fullmatch(text)
        if not text or m is None or not any(m.groups()):
            raise ValueError(f"invalid duration {s!r}: {_DURATION_FORMS}")
        seconds = sum(
            float(v) * _UNIT_SECONDS[u]
            for v, u in zip(m.groups(), "wdhms", strict=True)
            if v is not None
        )
    if seconds > _MAX_DURATION.total_seconds():
        raise ValueError(f"invalid duration {s!r}: longer than ten years")
    return timedelta(seconds=seconds)


def format_duration(d: timedelta) -> str:
    """The inverse of :func:`parse_duration` for whole seconds: ``timedelta(hours=1.5)`` ->
    ``"1h30m"``, zero -> ``"0s"``. Fractions of a second are rounded."""
    total = round(d.total_seconds())
    if total < 0:
        raise ValueError(f"cannot format a negative duration: {d}")
    parts = []
    for unit in "dhms":
        n, total = divmod(total, _UNIT_SECONDS[unit])
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"


def parse_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (e.g. ``"America/New_York"``); ValueError naming it otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "America", too long
        raise ValueError(
            f"unknown time zone {name!r}: expected an IANA name such as "
            "'America/New_York' or 'Asia/Kolkata'"
        ) from exc
