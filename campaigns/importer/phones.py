"""Phone numbers: parse a cell as written into E.164 and the time zones the number may be in.

Two paths give the same answer:

* :meth:`PhoneParser.parse_slow` is the reference: ``phonenumbers.parse`` against the default
  region, ``is_valid_number``, E.164 formatting and ``phonenumbers.timezone``. About 13,000
  numbers/s on one core, too slow for a million-row file.
* :meth:`PhoneParser.parse` is the fast path used by the importer (about 5x faster). For the
  common shapes of a cell (an optional leading ``+`` then ASCII digits, spaces, dashes, dots
  and parentheses) it works on the digits and the plus alone, and caches its answers by
  that compact key (a file often repeats a number). It follows the same steps as
  ``phonenumbers.parse`` (country code, national prefix stripping, length checks) and
  ``is_valid_number`` (region for a shared country code, number type) with the library's own
  metadata, its patterns compiled once per region. Whenever a case is unusual (an IDD prefix,
  a leading zero kept in the national number, a non-geographic code, anything the fast path
  does not confirm as valid) it defers to the slow path, so the fast path can only ever
  answer "valid" exactly where the library does. ``tests/test_import_phones.py``
  property-tests the two paths against each other.

Time zones come back as a tuple of IANA names; ``()`` when ``phonenumbers`` does not know the
zone ("Etc/Unknown").

An extension (``+1 415 555 0100 ext 12``, ``x12``, ``#12``) is kept in
:attr:`PhoneResult.extension`; the E.164 number, the one dialled, is the main number. A cell
a spreadsheet turned into scientific notation (``9.19876543210E+11``) gets a reason saying so.

The module runs past 400 lines on purpose: the fast path mirrors the library's parse and
validation step by step, and reads best next to the reference it must agree with.
"""

from __future__ import annotations

import re
from re import Pattern
from typing import NamedTuple

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    NumberParseException,
    PhoneMetadata,
    PhoneNumberFormat,
    PhoneNumberType,
)
from phonenumbers import timezone as pn_timezone
from phonenumbers.phonenumberutil import is_number_type_geographical
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

UNKNOWN_ZONE = "Etc/Unknown"
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' _MIN_LENGTH_FOR_NSN / _MAX_LENGTH_FOR_NSN
# the fast path's shape: an optional leading "+", then ASCII digits and " ().-"
_SEPARATORS = str.maketrans("", "", " ().-")
_COUNTRY_CODES = {str(cc): cc for cc in COUNTRY_CODE_TO_REGION_CODE}
_MAX_INPUT = 250  # phonenumbers' _MAX_INPUT_STRING_LENGTH
_CACHE_LIMIT = 100_000  # entries; the cache is cleared when it grows past this

# a number a spreadsheet stored as a float and wrote in scientific notation (the last
# digits are gone: 919876543210 becomes 9.19876543210E+11, or 9,19876543E+11 in some locales)
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d*)?[eE][+-]?\d+", re.ASCII)
REASON_SCIENTIFIC = (
    "invalid phone number: a spreadsheet turned it into scientific notation (like "
    "9.19876543210E+11) and its last digits are lost. Format the phone column as Text in the "
    "spreadsheet (or import it as text), restore the numbers, and save as CSV again"
)
#: A number written without +country code while no --region was given (the importer counts
#: them, so that the summary can say "pass --region").
REASON_NO_COUNTRY_CODE = (
    "invalid phone number: no country code (write it as +CC... or pass --region)"
)

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}

# the order of phonenumbers' _number_type_helper (the first matching type wins)
_FIXED = -1  # stands for "fixed line, or fixed line or mobile" inside number_type
_TYPE_ORDER: tuple[tuple[str, int], ...] = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)


class PhoneResult(NamedTuple):
    """The verdict on one phone cell: ``e164`` and ``timezones`` when valid, else ``error``;
    ``extension`` holds the digits of an extension written after a valid number."""

    e164: str | None
    timezones: tuple[str, ...] = ()
    error: str | None = None
    extension: str | None = None

    @property
    def valid(self) -> bool:
        return self.e164 is not None


