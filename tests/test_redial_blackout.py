"""Re-dial policy per outcome and on a schedule, blackout dates and public holidays: the
parsers (campaigns/blackout.py, campaigns/services/redial.py), the calling policy and the dial
decision (campaigns/calling.py, campaigns/dialing.py). Pure: no I/O but a temporary file."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.blackout import Blackout, country_of, parse_countries, parse_dates, read_dates_file
from campaigns.calling import CallingPolicy
from campaigns.dialing import Decider, next_contact_state
from campaigns.errors import UserError
from campaigns.services.create import CampaignSpec, check_campaign
from campaigns.services.redial import check_blackout, check_redial, parse_retry, parse_schedule
from storage.claims import Candidate
from storage.states import ContactState, Outcome
from tests.factories import campaign_record
from tests.test_dispatcher import candidate as dispatcher_candidate

KOLKATA = ZoneInfo("Asia/Kolkata")
MIN = timedelta(seconds=120)
# Republic Day, a public holiday in India: Monday 26 January 2026
REPUBLIC_DAY_NOON_IST = datetime(2026, 1, 26, 12, 0, tzinfo=KOLKATA)


def candidate(phone: str, zones: str) -> Candidate:
    return dispatcher_candidate(phone_e164=phone, timezones=zones)


def policy(**values: object) -> CallingPolicy:
    return CallingPolicy.from_campaign(campaign_record(**values))


# ------------------------------------------------------------------------------ --retry parsing


def test_retry_pairs_become_seconds_per_outcome() -> None:
    assert parse_retry("no_answer=2h, busy=15m,failed=30m,voicemail=4h", MIN) == {
        "no_answer": 7200,
        "busy": 900,
        "failed": 1800,
        "voicemail": 14400,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("noanswer=2h", "--retry: unknown outcome 'noanswer' (did you mean no_answer?)"),
        ("busy", "--retry: 'busy' is not OUTCOME=DELAY"),
        ("busy=1m", "--retry busy: at least 120 s, not '1m'"),
        ("busy=soon", "--retry busy: "),
        ("busy=15m,busy=20m", "--retry: busy is given twice"),
        (",", "--retry: expected OUTCOME=DELAY pairs"),
    ],
)
def test_bad_retry_is_one_line_naming_the_option(text: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        parse_retry(text, MIN)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@given(st.text(alphabet="nobusyfailedvcm_=,0123456789hms ", max_size=40))
def test_retry_parsers_refuse_with_one_line_or_answer_seconds(text: str) -> None:
    for parse in (parse_retry, parse_schedule):
        try:
            value = parse(text, MIN)
        except UserError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("--retry")
        else:
            seconds = value.values() if isinstance(value, dict) else value
            assert all(s >= 120 for s in seconds)


def test_schedule_steps_respect_the_floor_and_a_length_limit() -> None:
    assert parse_schedule("30m,2h,1d", MIN) == [1800, 7200, 86400]
    with pytest.raises(UserError, match=r"--retry-schedule: at least 120 s, not '1m'"):
        parse_schedule("30m,1m", MIN)
    with pytest.raises(UserError, match="at most 20 steps"):
        parse_schedule(",".join(["1h"] * 21), MIN)


def test_a_voicemail_delay_contradicting_no_redial_voicemail_is_refused() -> None:
    with pytest.raises(UserError, match="--no-redial-voicemail"):
        check_redial("voicemail=4h", None, False, MIN)


def test_create_stores_the_redial_policy_and_the_blackout(tmp_path: Path) -> None:
    dates = tmp_path / "dates.txt"
    dates.write_text("# office closed\n2027-01-01\n\n2026-12-31  # eve\n", encoding="utf-8")
    new = check_campaign(
        CampaignSpec(
            name="n",
            agent_id="a",
            retry="busy=15m",
            retry_schedule="30m,2h",
            redial_voicemail=False,
            skip_dates="2026-12-25",
            skip_dates_file=dates,
            holidays="in",
        )
    )
    assert (new.retry_delays, new.retry_schedule, new.redial_voicemail) == (
        {"busy": 900},
        [1800, 7200],
        False,
    )
    assert new.skip_dates == ["2026-12-25", "2026-12-31", "2027-01-01"]
    assert new.holidays == "IN"


# ------------------------------------------------------------------------------ dates, countries


@given(st.lists(st.dates(min_value=date(1900, 1, 1), max_value=date(9999, 12, 31)), max_size=8))
def test_skip_dates_round_trip(days: list[date]) -> None:
    assert parse_dates(",".join(d.isoformat() for d in days)) == sorted(set(days))


@given(st.text(max_size=30))
def test_skip_dates_parser_never_crashes(text: str) -> None:
    try:
        parse_dates(text)
    except ValueError as exc:
        assert "expected YYYY-MM-DD" in str(exc)


def test_a_bad_line_in_the_dates_file_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("2026-12-25\n25/12/2026\n", encoding="utf-8")
    with pytest.raises(UserError) as err:
        check_blackout(None, path, None)
    assert str(err.value) == (
        f"--skip-dates-file: {path} line 2: '25/12/2026' is not a date: expected YYYY-MM-DD, "
        "e.g. 2026-12-25"
    )
    with pytest.raises(UserError, match="--skip-dates-file: no file at"):
        check_blackout(None, tmp_path / "missing.txt", None)
    ok = tmp_path / "ok.txt"
    ok.write_text("\ufeff2026-12-25\n# nothing else\n", encoding="utf-8")  # a BOM is fine
    assert read_dates_file(ok) == [date(2026, 12, 25)]


def test_holiday_countries_are_checked_against_the_holidays_package() -> None:
    assert parse_countries("us, in") == "IN,US"
    assert parse_countries("AUTO") == "auto"
    with pytest.raises(ValueError, match="'IX' is not a country the holidays package knows"):
        parse_countries("IX")
    with pytest.raises(ValueError, match="give it alone"):
        parse_countries("IN,auto")


def test_the_country_comes_from_the_number() -> None:
    assert country_of("+919876543210") == "IN"
    assert country_of("+14155550100") == "US"
    assert country_of("+16135550100") == "CA"  # NANP: the area code decides
    assert country_of("+447400123456") == "GB"  # +44 is shared with the Crown dependencies:
    assert country_of("+441481712345") == "GG"  # Guernsey has holidays of its own
    assert country_of("+79161234567") == "RU" and country_of("+77011234567") == "KZ"
    assert country_of("+80012345678") is None  # non-geographic: no country, no holidays
    assert country_of("not a number") is None


def test_india_republic_day_is_closed_for_indian_contacts_only() -> None:
    india = Blackout.from_stored(None, "IN")
    assert india.closes(date(2026, 1, 26), "IN")
    assert not india.closes(date(2026, 1, 27), "IN")
    assert not india.closes(date(2026, 1, 26), "US")  # no holiday where that person is
    assert Blackout.from_stored(None, "auto").closes(date(2026, 7, 4), "US")
    assert not Blackout.from_stored(None, "auto").closes(date(2026, 7, 4), "IN")


# ------------------------------------------------------------------------------ the policy


def test_each_outcome_waits_its_own_delay() -> None:
    pol = policy(retry_delays={"busy": 900, "no_answer": 7200}, retry_delay_s=3600)
    assert pol.redial_delay("busy", 1) == timedelta(minutes=15)
    assert pol.redial_delay("no_answer", 1) == timedelta(hours=2)
    assert pol.redial_delay("failed", 1) == timedelta(hours=1)  # --retry-delay for the rest


def test_the_schedule_escalates_and_its_last_step_repeats() -> None:
    pol = policy(retry_schedule=[1800, 7200, 86400], retry_delays={"failed": 600}, max_attempts=9)
    waits = [pol.redial_delay("no_answer", n) for n in range(1, 6)]
    assert waits == [timedelta(seconds=s) for s in (1800, 7200, 86400, 86400, 86400)]
    assert pol.redial_delay("failed", 3) == timedelta(minutes=10)  # its own delay wins
    assert pol.redial_delay("busy", 3) == timedelta(minutes=15)  # busy: 15 min at most


def test_one_attempt_budget_whatever_the_outcomes() -> None:
    pol = policy(max_attempts=3, retry_delays={"busy": 300, "failed": 600})
    now = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    first = next_contact_state(Outcome.BUSY, 1, pol, "running", now)
    second = next_contact_state(Outcome.FAILED, 2, pol, "running", now)
    third = next_contact_state(Outcome.NO_ANSWER, 3, pol, "running", now)
    assert (first.state, first.next_attempt_at) == (
        ContactState.RETRY_WAIT,
        now + timedelta(minutes=5),
    )
    assert (second.state, second.next_attempt_at) == (
        ContactState.RETRY_WAIT,
        now + timedelta(minutes=10),
    )
    assert third.state == ContactState.EXHAUSTED


def test_no_redial_voicemail_ends_the_contact() -> None:
    move = next_contact_state(
        Outcome.VOICEMAIL, 1, policy(redial_voicemail=False), "running", datetime.now(UTC)
    )
    assert (move.state, move.reason) == (ContactState.DONE, "voicemail is not re-dialled")


def test_a_skip_date_defers_the_call_to_the_next_day_in_the_contacts_zone() -> None:
    # 23:30 UTC on 24 Dec is 05:00 on 25 Dec in Kolkata: Christmas there, not yet in London
    now = datetime(2026, 12, 24, 23, 30, tzinfo=UTC)
    camp = campaign_record(
        updated_at=now, window_start="00:00", window_end="24:00", days="all",
        skip_dates=["2026-12-25"],
    )  # fmt: skip
    decide = Decider(None)
    india = decide(camp, candidate("+919876543210", "Asia/Kolkata"), now)
    assert (india.action, india.until) == ("defer", datetime(2026, 12, 26, tzinfo=KOLKATA))
    london = decide(camp, candidate("+447700900123", "Europe/London"), now)
    assert london.action == "dial"
    tomorrow = decide(camp, candidate("+919876543210", "Asia/Kolkata"), india.until)
    assert tomorrow.action == "dial"


def test_a_holiday_defers_indian_numbers_and_dials_us_ones() -> None:
    camp = campaign_record(
        updated_at=REPUBLIC_DAY_NOON_IST, holidays="IN", days="all",
        window_start="00:00", window_end="24:00",
    )  # fmt: skip
    decide = Decider(None)
    d = decide(camp, candidate("+919876543210", "Asia/Kolkata"), REPUBLIC_DAY_NOON_IST)
    assert (d.action, d.until) == ("defer", datetime(2026, 1, 27, tzinfo=KOLKATA))
    # the same instant, 01:30 in New York: no US holiday, and an IN holiday is not theirs
    us = decide(camp, candidate("+14155550100", "America/New_York"), REPUBLIC_DAY_NOON_IST)
    assert us.action == "dial"
    # without --holidays, Republic Day is an ordinary Monday
    plain = campaign_record(updated_at=REPUBLIC_DAY_NOON_IST, id=2, days="all")
    assert (
        decide(plain, candidate("+919876543210", "Asia/Kolkata"), REPUBLIC_DAY_NOON_IST).action
        == "dial"
    )


def test_consecutive_blackout_days_are_all_skipped() -> None:
    days = [(date(2026, 12, 20) + timedelta(days=k)).isoformat() for k in range(15)]
    pol = policy(skip_dates=days, days="all")
    start = datetime(2026, 12, 20, 10, 0, tzinfo=KOLKATA)
    assert pol.next_opening(("Asia/Kolkata",), start) == datetime(2027, 1, 4, 9, 0, tzinfo=KOLKATA)


def test_the_console_form_takes_the_same_settings() -> None:
    from campaigns.web.forms import parse_create_form

    form = parse_create_form(
        {
            "name": "n",
            "agent_id": "a",
            "retry": "busy=15m",
            "retry_schedule": "30m,2h",
            "redial_voicemail": "false",
            "skip_dates": "2026-12-25",
            "holidays": "IN",
        }
    )
    new = check_campaign(form.spec)
    assert (new.retry_delays, new.retry_schedule, new.redial_voicemail) == (
        {"busy": 900},
        [1800, 7200],
        False,
    )
    assert (new.skip_dates, new.holidays) == (["2026-12-25"], "IN")
