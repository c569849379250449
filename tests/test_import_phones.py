"""Phone parsing: the fast path gives exactly the answer of plain ``phonenumbers``."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from campaigns.importer.phones import PhoneParser

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
TYPES = [
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.VOIP,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN,
    PhoneNumberType.PAGER,
]
DEFAULT_REGIONS = [None, "IN", "US", "GB", "DE", "IT", "AU", "BR", "RU", "KZ", "AR", "MX", "CN"]
_parsers: dict[str | None, PhoneParser] = {}


def parser(region: str | None) -> PhoneParser:
    if region not in _parsers:
        _parsers[region] = PhoneParser(region)
    return _parsers[region]


def written_forms(num: phonenumbers.PhoneNumber) -> list[str]:
    """How people write a number: E.164, international, national, digits, IDD, dashes."""
    e164 = phonenumbers.format_number(num, PhoneNumberFormat.E164)
    intl = phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(num, PhoneNumberFormat.NATIONAL)
    return [e164, intl, national, e164[1:], "00" + e164[1:], intl.replace(" ", "-"), f" {e164} "]


@st.composite
def example_cells(draw: st.DrawFn) -> tuple[str | None, str]:
    """A (default region, cell) pair built from a region's example number, maybe mutated."""
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from(TYPES))
    num = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    if num is None:
        num = phonenumbers.parse("+14155552671")
    cell = draw(st.sampled_from(written_forms(num)))
    if draw(st.booleans()):  # change some digits: often still valid, sometimes not
        digits = st.sampled_from("0123456789")
        cell = "".join(
            draw(digits) if ch.isdigit() and draw(st.integers(0, 4)) == 0 else ch for ch in cell
        )
    default = draw(st.sampled_from([*DEFAULT_REGIONS, region]))
    return default, cell


@settings(max_examples=500, deadline=None)
@given(example_cells())
def test_fast_path_equals_phonenumbers_on_written_numbers(case: tuple[str | None, str]) -> None:
    region, cell = case
    p = parser(region)
    assert p.parse(cell) == p.parse_slow(cell)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(DEFAULT_REGIONS),
    st.from_regex(r"\A\+?[0-9 ().\-]{0,20}\Z"),
)
def test_fast_path_equals_phonenumbers_on_arbitrary_phone_shapes(
    region: str | None, cell: str
) -> None:
    p = parser(region)
    assert p.parse(cell) == p.parse_slow(cell)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DEFAULT_REGIONS), st.text(max_size=30))
def test_any_text_gets_the_same_answer(region: str | None, cell: str) -> None:
    p = parser(region)
    assert p.parse(cell) == p.parse_slow(cell)


def test_fast_path_is_taken_for_usual_shapes() -> None:
    p = PhoneParser("IN")
    cells = ["+91 98450 12345", "09847012345", "919820011223", "98400-23456", "+1 415 555 2671"]
    for cell in cells:
        assert p.parse(cell).valid
    assert p.slow_calls == 0


@pytest.mark.parametrize(
    ("cell", "e164", "zones"),
    [
        ("+91 98450 12345", "+919845012345", ("Asia/Calcutta",)),
        ("098450 12345", "+919845012345", ("Asia/Calcutta",)),
        ("(0)98450-12345", "+919845012345", ("Asia/Calcutta",)),
        ("919845012345", "+919845012345", ("Asia/Calcutta",)),
        ("+1 (415) 555-2671", "+14155552671", ("America/Los_Angeles",)),
        ("+44 7911 123456", "+447911123456", ("Europe/Guernsey", "Europe/Isle_of_Man",
                                              "Europe/Jersey", "Europe/London")),
    ],
)  # fmt: skip
def test_known_numbers(cell: str, e164: str, zones: tuple[str, ...]) -> None:
    r = PhoneParser("IN").parse(cell)
    assert (r.e164, r.timezones, r.error) == (e164, zones, None)


@pytest.mark.parametrize(
    ("region", "cell", "reason"),
    [
        ("IN", "", "missing phone number"),
        ("IN", "   ", "missing phone number"),
        ("IN", "12345", "invalid phone number: not a valid IN (+91) number"),
        ("IN", "+999 1234 5678", "invalid phone number: unknown country code"),
        ("IN", "call me", "invalid phone number: not a phone number"),
        (None, "9845012345", "pass --region"),
    ],
)
def test_invalid_numbers_say_why(region: str | None, cell: str, reason: str) -> None:
    r = PhoneParser(region).parse(cell)
    assert r.e164 is None and r.error is not None and reason in r.error


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown region 'XX'"):
        PhoneParser("XX")