# ----------------------------------------------------------------------------- metadata


class _Desc:
    """A compiled ``PhoneNumberDesc``: possible lengths and the national number pattern."""

    __slots__ = ("lengths", "pattern")

    def __init__(self, desc: object | None) -> None:
        pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
        self.pattern: Pattern[str] | None = re.compile(pattern) if pattern else None
        lengths = getattr(desc, "possible_length", None) or ()
        self.lengths: frozenset[int] = frozenset(lengths)

    def matches(self, nsn: str) -> bool:
        """phonenumbers' ``_is_number_matching_desc``."""
        if self.pattern is None:
            return False
        if self.lengths and len(nsn) not in self.lengths:
            return False
        return self.pattern.fullmatch(nsn) is not None


class _Region:
    """One region's metadata, compiled once for the fast path."""

    def __init__(self, meta: PhoneMetadata) -> None:
        self.country_code: int = meta.country_code or 0
        self.cc_str = str(meta.country_code)
        self.general = _Desc(meta.general_desc)
        self.types = [(t, _Desc(getattr(meta, name))) for name, t in _TYPE_ORDER]
        self.fixed_line = _Desc(meta.fixed_line)
        self.mobile = _Desc(meta.mobile)
        self.same_mobile_fixed = bool(meta.same_mobile_and_fixed_line_pattern)
        self._by_length: dict[int, tuple[Pattern[str] | None, tuple[int, ...]]] = {}
        self.leading_digits = re.compile(meta.leading_digits) if meta.leading_digits else None
        self.idd = re.compile(meta.international_prefix) if meta.international_prefix else None
        npp = meta.national_prefix_for_parsing
        self.national_prefix = re.compile(npp) if npp else None
        self.transform_rule = meta.national_prefix_transform_rule or None
        # phonenumbers' _test_number_length(number, metadata) depends on the length only
        general = meta.general_desc
        self._lengths = sorted(general.possible_length or ()) if general else []
        self._local_lengths = frozenset(
            (general.possible_length_local_only or ()) if general else ()
        )

    def stripping_allowed(self, n: int) -> bool:
        """True when ``_test_number_length`` of an ``n``-digit number is IS_POSSIBLE or
        TOO_LONG (what ``parse`` requires to keep a stripped national prefix)."""
        lengths = self._lengths
        if not lengths or n in self._local_lengths or n < lengths[0]:
            return False
        return n in lengths or n > lengths[-1]

    def too_long(self, n: int) -> bool:
        return bool(self._lengths) and n not in self._local_lengths and n > self._lengths[-1]

    def number_type(self, nsn: str) -> int:
        """phonenumbers' ``_number_type_helper``: one combined pattern per length, whose
        alternatives are the type patterns in the library's order (the first that matches the
        whole number wins, as in the library's chain of ``if``)."""
        n = len(nsn)
        compiled = self._by_length.get(n)
        if compiled is None:
            compiled = self._by_length[n] = self._compile_for_length(n)
        pattern, kinds = compiled
        if pattern is None:
            return PhoneNumberType.UNKNOWN
        m = pattern.fullmatch(nsn)
        if m is None or m.lastindex is None:
            return PhoneNumberType.UNKNOWN
        kind = kinds[m.lastindex - 1]
        if kind == _FIXED:
            if self.same_mobile_fixed or self.mobile.matches(nsn):
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        return kind

    def _compile_for_length(self, n: int) -> tuple[Pattern[str] | None, tuple[int, ...]]:
        general = self.general
        if general.pattern is None or (general.lengths and n not in general.lengths):
            return None, ()
        candidates = [*self.types, (_FIXED, self.fixed_line)]
        if not self.same_mobile_fixed:
            candidates.append((PhoneNumberType.MOBILE, self.mobile))
        parts, kinds = [], []
        for kind, desc in candidates:
            if desc.pattern is None or (desc.lengths and n not in desc.lengths):
                continue
            if desc.pattern.groups:  # none today; the group numbering below relies on it
                raise RuntimeError("phonenumbers metadata pattern with capturing groups")
            parts.append(f"({desc.pattern.pattern})")
            kinds.append(kind)
        if not parts:
            return None, ()
        combined = f"(?=(?:{general.pattern.pattern})\\Z)(?:{'|'.join(parts)})"
        return re.compile(combined), tuple(kinds)

    def general_match(self, number: str) -> bool:
        """phonenumbers' ``_match_national_number(number, general_desc, False)``."""
        p = self.general.pattern
        return p is not None and p.fullmatch(number) is not None

    def strip_national_prefix(self, number: str) -> str | None:
        """phonenumbers' ``_maybe_strip_national_prefix_carrier_code``, the number part;
        None when the transform rule applies (the fast path then defers)."""
        if not number or self.national_prefix is None:
            return number
        m = self.national_prefix.match(number)
        if not m:
            return number
        viable = self.general_match(number)
        groups = m.groups()
        if self.transform_rule is None or not groups or groups[-1] is None:
            if viable and not self.general_match(number[m.end() :]):
                return number
            return number[m.end() :]
        return None


