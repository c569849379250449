"""Claims and attempt settlement on SQLite and PostgreSQL (storage/claims.py)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from storage import claims, settle
from storage.campaigns_repo import CampaignRecord
from storage.claims import Candidate, Decision
from storage.engine import make_engine
from storage.models import Attempt, Contact, Suppression, utcnow
from storage.states import ContactState
from tests.factories import accept, indian_numbers, make_campaign, make_contacts


def dial_all(camp: CampaignRecord, cand: Candidate, now):  # type: ignore[no-untyped-def]
    return Decision.dial()


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def states(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(select(Contact.state)).scalars())


def test_claim_writes_attempt_ahead_and_moves_contact(engine: Engine) -> None:
    cid = make_campaign(engine)
    make_contacts(engine, cid, indian_numbers(5))
    now = utcnow()
    res = claims.claim_due(engine, daemon_id="d1", now=now, limit=3, decide=dial_all)
    assert len(res.jobs) == 3
    assert [j.attempt_no for j in res.jobs] == [1, 1, 1]
    assert states(engine) == Counter({"dialing": 3, "pending": 2})
    with engine.connect() as conn:
        rows = conn.execute(select(Attempt.state, Attempt.daemon_id, Attempt.phone_e164)).all()
    assert sorted(r.state for r in rows) == ["reserved"] * 3
    assert {r.phone_e164 for r in rows} == {j.phone_e164 for j in res.jobs}
    # the job carries what trigger-call needs
    job = res.jobs[0]
    assert job.campaign.agent_id == "agent-1"
    assert job.metadata["customer_name"].startswith("Contact")
    # ... as a value: no ORM object rides into the dial tasks
    assert type(job.campaign) is CampaignRecord and job.campaign.id == cid


def test_attempts_record_the_campaign_provider_at_claim_time(engine: Engine) -> None:
    vaani = make_campaign(engine)
    other = make_campaign(engine, provider="voisnap")
    make_contacts(engine, vaani, indian_numbers(2))
    make_contacts(engine, other, indian_numbers(2, start=10))
    jobs = claims.claim_due(engine, daemon_id="d1", now=utcnow(), limit=4, decide=dial_all).jobs
    assert {(j.campaign.id, j.campaign.provider) for j in jobs} == {
        (vaani, "vaani"),
        (other, "voisnap"),
    }
    with engine.connect() as conn:
        rows = conn.execute(select(Attempt.campaign_id, Attempt.provider)).all()
    assert sorted(rows) == sorted(
        [(vaani, "vaani"), (vaani, "vaani"), (other, "voisnap"), (other, "voisnap")]
    )


def test_a_daemon_claims_only_the_campaigns_of_the_providers_it_drives(engine: Engine) -> None:
    vaani = make_campaign(engine)
    other = make_campaign(engine, provider="voisnap")
    make_contacts(engine, vaani, indian_numbers(2))
    make_contacts(engine, other, indian_numbers(2, start=10))
    now = utcnow()
    jobs = claims.claim_due(
        engine, daemon_id="d1", now=now, limit=4, decide=dial_all, providers=("vaani",)
    ).jobs
    assert {j.campaign.id for j in jobs} == {vaani} and len(jobs) == 2
    none_left = claims.claim_due(
        engine, daemon_id="d1", now=now, limit=4, decide=dial_all, providers=("vaani",)
    )
    assert none_left.jobs == []  # the voisnap contacts wait for a daemon that drives voisnap
    with engine.connect() as conn:
        waiting = (
            conn.execute(select(Contact.state).where(Contact.campaign_id == other)).scalars().all()
        )
    assert waiting == ["pending", "pending"]


def test_claim_respects_live_cap_and_campaign_status(engine: Engine) -> None:
    cid = make_campaign(engine)
    paused = make_campaign(engine, status="paused")
    make_contacts(engine, cid, indian_numbers(10))
    make_contacts(engine, paused, indian_numbers(10, start=100))
    res = claims.claim_due(
        engine, daemon_id="d1", now=utcnow(), limit=10, decide=dial_all, max_live=4
    )
    assert len(res.jobs) == 4
    assert {j.campaign.id for j in res.jobs} == {cid}
    # cap reached: nothing more until an attempt settles
    again = claims.claim_due(
        engine, daemon_id="d1", now=utcnow(), limit=10, decide=dial_all, max_live=4
    )
    assert again.jobs == []


def test_defer_and_close_decisions(engine: Engine) -> None:
    cid = make_campaign(engine)
    ids = make_contacts(engine, cid, indian_numbers(3))
    later = utcnow() + timedelta(hours=3)

    def decide(camp, cand, now):  # type: ignore[no-untyped-def]
        if cand.contact_id == ids[0]:
            return Decision.defer(later)
        if cand.contact_id == ids[1]:
            return Decision.close(ContactState.EXPIRED, "ended")
        return Decision.dial()

    res = claims.claim_due(engine, daemon_id="d1", now=utcnow(), limit=5, decide=decide)
    assert [j.contact_id for j in res.jobs] == [ids[2]]
    assert res.deferred == 1 and res.closed == {"expired": 1}
    with engine.connect() as conn:
        c0 = conn.execute(select(Contact).where(Contact.id == ids[0])).one()
        c1 = conn.execute(select(Contact).where(Contact.id == ids[1])).one()
    assert c0.state == "pending" and c0.next_attempt_at == later
    assert c1.state == "expired" and c1.reason == "ended"
    # a deferred contact is not due before its time
    res2 = claims.claim_due(engine, daemon_id="d1", now=utcnow(), limit=5, decide=dial_all)
    assert res2.jobs == []


def test_candidate_sees_suppression_and_recent_calls(engine: Engine) -> None:
    cid = make_campaign(engine)
    phones = indian_numbers(2)
    make_contacts(engine, cid, phones)
    with engine.begin() as conn:
        conn.execute(Suppression.__table__.insert().values(phone_e164=phones[0], added_at=utcnow()))
    seen: dict[str, Candidate] = {}

    def decide(camp, cand, now):  # type: ignore[no-untyped-def]
        seen[cand.phone_e164] = cand
        return Decision.dial()

    claims.claim_due(engine, daemon_id="d1", now=utcnow(), limit=5, decide=decide)
    assert seen[phones[0]].suppressed is True
    assert seen[phones[1]].suppressed is False


def test_settlements(engine: Engine) -> None:
    cid = make_campaign(engine)
    make_contacts(engine, cid, indian_numbers(4))
    now = utcnow()
    jobs = claims.claim_due(engine, daemon_id="d1", now=now, limit=4, decide=dial_all).jobs
    a, u, n, r = jobs
    assert accept(
        engine,
        a.attempt_id,
        call_id="c-1",
        sent_at=now,
        now=now,
        outcome_deadline=timedelta(minutes=5),
    )
    assert settle.record_unknown(engine, u.attempt_id, sent_at=now, now=now, error="read timeout")
    assert settle.record_not_placed(
        engine, n.attempt_id, now=now, retry_at=now + timedelta(seconds=30)
    )
    # releasing twice is refused too: the write-ahead row is gone
    assert not settle.record_not_placed(engine, n.attempt_id, now=now, retry_at=None)
    assert settle.record_rejected(
        engine,
        r.attempt_id,
        now=now,
        contact_state=ContactState.INVALID,
        reason="bad number",
        http_status=422,
    )
    # settling twice is refused (compare-and-set on the attempt state)
    assert not accept(
        engine,
        a.attempt_id,
        call_id="c-2",
        sent_at=now,
        now=now,
        outcome_deadline=timedelta(minutes=5),
    )
    with engine.connect() as conn:
        by_id = {c.id: c for c in conn.execute(select(Contact))}
        att = {x.id: x for x in conn.execute(select(Attempt))}
    assert by_id[a.contact_id].state == "awaiting_outcome" and att[a.attempt_id].call_id == "c-1"
    assert by_id[u.contact_id].state == "awaiting_outcome" and att[u.attempt_id].state == "unknown"
    assert by_id[n.contact_id].state == "pending" and by_id[n.contact_id].attempts == 0
    assert by_id[n.contact_id].next_attempt_at is not None
    # a request that placed no call is no attempt: its write-ahead row is deleted
    assert n.attempt_id not in att
    assert sorted(att) == sorted([a.attempt_id, u.attempt_id, r.attempt_id])
    assert att[r.attempt_id].state == "rejected"  # the 422 stays: it is why the contact closed
    assert by_id[r.contact_id].state == "invalid" and by_id[r.contact_id].reason == "bad number"
    # not due before its retry time
    early = claims.claim_due(
        engine, daemon_id="d1", now=now + timedelta(seconds=29), limit=4, decide=dial_all
    ).jobs
    assert early == []
    # the not-placed contact comes back when due, still as attempt number 1: numbers count
    # only the calls that may have been placed
    later = claims.claim_due(
        engine, daemon_id="d1", now=now + timedelta(seconds=31), limit=4, decide=dial_all
    ).jobs
    assert [(j.contact_id, j.attempt_no) for j in later] == [(n.contact_id, 1)]


def test_concurrent_claimers_never_share_a_contact(db_url: str) -> None:
    """Four claimers with their own engines (as separate daemons would have) race over 200
    contacts: every contact is claimed exactly once."""
    setup = make_engine(db_url)
    cid = make_campaign(setup)
    make_contacts(setup, cid, indian_numbers(200))
    setup.dispose()
    claimed: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        eng = make_engine(db_url)
        try:
            while True:
                res = claims.claim_due(eng, daemon_id=name, now=utcnow(), limit=7, decide=dial_all)
                if not res.jobs:
                    return
                with lock:
                    claimed.extend(j.contact_id for j in res.jobs)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=worker, args=(f"d{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(claimed) == 200
    assert len(set(claimed)) == 200


def test_each_provider_has_its_own_live_call_cap(engine: Engine) -> None:
    """Two providers are two plans: a full cap on one does not hold back the other."""
    vaani = make_campaign(engine)
    other = make_campaign(engine, provider="vaniagent")
    make_contacts(engine, vaani, indian_numbers(5))
    make_contacts(engine, other, indian_numbers(5, start=100))

    def claim(provider: str) -> list[int]:
        res = claims.claim_due(
            engine,
            daemon_id="d1",
            now=utcnow(),
            limit=10,
            decide=dial_all,
            max_live=3,
            providers=(provider,),
        )
        return [j.campaign.id for j in res.jobs]

    assert claim("vaani") == [vaani] * 3
    assert claim("vaani") == []  # vaani's cap is full
    assert claim("vaniagent") == [other] * 3
