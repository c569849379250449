"""Callbacks the contact asks for: the parser (property tests) and the scheduling rule."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.callbacks import parse_callback, plan_callback
from campaigns.calling import CallingPolicy
from campaigns.dialing import Decider, OutcomeRules
from campaigns.errors import UserError
from campaigns.services.create import CampaignSpec, check_campaign
from scheduler.sandbox.sim import derive_facts
from storage.campaigns_repo import CampaignRecord
from storage.claims import Candidate
from storage.outcomes import ContactMove
from storage.states import ContactState, Outcome
from tests.factories import campaign_record as campaign

ZONES = [ZoneInfo(z) for z in ("Asia/Kolkata", "America/New_York", "Europe/London", "UTC")]
zones = st.sampled_from(ZONES)
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)
KOLKATA = ZoneInfo("Asia/Kolkata")
# Tuesday 1 December 2026, 10:00 in Kolkata
END = datetime(2026, 12, 1, 10, 0, tzinfo=KOLKATA)
POLICY = CallingPolicy(window_start=time(9), window_end=time(20), days=frozenset(range(7)))


@given(instants, zones, zones)
def test_iso_with_an_offset_is_that_instant_whatever_the_zone(
    at: datetime, shown_in: ZoneInfo, zone: ZoneInfo
) -> None:
    text = at.astimezone(shown_in).isoformat()
    assert parse_callback(text, zone=zone, ended_at=END) == at


def _exists(naive: datetime, zone: ZoneInfo) -> bool:
    """Is this wall time real in ``zone`` (not skipped by a daylight-saving jump)?"""
    back = naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back == naive


@given(instants, zones)
def test_iso_without_an_offset_is_the_contacts_wall_time(at: datetime, zone: ZoneInfo) -> None:
    naive = at.replace(tzinfo=None, microsecond=0)
    for text in (naive.isoformat(), naive.isoformat(sep=" ")):
        got = parse_callback(text, zone=zone, ended_at=END)
        assert got == naive.replace(tzinfo=zone)
        if _exists(naive, zone):
            assert got.astimezone(zone).replace(tzinfo=None) == naive


@given(st.integers(0, 23), st.integers(0, 59), instants, zones)
def test_a_local_time_is_the_next_such_wall_time_after_the_call(
    hour: int, minute: int, ended: datetime, zone: ZoneInfo
) -> None:
    got = parse_callback(f"{hour:02d}:{minute:02d}", zone=zone, ended_at=ended)
    local = got.astimezone(zone)
    assert ended < got <= ended + timedelta(hours=25)
    if _exists(local.replace(tzinfo=None), zone) and _exists(
        datetime.combine(local.date(), time(hour, minute)), zone
    ):
        assert (local.hour, local.minute) == (hour, minute)
    # the NEXT one: the same wall time a day earlier is not after the call's end
    day_before = datetime.combine(local.date() - timedelta(days=1), time(hour, minute))
    assert day_before.replace(tzinfo=zone) <= ended + timedelta(hours=1)


@given(st.integers(1, 12), st.sampled_from(["am", "pm", " pm", "PM", "p.m."]), instants, zones)
def test_tomorrow_with_a_12_hour_time_is_on_the_next_local_day(
    hour: int, ampm: str, ended: datetime, zone: ZoneInfo
) -> None:
    got = parse_callback(f"tomorrow {hour}{ampm}", zone=zone, ended_at=ended)
    assert got == parse_callback(f"{hour}{ampm} tomorrow", zone=zone, ended_at=ended)
    tomorrow = ended.astimezone(zone).date() + timedelta(days=1)
    h24 = hour % 12 + (12 if "p" in ampm.lower() else 0)
    assert got == datetime.combine(tomorrow, time(h24)).replace(tzinfo=zone)
    if _exists(datetime.combine(tomorrow, time(h24)), zone):
        assert got.astimezone(zone).hour == h24


@given(st.text(max_size=30), zones)
def test_anything_else_is_a_value_error_never_a_crash(text: str, zone: ZoneInfo) -> None:
    try:
        got = parse_callback(text, zone=zone, ended_at=END)
    except ValueError:
        return
    assert got.utcoffset() is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("17:00", datetime(2026, 12, 1, 17, 0, tzinfo=KOLKATA)),
        ("9:30", datetime(2026, 12, 2, 9, 30, tzinfo=KOLKATA)),  # past today: tomorrow
        ("5pm", datetime(2026, 12, 1, 17, 0, tzinfo=KOLKATA)),
        ("tomorrow 5pm", datetime(2026, 12, 2, 17, 0, tzinfo=KOLKATA)),
        ("Tomorrow at 17:00", datetime(2026, 12, 2, 17, 0, tzinfo=KOLKATA)),
        ("today 9am", datetime(2026, 12, 1, 9, 0, tzinfo=KOLKATA)),  # past: the rule ignores it
        ("in 2 hours", END + timedelta(hours=2)),
        ("in 90 minutes", END + timedelta(minutes=90)),
        ("in 1h30m", END + timedelta(minutes=90)),
        ("2026-12-03T11:15", datetime(2026, 12, 3, 11, 15, tzinfo=KOLKATA)),
        ("2026-12-03T05:45Z", datetime(2026, 12, 3, 5, 45, tzinfo=UTC)),
    ],
)
def test_forms_people_and_agents_write(text: str, expected: datetime) -> None:
    assert parse_callback(text, zone=KOLKATA, ended_at=END) == expected


@pytest.mark.parametrize("text", ["17", "25:00", "13pm", "soon", "tomorrow", "2026-13-01T10:00"])
def test_unreadable_values_say_which_forms_are_understood(text: str) -> None:
    with pytest.raises(ValueError, match="17:00"):
        parse_callback(text, zone=KOLKATA, ended_at=END)


def _plan(value: str, *, now: datetime = END, callbacks: int = 0, policy: CallingPolicy = POLICY):
    return plan_callback(
        policy,
        entity={"Callback_At": value},
        keys=None,
        max_callbacks=2,
        callbacks=callbacks,
        timezones="Asia/Kolkata",
        ended_at=END,
        now=now,
    )


def test_no_callback_key_means_no_plan() -> None:
    assert (
        plan_callback(
            POLICY,
            entity={"email": "a@b.c"},
            keys=None,
            max_callbacks=2,
            callbacks=0,
            timezones="Asia/Kolkata",
            ended_at=END,
            now=END,
        )
        is None
    )


def test_inside_the_window_the_callback_is_kept_as_asked() -> None:
    plan = _plan("17:00")
    assert plan is not None and plan.at == datetime(2026, 12, 1, 17, tzinfo=KOLKATA)
    assert plan.note is None


def test_outside_the_window_it_moves_to_the_next_opening() -> None:
    plan = _plan("21:30")
    assert plan is not None and plan.at == datetime(2026, 12, 2, 9, tzinfo=KOLKATA)
    assert plan.note is not None and "2026-12-01 21:30 Asia/Kolkata" in plan.note


def test_past_cap_and_end_are_ignored_with_a_note() -> None:
    past = _plan("17:00", now=datetime(2026, 12, 1, 17, 1, tzinfo=KOLKATA))
    assert past is not None and past.at is None and "already past" in (past.note or "")
    capped = _plan("17:00", callbacks=2)
    assert capped is not None and capped.at is None and "cap of 2 callbacks" in (capped.note or "")
    ending = CallingPolicy(
        window_start=time(9),
        window_end=time(20),
        days=frozenset(range(7)),
        end_at=datetime(2026, 12, 1, 16, tzinfo=KOLKATA),
    )
    late = _plan("17:00", policy=ending)
    assert late is not None and late.at is None and "campaign's end" in (late.note or "")
    moved_past_end = _plan("21:00", policy=ending)
    assert moved_past_end is not None and moved_past_end.at is None


def _after(
    camp: CampaignRecord,
    entity: dict[str, str] | None,
    *,
    outcome: Outcome = Outcome.ANSWERED,
    attempts: int = 1,
    callbacks: int = 0,
) -> ContactMove:
    return OutcomeRules().after_outcome(
        camp,
        outcome=outcome,
        entity=entity,
        attempts=attempts,
        now=END,
        callbacks=callbacks,
        timezones="Asia/Kolkata",
        ended_at=END,
    )


def _candidate(camp: CampaignRecord, *, attempts: int, callbacks: int) -> Candidate:
    return Candidate(
        contact_id=1,
        campaign_id=camp.id,
        state="retry_wait",
        phone_e164="+919800000001",
        name=None,
        attributes={},
        timezones="Asia/Kolkata",
        attempts=attempts,
        next_attempt_at=None,
        suppressed=False,
        recent_calls=(),
        callbacks=callbacks,
    )


def test_an_answered_call_asking_for_a_callback_is_redialled_then() -> None:
    camp = campaign(max_attempts=1, window_start="09:00", window_end="20:00", days="all")
    move = _after(camp, {"call_back_at": "tomorrow 5pm"})
    assert move.state is ContactState.RETRY_WAIT
    assert move.next_attempt_at == move.callback_at == datetime(2026, 12, 2, 17, tzinfo=KOLKATA)
    # the callback's call does not use up the single attempt; an ordinary re-dial would
    at = datetime(2026, 12, 2, 17, tzinfo=KOLKATA)
    assert Decider(None)(camp, _candidate(camp, attempts=1, callbacks=1), at).action == "dial"
    assert Decider(None)(camp, _candidate(camp, attempts=1, callbacks=0), at).action == "close"
    # a callback that was ignored leaves the usual rule and a note
    ignored = _after(camp, {"callback_at": "today 9am"})
    assert ignored.state is ContactState.DONE and "already past" in (ignored.callback_note or "")


def test_a_missed_callback_is_redialled_under_the_usual_attempt_budget() -> None:
    two = campaign(max_attempts=2, window_start="09:00", window_end="20:00", days="all")
    again = _after(two, None, outcome=Outcome.NO_ANSWER, attempts=2, callbacks=1)
    assert again.state is ContactState.RETRY_WAIT and again.callback_at is None
    one = campaign(max_attempts=1, window_start="09:00", window_end="20:00", days="all")
    spent = _after(one, None, outcome=Outcome.NO_ANSWER, attempts=2, callbacks=1)
    assert spent.state is ContactState.EXHAUSTED


def test_create_checks_the_callback_options() -> None:
    base = {"name": "x", "agent_id": "a"}
    row = check_campaign(CampaignSpec(**base, max_callbacks=0, callback_keys="cb, when "))
    assert (row.max_callbacks, row.callback_keys) == (0, ["cb", "when"])
    assert check_campaign(CampaignSpec(**base)).callback_keys is None  # the default keys
    with pytest.raises(UserError, match=r"--max-callbacks: 0 .* not -1"):
        check_campaign(CampaignSpec(**base, max_callbacks=-1))
    with pytest.raises(UserError, match="--callback-keys: give comma-separated entity keys"):
        check_campaign(CampaignSpec(**base, callback_keys=" , "))


def test_sandbox_hook_asks_for_a_callback_after_the_calls_end() -> None:
    created = datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp()
    entity, _, _ = derive_facts(
        "Asha", "agent", {"sandbox_callback_in": "90s"}, created, created + 5
    )
    assert entity["callback_at"] == "2026-12-01T10:01:35.000Z"
    assert parse_callback(entity["callback_at"], zone=KOLKATA, ended_at=END) == datetime(
        2026, 12, 1, 10, 1, 35, tzinfo=UTC
    )
    minutes, _, _ = derive_facts("Asha", "agent", {"sandbox_callback_in": "2m"}, created, created)
    assert minutes["callback_at"] == "2026-12-01T10:02:00.000Z"
    not_a_duration, _, _ = derive_facts("Asha", "agent", {"sandbox_callback_in": "soon"}, created)
    assert "callback_at" not in not_a_duration
