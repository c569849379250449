"""Days a campaign does not call: blackout dates (``--skip-dates``) and public holidays
(``--holidays IN``), both read as the CONTACT's local date.

:class:`Blackout` is the frozen value :class:`~campaigns.calling.CallingPolicy` consults for
every local day it might open a window on. Public holidays come from the ``holidays``
package and apply in the contact's own country (the region of their phone number, see
:func:`country_of`): ``--holidays IN`` keeps India's holidays free of calls to Indian numbers
and leaves a US number alone, since it is no holiday where that person is; ``--holidays auto``
observes every contact's own country. Holiday tables are built per (country, year) once and
kept: the dial decision asks for every due contact.

The parsers raise :class:`ValueError` with a message that names the text and the accepted
forms; the service layer prefixes the option (``--skip-dates: ...``).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

#: ``--holidays auto``: each contact's own country.
AUTO = "auto"
_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass(frozen=True, kw_only=True)
class Blackout:
    """The dates on which nobody is called, and the countries whose holidays are observed
    (``{"auto"}``: every contact's own)."""

    dates: frozenset[date] = frozenset()
    countries: frozenset[str] = frozenset()

    @classmethod
    def from_stored(cls, skip_dates: Iterable[str] | None, holidays: str | None) -> Blackout:
        """From the campaign's columns (ISO dates; ``"IN,US"`` or ``"auto"``)."""
        return cls(
            dates=frozenset(date.fromisoformat(d) for d in skip_dates or ()),
            countries=frozenset(c for c in (holidays or "").split(",") if c),
        )

    @property
    def uses_country(self) -> bool:
        """Whether the answer depends on the contact's country (holidays are observed)."""
        return bool(self.countries)

    def closes(self, day: date, country: str | None) -> bool:
        """Is ``day`` (the contact's local date) closed to calls for a contact in
        ``country`` (ISO 3166 alpha-2, None when unknown)?"""
        if day in self.dates:
            return True
        if country is None or not self.countries:
            return False
        if AUTO not in self.countries and country not in self.countries:
            return False
        return day in holiday_dates(country, day.year)


#: No blackout dates, no holidays: a campaign that calls on every allowed weekday.
NO_BLACKOUT = Blackout()


@functools.lru_cache(maxsize=512)
def holiday_dates(country: str, year: int) -> frozenset[date]:
    """The public holidays of ``country`` in ``year``; empty for a country the ``holidays``
    package does not know (a contact's region may be one it has no table for)."""
    import holidays  # 0.2 s to load: only campaigns that observe holidays pay it

    try:
        table = holidays.country_holidays(country, years=year)
    except NotImplementedError:
        return frozenset()
    return frozenset(table)


@functools.lru_cache(maxsize=65536)
def country_of(phone_e164: str) -> str | None:
    """The country (ISO 3166 alpha-2) of an E.164 number, or None when it has none (a
    non-geographic number, or text that does not parse). A country code of one country
    (+91) answers without parsing the number; shared ones (+1, +44) need the full parse."""
    import phonenumbers  # 13 ms to load: only campaigns that observe holidays pay it
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

    for digits in (phone_e164[1:2], phone_e164[1:3], phone_e164[1:4]):
        regions = COUNTRY_CODE_TO_REGION_CODE.get(int(digits)) if digits.isdigit() else None
        if regions is not None:
            if len(regions) == 1:
                return None if regions[0] == "001" else regions[0]
            break
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone_e164))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "001" else None


def parse_dates(text: str) -> list[date]:
    """``"2026-12-25,2027-01-01"`` (commas, semicolons or spaces) -> sorted unique dates."""
    found: set[date] = set()
    for item in _SEPARATORS.split(text.strip()):
        if item:
            found.add(_date(item))
    return sorted(found)


def read_dates_file(path: Path) -> list[date]:
    """One date per line (``YYYY-MM-DD``); blank lines and ``#`` comments are ignored.
    ValueError names the file and line of the first bad one."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise ValueError(f"no file at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    found: set[date] = set()
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            found.add(_date(text))
        except ValueError as exc:
            raise ValueError(f"{path} line {number}: {exc}") from None
    return sorted(found)


def parse_countries(text: str) -> str:
    """``"in, us"`` -> ``"IN,US"``; ``"auto"`` stays ``"auto"``. ValueError for a code the
    ``holidays`` package has no table for, with the nearest ones it has."""
    import holidays

    codes = [c.strip().upper() for c in _SEPARATORS.split(text.strip()) if c.strip()]
    if not codes:
        raise ValueError("expected country codes such as IN or IN,US, or auto")
    if [c.lower() for c in codes] == [AUTO]:
        return AUTO
    known = {c for c in holidays.list_supported_countries() if len(c) == 2}  # as phones say
    for code in codes:
        if code.lower() == AUTO:
            raise ValueError("auto observes every contact's own country: give it alone")
        if code not in known:
            near = difflib.get_close_matches(code, sorted(known), n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise ValueError(
                f"{code!r} is not a country the holidays package knows{hint}; "
                "expected ISO 3166 codes such as IN, US, GB, or auto"
            )
    return ",".join(sorted(set(codes)))


def _date(text: str) -> date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date: expected YYYY-MM-DD, e.g. 2026-12-25") from None
