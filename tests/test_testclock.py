"""The test clock of the calling policy (campaigns/testclock.py): its values, and that the
dial decision reads the shifted calendar while what it stores stays on the real clock. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns.dialing import Decider
from campaigns.errors import UserError
from campaigns.testclock import TEST_CLOCK_OFFSET_ENV, parse_offset
from tests.factories import campaign_record
from tests.test_dispatcher import candidate

KOLKATA = ZoneInfo("Asia/Kolkata")
REAL = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # 12:00 in India, an ordinary Tuesday
TO_REPUBLIC_DAY = datetime(2027, 1, 26, 6, 30, tzinfo=UTC) - REAL  # 12:00 IST, a holiday


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("", timedelta(0)),
        ("3600", timedelta(hours=1)),
        ("-2h", timedelta(hours=-2)),
        ("+24d", timedelta(days=24)),
    ],
)
def test_offsets_are_signed_durations(text: str, offset: timedelta) -> None:
    assert parse_offset(text) == offset


def test_a_bad_offset_names_the_variable() -> None:
    with pytest.raises(UserError, match=f"^{TEST_CLOCK_OFFSET_ENV}: "):
        parse_offset("christmas")


def test_the_decision_reads_the_shifted_calendar_and_stores_real_instants() -> None:
    camp = campaign_record(
        updated_at=REAL, holidays="IN", days="all", window_start="00:00", window_end="24:00"
    )
    india = candidate(phone_e164="+919876543210", timezones="Asia/Kolkata")
    assert Decider(None, clock_offset=timedelta(0))(camp, india, REAL).action == "dial"
    shifted = Decider(None, clock_offset=TO_REPUBLIC_DAY)(camp, india, REAL)
    # the policy believes it is Republic Day: the window opens at midnight on the 27th, which
    # is stored as the real instant that far from now (the claim queries compare real times)
    assert shifted.action == "defer"
    assert shifted.until == datetime(2027, 1, 27, tzinfo=KOLKATA) - TO_REPUBLIC_DAY
    assert shifted.until is not None and REAL < shifted.until < REAL + timedelta(days=1)
