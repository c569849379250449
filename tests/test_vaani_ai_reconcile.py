"""Reconciling lost answers by the attempt reference vaani.ai echoes (issue 10).

Two lost attempts to one number (two campaigns), of which only the later one was placed: by
number and time the earlier attempt would take the later one's call, and the later attempt,
found "not placed", would dial the number a second time. The reference the call log carries
back (``dynamic_variables``) gives each attempt its own call, or none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.providers.base import attempt_ref
from scheduler.providers.vaani_ai_wire import CLIENT_REF_KEY, parse_log
from scheduler.reconcile import HistoryCoverage, UnknownAttempt, match_unknown

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NUMBER = "+919800000001"


def attempt(attempt_id: int, at: datetime) -> UnknownAttempt:
    return UnknownAttempt(
        attempt_id=attempt_id,
        contact_id=attempt_id * 10,
        phone_e164=NUMBER,
        agent_id="ours",
        created_at=at,
        sent_at=at,
    )


def log(call_id: str, at: datetime, ref: str | None) -> object:
    variables = {"customer_name": "Asha"} | ({CLIENT_REF_KEY: ref} if ref else {})
    rec = parse_log(
        {
            "id": call_id,
            "phone_number": NUMBER,
            "direction": "outbound",
            "agent_id": "agt_vaani_ai_uuid",  # vaani.ai's id: never compared with ours
            "created_at": at.isoformat(),
            "dynamic_variables": variables,
        }
    )
    assert rec is not None
    return rec


def test_each_lost_attempt_takes_only_the_call_with_its_reference() -> None:
    first, second = attempt(1, T0), attempt(2, T0 + timedelta(seconds=1))
    records = [log("c-2", T0 + timedelta(seconds=2), attempt_ref(2))]
    verdicts = match_unknown(
        [first, second],
        records,  # type: ignore[arg-type]
        linked=(),
        coverage=HistoryCoverage(oldest=None, reached_end=True),
        now=T0 + timedelta(minutes=5),
    )
    assert {k: v.call_id for k, v in verdicts.matched.items()} == {2: "c-2"}
    assert verdicts.not_placed == [1]


def test_a_log_without_a_reference_still_matches_by_number_and_time() -> None:
    verdicts = match_unknown(
        [attempt(3, T0)],
        [log("c-3", T0 + timedelta(seconds=1), None)],  # type: ignore[list-item]
        linked=(),
        coverage=HistoryCoverage(oldest=None, reached_end=True),
        now=T0 + timedelta(minutes=5),
    )
    assert {k: v.call_id for k, v in verdicts.matched.items()} == {3: "c-3"}
