"""Reconciling lost trigger-call answers: the matching rules as pure functions
(scheduler/reconcile.py), the database transitions on SQLite and PostgreSQL
(storage/attempts.py), and end to end against the real sandbox with its ``lost`` fault."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from campaigns.dialing import cancelled_by_campaign
from scheduler.errors import AnswerLostError, VaaniError
from scheduler.poller import OutcomePoller
from scheduler.providers.vaani import VaaniProvider
from scheduler.providers.vaani_wire import CallRecord, parse_record
from scheduler.reconcile import HistoryCoverage, UnknownAttempt, match_unknown
from scheduler.retry import RetryPolicy
from storage import attempts, claims, settle
from storage.attempts import reconcile_stale_claims
from storage.claims import Decision
from storage.engine import make_engine
from storage.models import Attempt, Campaign, Contact, utcnow
from tests.conftest import Sandbox
from tests.factories import accept, indian_numbers, make_campaign, make_contacts

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
PHONE = "+919800000001"


def rec(
    call_id: str,
    *,
    number: str = PHONE,
    at: datetime | None = T0,
    agent: str | None = "agent-1",
    call_type: str = "outbound",
) -> CallRecord:
    raw: dict[str, Any] = {
        "call_id": call_id,
        "contact_number": number,
        "call_type": call_type,
        "call_status": "queued",
        "created_at": at.isoformat() if at else None,
    }
    if agent:
        raw["agent_id"] = agent
    record = parse_record(raw)
    assert record is not None
    return record


def unknown(attempt_id: int = 1, *, at: datetime = T0, phone: str = PHONE) -> UnknownAttempt:
    return UnknownAttempt(
        attempt_id=attempt_id,
        contact_id=attempt_id,
        phone_e164=phone,
        agent_id="agent-1",
        created_at=at,
        sent_at=at + timedelta(seconds=1),
    )


COVERED = HistoryCoverage(oldest=T0 - timedelta(hours=1), reached_end=False)
LATER = T0 + timedelta(minutes=5)


# --------------------------------------------------------------------------- matching


def test_match_same_number_after_the_attempt() -> None:
    records = [
        rec("other-number", number="+919800000002", at=T0 + timedelta(seconds=1)),
        rec("ours", number="919800000001", at=T0 + timedelta(seconds=1)),  # no "+": same number
    ]
    v = match_unknown([unknown()], records, linked=set(), coverage=COVERED, now=LATER)
    assert {k: r.call_id for k, r in v.matched.items()} == {1: "ours"}
    assert v.not_placed == [] and v.undecided == []


@pytest.mark.parametrize(
    "record",
    [
        rec("other-agent", agent="bg-agent-sales"),
        rec("inbound", call_type="inbound"),
        rec("too-old", at=T0 - timedelta(minutes=10)),
        rec("linked"),
    ],
    ids=lambda r: r.call_id,
)
def test_records_that_are_not_ours_are_never_matched(record: CallRecord) -> None:
    v = match_unknown([unknown()], [record], linked={"linked"}, coverage=COVERED, now=LATER)
    assert v.matched == {}
    assert v.not_placed == [1]  # read past it, grace over: not placed


def test_record_without_agent_or_time_still_matches() -> None:
    v = match_unknown(
        [unknown()], [rec("bare", agent=None, at=None)], linked=(), coverage=COVERED, now=LATER
    )
    assert v.matched[1].call_id == "bare"


def test_skew_margin_allows_a_server_clock_behind_ours() -> None:
    record = rec("behind", at=T0 - timedelta(seconds=90))
    v = match_unknown([unknown()], [record], linked=(), coverage=COVERED, now=LATER)
    assert v.matched[1].call_id == "behind"


def test_two_lost_attempts_to_one_number_take_two_calls() -> None:
    attempts = [unknown(2, at=T0 + timedelta(seconds=30)), unknown(1)]
    records = [
        rec("second", at=T0 + timedelta(seconds=31)),
        rec("first", at=T0 + timedelta(seconds=1)),
    ]
    v = match_unknown(attempts, records, linked=(), coverage=COVERED, now=LATER)
    assert {k: r.call_id for k, r in v.matched.items()} == {1: "first", 2: "second"}


def test_not_placed_needs_coverage_and_grace() -> None:
    a = [unknown()]
    shallow = HistoryCoverage(oldest=T0 + timedelta(seconds=5), reached_end=False)
    early = T0 + timedelta(seconds=30)  # within 60 s of sending
    assert match_unknown(a, [], linked=(), coverage=shallow, now=LATER).undecided == [1]
    assert match_unknown(a, [], linked=(), coverage=COVERED, now=early).undecided == [1]
    assert match_unknown(a, [], linked=(), coverage=COVERED, now=LATER).not_placed == [1]
    end = HistoryCoverage(oldest=None, reached_end=True)
    assert match_unknown(a, [], linked=(), coverage=end, now=LATER).not_placed == [1]


def test_number_with_a_call_in_flight_waits() -> None:
    v = match_unknown(
        [unknown()],
        [rec("maybe-theirs")],
        linked=(),
        coverage=COVERED,
        now=LATER,
        busy_phones=[PHONE],
    )
    assert v.matched == {} and v.undecided == [1]


def test_coverage() -> None:
    cov = HistoryCoverage(oldest=T0, reached_end=False)
    assert cov.covers(T0 + timedelta(seconds=1)) and not cov.covers(T0)
    assert not HistoryCoverage(oldest=None, reached_end=False).covers(T0)


# --------------------------------------------------------------------------- database


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _dial(*_: Any) -> Decision:
    return Decision.dial()


def claim(engine: Engine, n: int, now: datetime, daemon: str = "d1") -> list[int]:
    cid = make_campaign(engine)
    make_contacts(engine, cid, indian_numbers(n))
    return [
        j.attempt_id
        for j in claims.claim_due(engine, daemon_id=daemon, now=now, limit=n, decide=_dial).jobs
    ]


def row(engine: Engine, attempt_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(
                Attempt.state,
                Attempt.call_id,
                Attempt.sent_at,
                Attempt.outcome_deadline_at,
                Contact.state.label("cstate"),
                Contact.attempts.label("n"),
                Contact.next_attempt_at.label("due"),
                Contact.claimed_by,
            )
            .join(Contact, Contact.id == Attempt.contact_id)
            .where(Attempt.id == attempt_id)
        ).one()


def mark_reconciled(
    engine: Engine,
    attempt_id: int,
    record: CallRecord,
    *,
    now: datetime,
    outcome_deadline: timedelta,
) -> bool:
    """Link ``record`` to the attempt, as the poller does."""
    return attempts.mark_reconciled(
        engine,
        attempt_id,
        call_id=record.call_id,
        call_started_at=record.created_at,
        now=now,
        outcome_deadline=outcome_deadline,
    )


def mark_not_placed(engine: Engine, attempt_id: int, *, now: datetime, reason: str) -> bool:
    """Declare the attempt never placed, with the campaign rule the poller passes."""
    return attempts.mark_not_placed(
        engine, attempt_id, now=now, reason=reason, cancel_if=cancelled_by_campaign
    )


def test_reconciled_and_not_placed_transitions(engine: Engine) -> None:
    now = utcnow()
    a1, a2, a3 = claim(engine, 3, now)
    for aid in (a1, a2, a3):
        settle.record_unknown(engine, aid, sent_at=now, now=now, error="ReadTimeout")
    found = rec("call-1", at=now)
    assert mark_reconciled(engine, a1, found, now=now, outcome_deadline=timedelta(minutes=5))
    r = row(engine, a1)
    assert (r.state, r.call_id, r.cstate) == (
        "accepted",
        "call-1",
        "awaiting_outcome",
    )
    assert r.outcome_deadline_at == now + timedelta(minutes=5)
    # the same call cannot be linked to a second attempt; an accepted one is not re-reconciled
    assert not mark_reconciled(engine, a2, found, now=now, outcome_deadline=timedelta(minutes=5))
    assert not mark_reconciled(engine, a1, rec("x"), now=now, outcome_deadline=timedelta(minutes=5))
    assert row(engine, a2).state == "unknown"

    later = now + timedelta(minutes=2)
    assert mark_not_placed(engine, a2, now=later, reason="no such call")
    r = row(engine, a2)
    assert (r.state, r.cstate, r.n, r.due) == ("not_placed", "pending", 0, later)
    assert not mark_not_placed(engine, a2, now=later, reason="twice")
    assert row(engine, a2).n == 0


def test_call_ids_are_looked_up_per_provider(engine: Engine) -> None:
    now = utcnow()
    (ours,) = claim(engine, 1, now)
    cid = make_campaign(engine, provider="voisnap")
    make_contacts(engine, cid, ["+919811111111", "+919811111112"])
    theirs = [
        j.attempt_id
        for j in claims.claim_due(engine, daemon_id="d1", now=now, limit=2, decide=_dial).jobs
    ]
    for aid in (ours, *theirs):
        settle.record_unknown(engine, aid, sent_at=now, now=now, error="ReadTimeout")
    deadline = timedelta(minutes=5)
    assert mark_reconciled(engine, ours, rec("call-7", at=now), now=now, outcome_deadline=deadline)
    assert attempts.linked_call_ids(engine, "vaani", {"call-7", "call-8"}) == {"call-7"}
    assert attempts.linked_call_ids(engine, "voisnap", {"call-7", "call-8"}) == set()
    # the same id from another provider is another call: it may be linked there, once
    assert mark_reconciled(
        engine, theirs[0], rec("call-7", at=now), now=now, outcome_deadline=deadline
    )
    assert not mark_reconciled(
        engine, theirs[1], rec("call-7", at=now), now=now, outcome_deadline=deadline
    )
    assert attempts.linked_call_ids(engine, "voisnap", {"call-7"}) == {"call-7"}
    assert [row(engine, a).state for a in (ours, *theirs)] == ["accepted", "accepted", "unknown"]


def test_not_placed_in_a_stopped_campaign_cancels_the_contact(engine: Engine) -> None:
    now = utcnow()
    (aid,) = claim(engine, 1, now)
    settle.record_unknown(engine, aid, sent_at=now, now=now, error="ReadTimeout")
    with engine.begin() as conn:
        conn.execute(update(Campaign).values(status="stopped"))
    assert mark_not_placed(engine, aid, now=now, reason="no such call")
    r = row(engine, aid)
    assert (r.state, r.cstate, r.n, r.due) == ("not_placed", "cancelled", 0, None)
    with engine.connect() as conn:
        assert conn.execute(select(Contact.reason)).scalar() == "campaign stopped before a re-dial"


def test_stale_claims_become_unknown(engine: Engine) -> None:
    now = utcnow()
    dead = claim(engine, 2, now, daemon="dead")
    alive = claim(engine, 1, now, daemon="alive")
    expired = claim(engine, 1, now, daemon="slow")
    with engine.begin() as conn:
        conn.execute(
            update(Contact)
            .where(Contact.claimed_by == "slow")
            .values(claim_expires_at=now - timedelta(seconds=1))
        )
    assert reconcile_stale_claims(engine, ["dead"], now) == 3
    for aid in (*dead, *expired):
        r = row(engine, aid)
        assert (r.state, r.cstate, r.claimed_by) == ("unknown", "awaiting_outcome", None)
        assert r.sent_at == now and r.n == 1
    assert row(engine, alive[0]).state == "reserved"
    assert reconcile_stale_claims(engine, ["dead"], now) == 0  # idempotent


# --------------------------------------------------------------------------- end to end


async def _place_with_lost_answers(sb: Sandbox, engine: Engine, n: int) -> tuple[int, int]:
    """Dial ``n`` contacts through the real client; settle each as the dispatcher would.
    Returns (accepted, unknown)."""
    now = utcnow()
    jobs = claims.claim_due(engine, daemon_id="d1", now=now, limit=n, decide=_dial).jobs
    counts = [0, 0]
    retry = RetryPolicy(max_attempts=1)  # one POST each: a lost answer stays lost
    async with VaaniProvider(sb.api_key, sb.base_url, retry=retry, timeout=5) as client:
        for job in jobs:
            sent = utcnow()
            try:
                res = await client.trigger_call(
                    agent_id=job.campaign.agent_id,
                    contact_number=job.phone_e164,
                    name=job.name,
                    metadata=job.metadata,
                )
            except AnswerLostError as exc:
                settle.record_unknown(
                    engine, job.attempt_id, sent_at=sent, now=utcnow(), error=str(exc)
                )
                counts[1] += 1
                continue
            accept(
                engine,
                job.attempt_id,
                call_id=res.call_id,
                sent_at=sent,
                now=utcnow(),
                outcome_deadline=timedelta(minutes=5),
            )
            counts[0] += 1
    return counts[0], counts[1]


async def _poll_until_settled(engine: Engine, sb: Sandbox, timeout: float = 30) -> None:
    retry = RetryPolicy(max_attempts=8, backoff_base_s=0.05, backoff_max_s=0.2)
    async with VaaniProvider(sb.api_key, sb.base_url, retry=retry, timeout=5) as client:
        poller = OutcomePoller(
            engine,
            client,
            outcome_deadline=timedelta(minutes=5),
            page_size=50,
            grace=timedelta(seconds=2),
        )
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                stats = await poller.poll_once()
            except VaaniError:
                continue  # a fault hit the history beyond the retries: next poll
            if stats.live == 0:
                return
            await asyncio.sleep(0.3)
    raise AssertionError("attempts still live after the timeout")


def test_lost_answers_are_reconciled_against_the_sandbox(
    sandbox_factory: Callable[..., Sandbox], db_url: str
) -> None:
    sb = sandbox_factory(
        "--answer-rate",
        "1",
        "--call-seconds",
        "0.3-0.6",
        "--seed",
        "7",
        "--faults",
        "lost=0.4",
        "--background-calls",
        "5",
    )
    engine = make_engine(db_url)
    cid = make_campaign(engine)
    make_contacts(engine, cid, indian_numbers(16))
    accepted, lost = asyncio.run(_place_with_lost_answers(sb, engine, 16))
    assert lost >= 1 and accepted + lost == 16, "the seed should lose some answers"
    # a daemon that died after reserving, before sending: never placed
    make_contacts(engine, make_campaign(engine), ["+919811111111"])
    never = claims.claim_due(engine, daemon_id="gone", now=utcnow(), limit=1, decide=_dial).jobs
    assert reconcile_stale_claims(engine, ["gone"], utcnow()) == 1

    asyncio.run(_poll_until_settled(engine, sb))

    truth = {c["contact_number"]: c for c in sb.calls()}
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Attempt.state,
                Attempt.call_id,
                Attempt.phone_e164,
                Attempt.entity,
                Contact.state.label("cstate"),
                Contact.attempts.label("n"),
            ).join(Contact, Contact.id == Attempt.contact_id)
        ).all()
    placed = [r for r in rows if r.phone_e164 in truth]
    assert len(placed) == 16 == len(truth)
    for r in placed:  # every placed call found, linked to the right call, finished
        assert r.state == "finished" and r.call_id == truth[r.phone_e164]["call_id"]
        assert r.cstate == "done" and r.entity == truth[r.phone_e164]["entity"]
    (never_row,) = [r for r in rows if r.phone_e164 == "+919811111111"]
    assert (never_row.state, never_row.cstate, never_row.n) == ("not_placed", "pending", 0)
    assert len(never) == 1
    engine.dispose()
