"""The dial decision (campaigns.dialing.Decider): pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from campaigns.dialing import Decider
from storage.campaigns_repo import CampaignRecord
from storage.claims import Candidate
from tests.factories import campaign_record

# a Wednesday, 12:00 in Kolkata (06:30 UTC)
NOON_IST = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)


def campaign(**values: object) -> CampaignRecord:
    return campaign_record(updated_at=NOON_IST, **values)


def candidate(**values: object) -> Candidate:
    base: dict[str, object] = {
        "contact_id": 7,
        "campaign_id": 1,
        "state": "pending",
        "phone_e164": "+919800000001",
        "name": "A",
        "attributes": {},
        "timezones": "Asia/Kolkata",
        "attempts": 0,
        "next_attempt_at": None,
        "suppressed": False,
        "recent_calls": (),
    }
    base.update(values)
    return Candidate(**base)  # type: ignore[arg-type]


def test_dials_inside_the_window() -> None:
    assert Decider(None)(campaign(), candidate(), NOON_IST).action == "dial"


def test_suppressed_number_is_closed_even_inside_the_window() -> None:
    d = Decider(None)(campaign(), candidate(suppressed=True), NOON_IST)
    assert (d.action, d.state) == ("close", "suppressed")


def test_attempt_cap_closes_as_exhausted() -> None:
    d = Decider(None)(campaign(max_attempts=2), candidate(attempts=2), NOON_IST)
    assert (d.action, d.state) == ("close", "exhausted")


def test_unknown_zone_is_never_dialled_unless_the_campaign_sets_one() -> None:
    d = Decider(None)(campaign(), candidate(timezones=None), NOON_IST)
    assert (d.action, d.state) == ("close", "invalid")
    assert "time zone" in (d.reason or "")
    ok = Decider(None)(campaign(timezone="Asia/Kolkata"), candidate(timezones=None), NOON_IST)
    assert ok.action == "dial"


def test_closed_window_defers_to_the_next_opening_in_the_contacts_zone() -> None:
    # 12:00 in Kolkata is 01:30 in New York: defer to 09:00 New York time
    d = Decider(None)(campaign(), candidate(timezones="America/New_York"), NOON_IST)
    assert d.action == "defer"
    assert d.until == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # 09:00 EST


def test_a_number_in_two_zones_waits_until_both_are_open() -> None:
    d = Decider(None)(
        campaign(window_start="09:00", window_end="20:00"),
        candidate(timezones="Asia/Kolkata,Europe/London"),
        NOON_IST,
    )
    # 06:30 in London: both open from 09:00 London (14:30 IST) on
    assert d.action == "defer"
    assert d.until == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_campaign_end_expires_the_contact() -> None:
    d = Decider(None)(campaign(end_at=NOON_IST - timedelta(minutes=1)), candidate(), NOON_IST)
    assert (d.action, d.state) == ("close", "expired")


def test_rolling_daily_cap_defers_until_the_oldest_call_leaves_the_window() -> None:
    calls = (NOON_IST - timedelta(hours=20), NOON_IST - timedelta(hours=5))
    d = Decider(2)(campaign(), candidate(recent_calls=calls), NOON_IST)
    assert d.action == "defer"
    assert d.until is not None and d.until >= calls[0] + timedelta(hours=24)
    # the campaign can tighten the daemon's cap, never loosen it
    assert Decider(3)(campaign(), candidate(recent_calls=calls), NOON_IST).action == "dial"
    tight = Decider(3)(campaign(daily_cap_per_number=2), candidate(recent_calls=calls), NOON_IST)
    assert tight.action == "defer"