_regions: dict[str, _Region] = {}


def _region(code: str) -> _Region | None:
    r = _regions.get(code)
    if r is None:
        meta = PhoneMetadata.metadata_for_region(code, None)
        if meta is None:
            return None
        r = _regions[code] = _Region(meta)
    return r


_country_zones: dict[int, tuple[str, ...]] = {}


def _timezones(cc: int, e164_digits: str, ntype: int) -> tuple[str, ...]:
    """phonenumbers' ``time_zones_for_number`` for a valid number of type ``ntype``: by the
    longest known prefix of the number when its type is geographical, else by country."""
    geographical = is_number_type_geographical(ntype, cc)
    if not geographical:
        zones = _country_zones.get(cc)
        if zones is not None:
            return zones
    data = TIMEZONE_DATA
    key = e164_digits if geographical else str(cc)
    zones = ()
    for n in range(min(TIMEZONE_LONGEST_PREFIX, len(key)), 0, -1):
        found = data.get(key[:n])
        if found is not None:
            zones = _known(found)
            break
    if not geographical:
        _country_zones[cc] = zones
    return zones


_known_cache: dict[tuple[str, ...], tuple[str, ...]] = {}


def _known(zones: tuple[str, ...]) -> tuple[str, ...]:
    """Drop phonenumbers' "Etc/Unknown" placeholder (memoised: there are few distinct lists)."""
    known = _known_cache.get(zones)
    if known is None:
        known = _known_cache[zones] = tuple(z for z in zones if z != UNKNOWN_ZONE)
    return known


# ----------------------------------------------------------------------------- the parser


