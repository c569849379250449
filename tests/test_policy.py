"""The calling policy: parsers, windows in the contacts' zones (DST included), re-dial delays."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from campaigns.policy import (
    DEFAULT_RETRY_DELAYS,
    END_OF_DAY,
    CallingPolicy,
    format_days,
    format_duration,
    format_window,
    parse_days,
    parse_duration,
    parse_window,
    parse_zone,
)
from storage.campaigns_repo import get_campaign
from storage.engine import make_engine
from storage.models import Campaign
from tests.factories import campaign_record

NY, LA, KOL = "America/New_York", "America/Los_Angeles", "Asia/Kolkata"
LON, LHI = "Europe/London", "Australia/Lord_Howe"


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def local(
    zone: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0, *, fold: int = 0
) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(zone), fold=fold)


def policy(window: str = "09:00-20:00", days: str = "all", **kw: object) -> CallingPolicy:
    start, end = parse_window(window)
    return CallingPolicy(window_start=start, window_end=end, days=parse_days(days), **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ parsers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00-20:00", (time(9), time(20))),
        ("9-20", (time(9), time(20))),
        (" 8:30 - 17:45 ", (time(8, 30), time(17, 45))),
        ("00:00-24:00", (time(0), END_OF_DAY)),
        ("9:00-24", (time(9), END_OF_DAY)),
    ],
)
def test_parse_window_accepts_the_documented_forms(text: str, expected: tuple[time, time]) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["", "9", "9-", "-20", "25-26", "9:60-20", "9h-20h", "9-20-21"])
def test_parse_window_rejects_garbage_naming_text_and_forms(text: str) -> None:
    with pytest.raises(ValueError, match="invalid calling window") as err:
        parse_window(text)
    assert repr(text) in str(err.value)
    assert "09:00-20:00" in str(err.value)


@pytest.mark.parametrize("text", ["20:00-09:00", "22-6", "9-9"])
def test_parse_window_refuses_overnight_windows_clearly(text: str) -> None:
    with pytest.raises(ValueError, match="overnight windows are not supported"):
        parse_window(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon-sat", {0, 1, 2, 3, 4, 5}),
        ("Mon,Wed,FRI", {0, 2, 4}),
        ("weekdays", {0, 1, 2, 3, 4}),
        ("weekends", {5, 6}),
        ("all", set(range(7))),
        ("ALL", set(range(7))),
        ("fri-mon", {4, 5, 6, 0}),
        ("monday - wednesday, sunday", {0, 1, 2, 6}),
        ("sat,sat", {5}),
    ],
)
def test_parse_days(text: str, expected: set[int]) -> None:
    assert parse_days(text) == frozenset(expected)


@pytest.mark.parametrize("text", ["", " ", "mon-", "funday", "mon-tue-wed", "mon;tue", "1-5"])
def test_parse_days_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="invalid days") as err:
        parse_days(text)
    assert "mon-sat" in str(err.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("90s", 90),
        ("1h30m", 5400),
        ("1H 30M", 5400),
        ("3600", 3600),
        ("1.5h", 5400),
        ("1w", 7 * 86400),
        ("0", 0),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "-5", "5x", "30m2h", "1h1h", "1 hour", "inf", "1e3"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as err:
        parse_duration(text)
    assert repr(text) in str(err.value)
    assert "1h30m" in str(err.value)


def test_parse_duration_rejects_absurd_lengths() -> None:
    with pytest.raises(ValueError, match="ten years"):
        parse_duration("99999999999999999999d")


clock_minutes = st.integers(min_value=0, max_value=24 * 60)


@given(clock_minutes, clock_minutes)
def test_window_round_trips(a: int, b: int) -> None:
    if a == b:
        return
    lo, hi = sorted((a, b))
    if lo == 24 * 60:
        return

    def t(m: int) -> time:
        return END_OF_DAY if m == 24 * 60 else time(m // 60, m % 60)

    text = format_window(t(lo), t(hi))
    assert parse_window(text) == (t(lo), t(hi))


@given(st.frozensets(st.integers(0, 6), min_size=1))
def test_days_round_trip(days: frozenset[int]) -> None:
    assert parse_days(format_days(days)) == days


@given(st.integers(min_value=0, max_value=3650 * 86400))
def test_duration_round_trips(seconds: int) -> None:
    d = timedelta(seconds=seconds)
    assert parse_duration(format_duration(d)) == d
    assert parse_duration(str(seconds)) == d


@given(st.text(max_size=30))
@settings(max_examples=300)
def test_parsers_raise_only_value_error_on_garbage(text: str) -> None:
    for parse in (parse_window, parse_days, parse_duration):
        with contextlib.suppress(ValueError):
            parse(text)


@pytest.mark.parametrize("name", ["America", "", "/etc/passwd", "Etc/Unknown", "x" * 300, "../x"])
def test_parse_zone_rejects_what_is_not_a_zone(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_zone(name)


# ------------------------------------------------------------------------------ from_campaign


def test_from_campaign_reads_a_stored_campaign(db_url: str) -> None:
    engine = make_engine(db_url)
    with Session(engine) as session:
        row = Campaign(name="c", agent_id="a", retry_delays={"failed": 600})
        session.add(row)
        session.commit()
        campaign_id = row.id
    pol = CallingPolicy.from_campaign(get_campaign(engine, campaign_id))
    engine.dispose()
    # the schema defaults: 09:00-20:00, mon-sat, 3 attempts, 2 h delay, voicemail re-dialled
    assert (pol.window_start, pol.window_end) == (time(9), time(20))
    assert pol.days == frozenset(range(6))
    assert pol.max_attempts == 3 and pol.redial_voicemail and pol.timezone is None
    assert pol.redial_delay("no_answer", 1) == timedelta(hours=2)
    assert pol.redial_delay("busy", 1) == timedelta(minutes=15)
    assert pol.redial_delay("failed", 1) == timedelta(minutes=10)  # the override


def test_from_campaign_names_a_bad_setting() -> None:
    camp = campaign_record(
        id=7, window_start="09:00", window_end="20:00", days="mon-fri", retry_delay_s=60,
        retry_delays={"hangup": 5}, timezone=None, start_at=None, end_at=None, max_attempts=2,
        redial_voicemail=False, daily_cap_per_number=None,
    )  # fmt: skip
    with pytest.raises(ValueError, match="campaign 7: retry delay for unknown outcome 'hangup'"):
        CallingPolicy.from_campaign(camp)
    camp = replace(camp, retry_delays={"busy": -5})
    with pytest.raises(ValueError, match="campaign 7: retry delay for busy is not a number"):
        CallingPolicy.from_campaign(camp)
    camp = replace(camp, retry_delays={}, days="someday")
    with pytest.raises(ValueError, match="campaign 7: invalid days 'someday'"):
        CallingPolicy.from_campaign(camp)
    camp = replace(camp, days="all", timezone="America")
    with pytest.raises(ValueError, match="campaign 7: unknown time zone 'America'"):
        CallingPolicy.from_campaign(camp)


# ------------------------------------------------------------------------------ zones


def test_zones_for() -> None:
    pol = policy()
    assert pol.zones_for(f"{NY}, {LA}") == (NY, LA)
    assert pol.zones_for(f"{NY},{NY}") == (NY,)
    assert pol.zones_for(None) == ()
    assert pol.zones_for("") == ()
    assert pol.zones_for("Etc/Unknown") == ()
    assert pol.zones_for("Mars/Olympus_Mons") == ()
    assert pol.zones_for(f"{NY},America") == ()  # a directory of the zone database
    assert pol.zones_for(f"{NY},Etc/Unknown") == ()
    assert policy(timezone=KOL).zones_for(f"{NY},{LA}") == (KOL,)
    assert policy(timezone=KOL).zones_for(None) == (KOL,)
    with pytest.raises(ValueError, match="unknown time zone 'Nowhere/Land'"):
        policy(timezone="Nowhere/Land")


# ------------------------------------------------------------------------------ is_open


def test_is_open_in_the_contacts_local_time() -> None:
    pol = policy("09:00-20:00")
    # 14:00 UTC = 19:30 Kolkata (open), 09:00 New York (open: start included), 06:00 LA
    now = utc(2026, 11, 23, 14, 0)
    assert pol.is_open((KOL,), now)
    assert pol.is_open((NY,), now)
    assert not pol.is_open((LA,), now)
    assert not pol.is_open((NY, LA), now)  # a number in both zones: both must be open
    assert not pol.is_open((), now)
    # the end is excluded
    assert not pol.is_open((NY,), local(NY, 2026, 11, 23, 20, 0))
    assert pol.is_open((NY,), local(NY, 2026, 11, 23, 19, 59))


def test_is_open_uses_the_local_weekday() -> None:
    pol = policy("09:00-20:00", "mon-fri")
    # Friday 23:00 UTC is Saturday 04:30 in Kolkata, Friday 18:00 in New York
    fri_night = utc(2026, 11, 27, 23, 0)
    assert pol.is_open((NY,), fri_night)
    assert not pol.is_open((KOL,), local(KOL, 2026, 11, 28, 10, 0))  # Saturday
    assert pol.is_open((KOL,), local(KOL, 2026, 11, 27, 10, 0))  # Friday


def test_is_open_respects_start_and_end_dates() -> None:
    pol = policy(start_at=utc(2026, 12, 1), end_at=utc(2026, 12, 10))
    assert not pol.is_open((LON,), utc(2026, 11, 30, 12))
    assert pol.is_open((LON,), utc(2026, 12, 1, 12))
    assert not pol.is_open((LON,), utc(2026, 12, 10, 12))


def test_is_open_across_dst_in_new_york() -> None:
    pol = policy("09:00-10:00")
    # 13:30 UTC is 09:30 EDT in summer (open) but 08:30 EST in winter (closed)
    assert pol.is_open((NY,), utc(2026, 7, 1, 13, 30))
    assert not pol.is_open((NY,), utc(2026, 12, 1, 13, 30))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        policy().is_open((NY,), datetime(2026, 1, 1, 12))


# ------------------------------------------------------------------------------ next_opening


def test_next_opening_is_now_when_open() -> None:
    now = utc(2026, 11, 23, 15, 7, 13)
    assert policy().next_opening((NY,), now) == now


def test_next_opening_next_morning_and_next_allowed_day() -> None:
    pol = policy("09:00-20:00", "mon-fri")
    # Friday 21:00 New York -> Monday 09:00 New York
    assert pol.next_opening((NY,), local(NY, 2026, 11, 27, 21, 0)) == local(NY, 2026, 11, 30, 9)
    # Tuesday 07:00 Kolkata -> same day 09:00
    assert pol.next_opening((KOL,), local(KOL, 2026, 11, 24, 7, 0)) == local(KOL, 2026, 11, 24, 9)


def test_next_opening_intersects_several_zones() -> None:
    pol = policy("09:00-20:00")
    # New York and Los Angeles together: from 09:00 LA (12:00 NY) to 20:00 NY (17:00 LA)
    opening = pol.next_opening((NY, LA), local(NY, 2026, 11, 24, 6, 0))
    assert opening == local(LA, 2026, 11, 24, 9, 0)
    # after the common window closed (20:00 NY): next day 09:00 LA
    assert pol.next_opening((NY, LA), local(NY, 2026, 11, 24, 20, 0)) == local(LA, 2026, 11, 25, 9)


def test_next_opening_none_when_zones_never_overlap() -> None:
    pol = policy("09:00-12:00")
    # Kolkata and New York are 10.5 h apart: a 3-hour window never overlaps
    assert pol.next_opening((KOL, NY), utc(2026, 11, 23)) is None
    assert not pol.feasible((KOL, NY), utc(2026, 11, 23))
    assert not pol.feasible((NY, LA), utc(2026, 11, 23))  # 12:00 NY is 09:00 LA: end excluded
    assert policy("09:00-12:01").feasible((NY, LA), utc(2026, 11, 23))
    assert not pol.feasible(())
    for _ in range(2):  # the answer for "from now" is remembered; same answer either way
        assert not pol.feasible((KOL, NY))
        assert pol.feasible((NY,))


def test_next_opening_none_after_end_and_waits_for_start() -> None:
    pol = policy(start_at=utc(2026, 12, 1, 20), end_at=utc(2026, 12, 3))
    assert pol.next_opening((LON,), utc(2026, 11, 1)) == utc(2026, 12, 2, 9)
    assert pol.next_opening((LON,), utc(2026, 12, 2, 20)) is None  # closed until the end
    # an end date makes overlapping-only-later windows infeasible too
    assert pol.next_opening((LON,), utc(2026, 12, 3)) is None


def test_next_opening_on_a_spring_forward_morning() -> None:
    # 2026-03-08, New York: 02:00 EST jumps to 03:00 EDT. A window starting at 02:30 opens
    # at the jump (03:00 EDT = 07:00 UTC), not at 02:30 EST read with either offset.
    pol = policy("02:30-20:00")
    assert pol.next_opening((NY,), utc(2026, 3, 8, 5)) == utc(2026, 3, 8, 7)
    # Lord Howe jumps 30 minutes (02:00 +10:30 -> 02:30 +11) on 2026-10-04
    pol = policy("02:10-20:00")
    opening = pol.next_opening((LHI,), local(LHI, 2026, 10, 4, 1, 0))
    assert opening == local(LHI, 2026, 10, 4, 2, 30)
    assert opening.astimezone(UTC) == utc(2026, 10, 3, 15, 30)


def test_next_opening_on_a_fall_back_night() -> None:
    # 2026-11-01, New York: 02:00 EDT falls back to 01:00 EST. A window ending at 01:30 closes
    # at 01:30 EDT and opens again at the fall-back, when the clock reads 01:00 once more.
    pol = policy("00:00-01:30")
    after = local(NY, 2026, 11, 1, 1, 45)
    assert not pol.is_open((NY,), after)
    # (compared in UTC: PEP 495 makes an ambiguous local time unequal to any other zone's)
    assert pol.next_opening((NY,), after) == local(NY, 2026, 11, 1, 1, 0, fold=1).astimezone(UTC)
    assert pol.next_opening((NY,), after) == utc(2026, 11, 1, 6, 0)
    # Lord Howe falls back 30 minutes (02:00 +11 -> 01:30 +10:30) on 2026-04-05
    pol = policy("09:00-20:00")
    opening = pol.next_opening((LHI,), utc(2026, 4, 4, 12))
    assert opening == local(LHI, 2026, 4, 5, 9, 0)
    assert opening.astimezone(UTC) == utc(2026, 4, 4, 22, 30)


def test_london_new_york_overlap_depends_on_dst_weeks() -> None:
    # 12:00-13:00 in both zones never overlaps (5 h apart, 4 h in the weeks between the US
    # and the EU changes) ...
    assert policy("12:00-13:00").next_opening((LON, NY), utc(2026, 1, 1)) is None
    # ... but 08:00-13:00 overlaps 08:00-09:00 NY only while the gap is 4 h (2026-03-08 to
    # 2026-03-29): searching from January finds March.
    pol = policy("08:00-13:00")
    assert pol.next_opening((LON, NY), utc(2026, 1, 1)) == local(
        NY, 2026, 3, 8, 8, 0
    )  # the very morning
    assert pol.feasible((LON, NY), utc(2026, 1, 1))


def test_next_opening_memo_does_not_leak_between_questions() -> None:
    pol = policy("09:00-20:00", "mon-fri")
    first = pol.next_opening((NY,), local(NY, 2026, 11, 27, 21, 0))
    assert first == local(NY, 2026, 11, 30, 9)
    # a later question inside the remembered span gets the same answer ...
    assert pol.next_opening((NY,), local(NY, 2026, 11, 28, 12, 0)) == first
    # ... an earlier one and one past it are computed afresh
    assert pol.next_opening((NY,), local(NY, 2026, 11, 27, 8, 0)) == local(NY, 2026, 11, 27, 9)
    later = local(NY, 2026, 11, 30, 12, 0)
    assert pol.next_opening((NY,), later) == later


ZONES = [NY, LA, KOL, LON, LHI, "Asia/Kathmandu", "Pacific/Chatham", "America/Chicago"]


@st.composite
def policies(draw: st.DrawFn) -> CallingPolicy:
    a = draw(st.integers(0, 24 * 60 - 1))
    b = draw(st.integers(a + 1, 24 * 60))
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    return CallingPolicy(
        window_start=time(a // 60, a % 60),
        window_end=END_OF_DAY if b == 24 * 60 else time(b // 60, b % 60),
        days=days,
    )


# instants near the DST changes of 2026 as well as anywhere in the year, to the second
dst_days = [utc(2026, 3, 8), utc(2026, 3, 29), utc(2026, 4, 5), utc(2026, 10, 4), utc(2026, 11, 1)]
instants = st.one_of(
    st.builds(
        lambda d, s: d + timedelta(seconds=s),
        st.sampled_from(dst_days),
        st.integers(-2 * 86400, 2 * 86400),
    ),
    st.integers(0, 365 * 86400).map(lambda s: utc(2026, 1, 1) + timedelta(seconds=s)),
)


@given(policies(), st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True), instants)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_next_opening_is_open_and_nothing_earlier_is(
    pol: CallingPolicy, zones: list[str], after: datetime
) -> None:
    opening = pol.next_opening(zones, after)
    if opening is None:
        horizon = timedelta(days=8)  # brute-force check of the next 8 days only
    else:
        assert opening >= after
        assert pol.is_open(zones, opening)
        horizon = opening - after
    # no earlier minute boundary (nor `after` itself) is open
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert opening == after or not pol.is_open(zones, after)
    while t - after < horizon:
        assert not pol.is_open(zones, t), f"{t} is open, before {opening}"
        t += timedelta(minutes=1)


# ------------------------------------------------------------------------------ re-dials


def test_redial_delay_by_outcome() -> None:
    pol = policy(max_attempts=3, retry_delays=DEFAULT_RETRY_DELAYS)
    assert pol.redial_delay("answered", 1) is None
    assert pol.redial_delay("no_answer", 1) == timedelta(hours=2)
    assert pol.redial_delay("busy", 2) == timedelta(minutes=15)
    assert pol.redial_delay("failed", 1) == timedelta(hours=2)
    assert pol.redial_delay("voicemail", 1) == timedelta(hours=2)
    assert pol.redial_delay("no_outcome", 1) == timedelta(hours=2)
    assert pol.redial_delay("no_answer", 3) is None  # the cap counts attempts made
    with pytest.raises(ValueError, match="unknown call outcome 'hangup'"):
        pol.redial_delay("hangup", 1)


def test_redial_voicemail_option_and_overrides() -> None:
    pol = policy(
        max_attempts=5,
        redial_voicemail=False,
        retry_delays={"no_answer": timedelta(minutes=5), "busy": timedelta(minutes=1)},
    )
    assert pol.redial_delay("voicemail", 1) is None
    assert pol.redial_delay("no_answer", 4) == timedelta(minutes=5)
    assert pol.redial_delay("busy", 1) == timedelta(minutes=1)
    assert pol.redial_delay("failed", 1) == DEFAULT_RETRY_DELAYS["failed"]
    with pytest.raises(ValueError, match="unknown outcomes"):
        policy(retry_delays={"hangup": timedelta(1)})


def test_short_retry_delay_keeps_busy_at_most_it() -> None:
    camp = campaign_record(
        id=1, window_start="9", window_end="20", days="all", retry_delay_s=300,
        retry_delays={}, timezone=KOL, start_at=None, end_at=None, max_attempts=4,
        redial_voicemail=True, daily_cap_per_number=2,
    )  # fmt: skip
    pol = CallingPolicy.from_campaign(camp)
    assert pol.redial_delay("busy", 1) == timedelta(minutes=5)
    assert pol.daily_cap_per_number == 2
    assert pol.zones_for(None) == (KOL,)
