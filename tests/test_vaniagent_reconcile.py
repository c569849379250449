"""A lost VaniAgent answer is reconciled by the attempt reference the call's metadata echoes,
not by number and time: two lost attempts to one number each get their own call, whatever
the order the listing shows them in, and a call carrying another attempt's reference is
never taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.providers.base import ListedCall
from scheduler.providers.vaniagent_wire import REF_KEY, to_listed
from scheduler.reconcile import HistoryCoverage, UnknownAttempt, attempt_ref, match_unknown

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PHONE = "+14155550100"


def listed(call_id: str, ref: str | None, at: datetime) -> ListedCall:
    metadata = {REF_KEY: ref} if ref else {}
    rec = to_listed(
        {
            "id": call_id,
            "to_number": PHONE,
            "agent_id": "agent-1",
            "status": "initiated",
            "metadata": metadata,
            "created_at": at.isoformat(),
        }
    )
    assert rec is not None
    return rec


def unknown(attempt_id: int, at: datetime) -> UnknownAttempt:
    return UnknownAttempt(
        attempt_id=attempt_id,
        contact_id=1,
        phone_e164=PHONE,
        agent_id="agent-1",
        created_at=at,
        sent_at=at,
    )


def test_each_lost_attempt_takes_the_call_that_carries_its_reference() -> None:
    # attempt 8's call was created first (its POST reached the server earlier)
    records = [
        listed("call-b", attempt_ref(7), T0 + timedelta(seconds=3)),
        listed("call-a", attempt_ref(8), T0 + timedelta(seconds=1)),
    ]
    verdicts = match_unknown(
        [unknown(7, T0), unknown(8, T0 + timedelta(seconds=1))],
        records,
        linked=(),
        coverage=HistoryCoverage(oldest=T0 - timedelta(minutes=5), reached_end=False),
        now=T0 + timedelta(seconds=5),
    )
    assert {k: v.call_id for k, v in verdicts.matched.items()} == {7: "call-b", 8: "call-a"}


def test_a_call_with_another_attempts_reference_is_never_taken() -> None:
    records = [listed("call-other", attempt_ref(99), T0 + timedelta(seconds=1))]
    verdicts = match_unknown(
        [unknown(7, T0)],
        records,
        linked=(),
        coverage=HistoryCoverage(oldest=T0 - timedelta(minutes=5), reached_end=False),
        now=T0 + timedelta(minutes=5),
    )
    assert verdicts.matched == {} and verdicts.not_placed == [7]


def test_a_call_without_a_reference_still_matches_by_number_and_time() -> None:
    records = [listed("call-plain", None, T0 + timedelta(seconds=1))]
    verdicts = match_unknown(
        [unknown(7, T0)],
        records,
        linked=(),
        coverage=HistoryCoverage(oldest=None, reached_end=True),
        now=T0 + timedelta(seconds=5),
    )
    assert verdicts.matched[7].call_id == "call-plain"
