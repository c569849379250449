"""The circuit breaker (storage/breaker.py): the rule's boundaries, what counts as a failed
call, the window since the last resume, the pause in the outcome's own transaction; on SQLite
and PostgreSQL, with calls placed and settled through the real claim and settlement code."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from campaigns.dialing import OutcomeRules, cancelled_by_campaign
from storage import attempts, breaker, campaigns_repo, claims, settle
from storage import outcomes as stored
from storage.breaker import Trip, reason_text, should_trip
from storage.claims import Decision
from storage.engine import make_engine
from storage.models import OutboxEvent, utcnow
from storage.outcomes import CallResult
from storage.states import ContactState, Outcome
from tests.factories import accept, indian_numbers, make_campaign, make_contacts

# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("failed", "calls", "threshold", "window", "trips"),
    [
        (10, 20, 50, 20, False),  # exactly 50 %: not more than
        (11, 20, 50, 20, True),
        (19, 19, 50, 20, False),  # N - 1 calls never trip, all failed or not
        (20, 20, 50, 20, True),
        (1, 20, 0, 20, True),  # 0 %: any failure in a full window
        (0, 20, 0, 20, False),
        (3, 5, 50, 5, True),
        (15, 20, 75, 20, False),
        (16, 20, 75, 20, True),
    ],
)
def test_should_trip_boundaries(
    failed: int, calls: int, threshold: int, window: int, trips: bool
) -> None:
    assert should_trip(failed, calls, threshold=threshold, window=window) is trips


def test_reason_reads_as_the_issue_asks() -> None:
    assert reason_text(14, 20, 50) == (
        "circuit breaker: 14 of the last 20 calls failed (70% > 50%)"
    )
    assert reason_text(2, 3, 50) == "circuit breaker: 2 of the last 3 calls failed (66.7% > 50%)"


# --------------------------------------------------------------------------- stored calls


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _dial(*_: Any) -> Decision:
    return Decision.dial()


T0 = datetime(2026, 12, 1, 10, 0, tzinfo=utcnow().tzinfo)


def place(engine: Engine, n: int, *, start: int = 0, **campaign: Any) -> tuple[int, list[int]]:
    """A campaign with ``n`` contacts, each claimed and accepted: ``n`` live calls."""
    cid = make_campaign(engine, **campaign)
    make_contacts(engine, cid, indian_numbers(n, start=start))
    jobs = claims.claim_due(engine, daemon_id="d1", now=T0, limit=n, decide=_dial).jobs
    for job in jobs:
        assert accept(
            engine,
            job.attempt_id,
            call_id=f"call-{job.attempt_id}",
            sent_at=T0,
            now=T0,
            outcome_deadline=timedelta(minutes=15),
        )
    return cid, sorted(j.attempt_id for j in jobs)


_STATUS = {
    Outcome.FAILED: "failed",
    Outcome.NO_ANSWER: "no-answer",
    Outcome.BUSY: "busy",
    Outcome.VOICEMAIL: "voicemail",
    Outcome.ANSWERED: "completed",
    Outcome.NO_OUTCOME: None,
}


def finish(
    engine: Engine, items: Sequence[tuple[int, Outcome]], *, at: datetime
) -> list[stored.Applied | None]:
    """Apply these outcomes in one batch, as one poll does."""
    return stored.apply_outcomes(
        engine,
        [
            (aid, CallResult(outcome=o, call_status=_STATUS[o], error=f"{o.value} on the line"))
            for aid, o in items
        ],
        now=at,
        rules=OutcomeRules(),
    )


def campaign(engine: Engine, cid: int) -> campaigns_repo.CampaignRecord:
    return campaigns_repo.get_campaign(engine, cid)


def trips_of(applied: Sequence[stored.Applied | None]) -> list[Trip]:
    return [a.tripped for a in applied if a is not None and a.tripped is not None]


def test_exactly_half_failed_does_not_trip_and_one_more_does(engine: Engine) -> None:
    cid, aids = place(engine, 21)
    first = [(aids[0], Outcome.NO_ANSWER)]
    first += [(a, Outcome.FAILED) for a in aids[1:11]]
    first += [(a, Outcome.NO_ANSWER) for a in aids[11:20]]
    assert trips_of(finish(engine, first, at=T0 + timedelta(minutes=1))) == []
    assert campaign(engine, cid).status == "running"  # 10 of 20: exactly 50 %
    # the 21st call failed: the window is the newest 20, the oldest no_answer dropped out
    applied = finish(engine, [(aids[20], Outcome.FAILED)], at=T0 + timedelta(minutes=2))
    (trip,) = trips_of(applied)
    reason = "circuit breaker: 11 of the last 20 calls failed (55% > 50%)"
    assert trip.reason == reason and trip.campaign_id == cid
    c = campaign(engine, cid)
    assert (c.status, c.status_reason) == ("paused", reason)
    errors = c.breaker_errors or []
    assert len(errors) == breaker.MAX_ERRORS
    assert errors[0]["call_id"] == f"call-{aids[20]}"  # newest first
    assert errors[0]["status"] == "failed" and errors[0]["error"] == "failed on the line"
    assert {e["attempt_id"] for e in errors} <= set(aids[1:11]) | {aids[20]}


def test_fewer_calls_than_the_window_never_trip(engine: Engine) -> None:
    cid, aids = place(engine, 20)
    applied = finish(engine, [(a, Outcome.FAILED) for a in aids[:19]], at=T0)
    assert trips_of(applied) == []
    assert campaign(engine, cid).status == "running"  # 19 of 19 failed: the window is 20
    # a no_answer fills the window: 19 of 20 failed
    (trip,) = trips_of(finish(engine, [(aids[19], Outcome.NO_ANSWER)], at=T0))
    assert trip.failed == 19 and trip.window == 20


def test_missed_calls_are_normal_and_422s_are_not_calls(engine: Engine) -> None:
    cid, aids = place(engine, 20)
    normal = [Outcome.NO_ANSWER, Outcome.BUSY, Outcome.VOICEMAIL, Outcome.NO_OUTCOME]
    items = [(a, normal[i % 4]) for i, a in enumerate(aids[:10])]
    items += [(a, Outcome.FAILED) for a in aids[10:20]]
    assert trips_of(finish(engine, items, at=T0)) == []  # 10 failed of 20
    assert campaign(engine, cid).status == "running"

    # a campaign of bad numbers: ten 422s and ten failed calls is not a full window
    cid2 = make_campaign(engine, name="bad rows")
    make_contacts(engine, cid2, indian_numbers(20, start=100))
    jobs = sorted(
        claims.claim_due(engine, daemon_id="d1", now=T0, limit=20, decide=_dial).jobs,
        key=lambda j: j.attempt_id,
    )
    for job in jobs[:10]:
        assert settle.record_rejected(
            engine,
            job.attempt_id,
            now=T0,
            contact_state=ContactState.INVALID,
            reason="rejected by the API (422): invalid number",
            http_status=422,
        )
    for job in jobs[10:]:
        accept(
            engine,
            job.attempt_id,
            call_id=f"call-{job.attempt_id}",
            sent_at=T0,
            now=T0,
            outcome_deadline=timedelta(minutes=15),
        )
    applied = finish(engine, [(j.attempt_id, Outcome.FAILED) for j in jobs[10:]], at=T0)
    assert trips_of(applied) == []
    assert campaign(engine, cid2).status == "running"


def test_resume_starts_a_fresh_window_and_late_outcomes_do_not_trip_again(
    engine: Engine,
) -> None:
    cid, aids = place(engine, 45)
    (trip,) = trips_of(finish(engine, [(a, Outcome.FAILED) for a in aids[:20]], at=T0))
    errors = campaign(engine, cid).breaker_errors
    # calls live when it tripped still report back; the paused campaign is not judged again
    late = finish(engine, [(aids[20], Outcome.FAILED)], at=T0 + timedelta(minutes=1))
    assert late[0] is not None and late[0].contact_state == "retry_wait"
    assert trips_of(late) == []
    c = campaign(engine, cid)
    assert (c.status, c.status_reason, c.breaker_errors) == ("paused", trip.reason, errors)

    resumed_at = T0 + timedelta(minutes=2)
    campaigns_repo.resume_campaign(engine, cid, now=resumed_at)
    c = campaign(engine, cid)
    assert (c.status, c.status_reason, c.breaker_errors) == ("running", None, None)
    assert c.breaker_since == resumed_at
    # the 21 failures before the resume are out of the window: 19 more do not trip
    after = resumed_at + timedelta(seconds=1)
    assert trips_of(finish(engine, [(a, Outcome.FAILED) for a in aids[21:40]], at=after)) == []
    assert campaign(engine, cid).status == "running"
    (again,) = trips_of(finish(engine, [(aids[40], Outcome.FAILED)], at=after))
    assert again.reason == "circuit breaker: 20 of the last 20 calls failed (100% > 50%)"


def test_lost_answers_found_not_placed_count_as_failed(engine: Engine) -> None:
    cid = make_campaign(engine, breaker_window=5, breaker_threshold=60)
    make_contacts(engine, cid, indian_numbers(5))
    jobs = claims.claim_due(engine, daemon_id="d1", now=T0, limit=5, decide=_dial).jobs
    tripped: list[Trip] = []
    for job in jobs:
        assert settle.record_unknown(
            engine, job.attempt_id, sent_at=T0, now=T0, error="503 Service Unavailable",
            http_status=503,
        )  # fmt: skip
    for job in jobs:
        assert attempts.mark_not_placed(
            engine,
            job.attempt_id,
            now=T0 + timedelta(minutes=1),
            reason="answer lost and no matching call in the history: not placed",
            cancel_if=cancelled_by_campaign,
            tripped=tripped,
        )
    (trip,) = tripped  # 5 of 5 > 60 %, tripped once, on the fifth
    assert trip.reason == "circuit breaker: 5 of the last 5 calls failed (100% > 60%)"
    c = campaign(engine, cid)
    assert c.status == "paused"
    assert [e["status"] for e in c.breaker_errors or []] == ["not placed (HTTP 503)"] * 5
    assert all(e["call_id"] is None for e in c.breaker_errors or [])


def test_lost_answers_without_a_status_are_not_the_providers_failure(engine: Engine) -> None:
    """A timeout or a reset (no HTTP status), or the claim of a daemon killed before it sent
    it, reconciled as not placed: in the window, not failed."""
    cid = make_campaign(engine, breaker_window=5)
    make_contacts(engine, cid, indian_numbers(5))
    jobs = claims.claim_due(engine, daemon_id="d1", now=T0, limit=5, decide=_dial).jobs
    tripped: list[Trip] = []
    for job in jobs:
        assert settle.record_unknown(
            engine, job.attempt_id, sent_at=T0, now=T0, error="read timeout"
        )
        assert attempts.mark_not_placed(
            engine,
            job.attempt_id,
            now=T0 + timedelta(minutes=1),
            reason="answer lost and no matching call in the history: not placed",
            cancel_if=cancelled_by_campaign,
            tripped=tripped,
        )
    assert tripped == []
    assert campaign(engine, cid).status == "running"


def test_a_campaign_without_the_breaker_keeps_calling(engine: Engine) -> None:
    cid, aids = place(engine, 20, breaker_enabled=False)
    assert trips_of(finish(engine, [(a, Outcome.FAILED) for a in aids], at=T0)) == []
    assert campaign(engine, cid).status == "running"


def test_the_trip_sends_campaign_paused_to_the_crm(engine: Engine) -> None:
    cid, aids = place(
        engine, 4, breaker_window=4, webhook_url="https://crm.example/h", webhook_secret_fp="x"
    )
    (trip,) = trips_of(finish(engine, [(a, Outcome.FAILED) for a in aids], at=T0))
    with engine.connect() as conn:
        events = conn.execute(
            select(OutboxEvent.event, OutboxEvent.payload).where(
                OutboxEvent.campaign_id == cid, OutboxEvent.contact_id.is_(None)
            )
        ).all()
    assert [e for e, _ in events] == ["campaign.paused"]
    assert trip.reason in events[0][1]


def test_the_window_is_read_from_its_index(sqlite_url: str) -> None:
    """The check reads the last N settled attempts through ix_attempts_settled, not a scan."""
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            stmt = breaker._window_query(1, None, 20)
            sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
        assert "ix_attempts_settled" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort: the index gives the order
    finally:
        engine.dispose()
