"""Slots count only calls that may be live (issue 9): storage on SQLite and PostgreSQL, and
the reconcile verdict that frees a lost answer's slot without unblocking its contact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from scheduler.reconcile import HistoryCoverage, UnknownAttempt, match_unknown
from storage import attempts, claims, settle
from storage.campaigns_repo import CampaignRecord
from storage.claims import Candidate, Decision
from storage.engine import make_engine
from storage.models import Contact, utcnow
from storage.states import ContactState
from tests.factories import accept, indian_numbers, make_campaign, make_contacts


def dial_all(camp: CampaignRecord, cand: Candidate, now: datetime) -> Decision:
    return Decision.dial()


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def claim(engine: Engine, n: int, cap: int) -> claims.ClaimResult:
    return claims.claim_due(
        engine, daemon_id="d1", now=utcnow(), limit=n, decide=dial_all, max_live=cap
    )


def test_freed_slots_let_the_cap_claim_more_but_keep_the_contacts_blocked(
    engine: Engine,
) -> None:
    cid = make_campaign(engine)
    make_contacts(engine, cid, indian_numbers(6))
    first = claim(engine, 6, cap=2)
    assert len(first.jobs) == 2
    now = utcnow()
    a, u = first.jobs
    assert accept(
        engine, a.attempt_id, call_id="c-1", sent_at=now, now=now, outcome_deadline=timedelta(1)
    )
    assert settle.record_unknown(engine, u.attempt_id, sent_at=now, now=now, error="lost")
    full = claim(engine, 6, cap=2)
    assert full.jobs == [] and full.capped
    # the call was seen ended; the lost answer is not in the history: both slots free
    assert attempts.free_slots(engine, [a.attempt_id, u.attempt_id], now=now) == 2
    assert attempts.free_slots(engine, [a.attempt_id], now=now) == 0  # already free
    more = claim(engine, 6, cap=2)
    assert len(more.jobs) == 2
    with engine.connect() as conn:
        blocked = conn.execute(
            select(Contact.state).where(Contact.id.in_([a.contact_id, u.contact_id]))
        ).scalars()
        assert set(blocked) == {ContactState.AWAITING_OUTCOME.value}
    live, _busy = attempts.load_live(engine)
    assert {x.attempt_id: x.slot_freed for x in live} == {
        a.attempt_id: True,
        u.attempt_id: True,
    }


def test_a_lost_call_found_later_takes_its_slot_back(engine: Engine) -> None:
    cid = make_campaign(engine)
    make_contacts(engine, cid, indian_numbers(3))
    (u,) = claim(engine, 1, cap=1).jobs
    now = utcnow()
    settle.record_unknown(engine, u.attempt_id, sent_at=now, now=now, error="lost")
    attempts.free_slots(engine, [u.attempt_id], now=now)
    assert len(claim(engine, 1, cap=1).jobs) == 1  # takes the freed slot
    assert attempts.mark_reconciled(
        engine,
        u.attempt_id,
        call_id="late-1",
        call_started_at=now,
        now=now,
        outcome_deadline=timedelta(minutes=5),
    )
    # the found call may be live: two slots held against a cap of 1, nothing more claimed
    res = claim(engine, 1, cap=1)
    assert res.jobs == [] and res.capped


T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def lost(attempt_id: int, sent: datetime) -> UnknownAttempt:
    return UnknownAttempt(
        attempt_id=attempt_id,
        contact_id=attempt_id,
        phone_e164="+919700000001",
        agent_id="a",
        created_at=sent,
        sent_at=sent,
    )


def test_absent_from_a_covering_history_frees_the_slot_before_the_grace() -> None:
    covered = HistoryCoverage(oldest=T0 - timedelta(minutes=5), reached_end=False)
    v = match_unknown(
        [lost(1, T0), lost(2, T0 + timedelta(seconds=9))],
        [],
        linked=(),
        coverage=covered,
        now=T0 + timedelta(seconds=10),
        grace=timedelta(seconds=60),
        settle=timedelta(seconds=2),
    )
    # attempt 1: sent 10 s ago, not in the history: slot freed, still undecided (blocked)
    # attempt 2: sent 1 s ago: the history may lag, it keeps its slot
    assert v.absent == [1]
    assert v.undecided == [1, 2] and v.not_placed == []


def test_a_history_not_read_past_the_attempt_frees_nothing() -> None:
    shallow = HistoryCoverage(oldest=T0 + timedelta(seconds=5), reached_end=False)
    v = match_unknown(
        [lost(1, T0)],
        [],
        linked=(),
        coverage=shallow,
        now=T0 + timedelta(seconds=30),
        settle=timedelta(seconds=2),
    )
    assert v.absent == [] and v.undecided == [1]


# ------------------------------------------------------------------------------ owners


def test_each_live_call_is_read_by_its_owner_and_adopted_when_it_stops(engine: Engine) -> None:
    from storage import daemons, owners

    now = utcnow()
    d1 = daemons.register_daemon(engine, now=now, pid=1)
    d2 = daemons.register_daemon(engine, now=now, pid=2)
    cid = make_campaign(engine)
    make_contacts(engine, cid, indian_numbers(4))
    for i, owner in enumerate((d1, d1, d2)):
        (job,) = claims.claim_due(
            engine, daemon_id=owner, now=now, limit=1, decide=dial_all, max_live=10
        ).jobs
        accept(
            engine,
            job.attempt_id,
            call_id=f"c-{i}",
            sent_at=now,
            now=now,
            outcome_deadline=timedelta(minutes=5),
        )
    mine = {d: attempts.load_live(engine, owner=d)[0] for d in (d1, d2)}
    assert [len(mine[d1]), len(mine[d2])] == [2, 1]
    dead_after = timedelta(seconds=20)
    # both alive: nothing to adopt
    assert owners.adopt_orphans(engine, d2, provider="vaani", now=now, dead_after=dead_after) == 0
    daemons.mark_stopped(engine, d1, now=now)
    assert owners.adopt_orphans(engine, d2, provider="vaani", now=now, dead_after=dead_after) == 2
    assert attempts.load_live(engine, owner=d1)[0] == []
    assert len(attempts.load_live(engine, owner=d2)[0]) == 3
    # a silent heartbeat counts as gone too: a third daemon adopts d2's calls later
    later = now + timedelta(seconds=30)
    d3 = daemons.register_daemon(engine, now=later, pid=3)
    assert owners.adopt_orphans(engine, d3, provider="vaani", now=later, dead_after=dead_after) == 3