class PhoneParser:
    """Parses phone cells against a default ``region`` (ISO 3166 code such as ``IN``, or
    None to accept only numbers written with ``+`` and a country code)."""

    def __init__(self, region: str | None) -> None:
        self.region = region.upper() if region else None
        if self.region is not None and PhoneMetadata.metadata_for_region(self.region) is None:
            raise ValueError(f"unknown region {region!r}: use a two-letter code such as IN or US")
        self._home = _region(self.region) if self.region else None
        self._cache: dict[str, PhoneResult] = {}
        self._slow_cache: dict[str, PhoneResult] = {}
        self.fast_hits = 0
        self.slow_calls = 0

    # -- the reference -------------------------------------------------------------------

    def parse_slow(self, raw: str) -> PhoneResult:
        """The reference answer, straight from ``phonenumbers``."""
        text = raw.strip()
        if not text:
            return PhoneResult(None, error="missing phone number")
        if _SCIENTIFIC.fullmatch(text):
            return PhoneResult(None, error=REASON_SCIENTIFIC)
        try:
            num = phonenumbers.parse(text, self.region)
        except NumberParseException as exc:
            why = _PARSE_ERRORS.get(exc.error_type, "not a phone number")
            if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE and not self.region:
                return PhoneResult(None, error=REASON_NO_COUNTRY_CODE)
            return PhoneResult(None, error=f"invalid phone number: {why}")
        if not phonenumbers.is_valid_number(num):
            country = phonenumbers.region_code_for_country_code(num.country_code or 0)
            where = (
                f"+{num.country_code} "
                if country in ("001", "ZZ")
                else (f"{country} (+{num.country_code}) ")
            )
            return PhoneResult(
                None,
                error=f"invalid phone number: not a valid {where}number",
            )
        e164 = phonenumbers.format_number(num, PhoneNumberFormat.E164)
        zones = _known(pn_timezone.time_zones_for_number(num))
        return PhoneResult(e164, zones, None, num.extension or None)

    # -- the fast path ------------------------------------------------------------------

    def parse(self, raw: str) -> PhoneResult:
        """Same answer as :meth:`parse_slow`, fast for the usual shapes of a phone cell."""
        text = raw.strip()
        plus = text[:1] == "+"
        digits = (text[1:] if plus else text).translate(_SEPARATORS)
        if len(text) > _MAX_INPUT or not (digits.isdigit() and digits.isascii()):
            return self._slow(text)
        key = "+" + digits if plus else digits
        hit = self._cache.get(key)
        if hit is not None:
            self.fast_hits += 1
            return hit
        result = self._fast(plus, digits) if len(digits) >= 4 else None
        if result is None:
            # the slow path sees the text itself, punctuation included
            return self._slow(text)
        self.fast_hits += 1
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = result  # _fast depends on the key alone
        return result

    def _slow(self, text: str) -> PhoneResult:
        """:meth:`parse_slow`, memoised by the exact text: the cells the fast path leaves
        are mostly the same few placeholders ("", "n/a", "12345") repeated down a file,
        and at ~13,000 calls/s they would cost a third of the parsing time."""
        hit = self._slow_cache.get(text)
        if hit is None:
            self.slow_calls += 1
            if len(self._slow_cache) >= _CACHE_LIMIT:
                self._slow_cache.clear()
            hit = self._slow_cache[text] = self.parse_slow(text)
        return hit

    def _fast(self, plus: bool, d: str) -> PhoneResult | None:
        """A valid result, or None to defer to the slow path."""
        home = self._home
        cc = 0
        nn = d
        meta: _Region | None
        if plus:
            if d[0] == "0":
                return None
            for n in (1, 2, 3):
                code = _COUNTRY_CODES.get(d[:n])
                if code is not None:
                    cc, nn = code, d[n:]
                    break
            else:
                return None
        else:
            if home is None or (home.idd is not None and home.idd.match(d)):
                return None
            if d.startswith(home.cc_str):
                potential = home.strip_national_prefix(d[len(home.cc_str) :])
                if potential is None:
                    return None
                if (not home.general_match(d) and home.general_match(potential)) or (
                    home.too_long(len(d))
                ):
                    cc, nn = home.country_code, potential
            if cc == 0:
                cc = home.country_code
        regions = COUNTRY_CODE_TO_REGION_CODE[cc]
        main = regions[0]
        if main == "001":
            return None
        meta = home if (home is not None and self.region == main) else _region(main)
        if meta is None or len(nn) < _MIN_NSN:
            return None
        stripped = meta.strip_national_prefix(nn)
        if stripped is None:
            return None
        if meta.stripping_allowed(len(stripped)):
            nn = stripped
        if not (_MIN_NSN <= len(nn) <= _MAX_NSN) or nn[0] == "0":
            return None
        # is_valid_number: the region of the number, then its type
        if len(regions) == 1:
            owner = meta
        else:
            owner = None
            for region_code in regions:
                r = _region(region_code)
                if r is None:
                    continue
                if r.leading_digits is not None:
                    if r.leading_digits.match(nn):
                        owner = r
                        break
                elif r.number_type(nn) != PhoneNumberType.UNKNOWN:
                    owner = r
                    break
            if owner is None:
                return None
        assert owner is not None
        ntype = owner.number_type(nn)
        if ntype == PhoneNumberType.UNKNOWN:
            return None
        digits = f"{cc}{nn}"
        return PhoneResult("+" + digits, _timezones(cc, digits, ntype))
