"""The outcome poller (scheduler/poller.py): unit tests with a small fake API (same async
methods as VaaniProvider, answers built by the real wire parsers) on a real SQLite database,
and end to end against the real sandbox with background traffic."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from scheduler.errors import AuthenticationError, NotFoundError
from scheduler.poller import OutcomePoller
from scheduler.providers.base import CallOutcome, CallPage
from scheduler.providers.vaani import CAPABILITIES, VaaniProvider
from scheduler.providers.vaani_wire import parse_details, parse_history
from storage import claims, settle
from storage.claims import Decision
from storage.engine import make_engine
from storage.models import Attempt, Contact, Suppression, utcnow
from tests.conftest import Sandbox
from tests.factories import accept, indian_numbers, make_campaign, make_contacts

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
DEADLINE = timedelta(minutes=10)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class FakeAPI:
    """Vaani's listing and outcome reads, as the provider interface serves them, over an
    in-memory history (oldest first), parsed by Vaani's own wire parsers."""

    name = "vaani"
    capabilities = CAPABILITIES

    def __init__(self, *, silent_cap: int | None = None) -> None:
        self.silent_cap = silent_cap  # serve at most this many records, and say nothing
        self.history: list[dict[str, Any]] = []
        self.extra_details: dict[str, dict[str, Any]] = {}
        self.fail: dict[str, Exception] = {}
        self.requests: Counter[str] = Counter()

    def add(
        self,
        call_id: str,
        at: datetime,
        *,
        number: str = "+14155550000",
        status: str = "completed",
        agent: str = "bg-agent",
    ) -> dict[str, Any]:
        rec = {
            "call_id": call_id,
            "agent_id": agent,
            "contact_number": number,
            "call_type": "outbound",
            "call_status": status,
            "duration_ms": 3000 if status == "completed" else None,
            "created_at": iso(at),
        }
        self.history.append(rec)
        self.history.sort(key=lambda r: r["created_at"])
        return rec

    def record(self, call_id: str) -> dict[str, Any]:
        return next(r for r in self.history if r["call_id"] == call_id)

    async def list_calls(self, *, page: int, page_size: int) -> CallPage:
        self.requests["history"] += 1
        newest = self.history[::-1]
        if self.silent_cap is not None:  # an API that ignores large sizes, without pagination
            page_size = min(page_size, self.silent_cap)
            chunk = newest[(page - 1) * page_size : page * page_size]
            return parse_history({"data": chunk}, page=page, page_size=page_size).to_page()
        chunk = newest[(page - 1) * page_size : page * page_size]
        pagination = {"page": page, "page_size": page_size, "total": len(newest)}
        return parse_history(
            {"data": chunk, "pagination": pagination}, page=page, page_size=page_size
        ).to_page()

    async def outcome(self, call_id: str) -> CallOutcome:
        self.requests["details"] += 1
        if call_id in self.fail:
            raise self.fail[call_id]
        base = next((r for r in self.history if r["call_id"] == call_id), None)
        if base is None:
            raise NotFoundError("HTTP 404", status_code=404)
        body = {
            **base,
            "summary": f"summary of {call_id}",
            "entity": {"email": "a@b.c"},
            **self.extra_details.get(call_id, {}),
        }
        return parse_details(body, call_id=call_id).to_outcome()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _dial(*_: Any) -> Decision:
    return Decision.dial()


@pytest.fixture
def engine(sqlite_url: str) -> Engine:
    return make_engine(sqlite_url)


def place(
    engine: Engine, n: int, *, at: datetime = T0, unknown: int = 0, **campaign: Any
) -> list[tuple[int, str, str]]:
    """``n`` live attempts created at ``at``; the last ``unknown`` of them lost their answer.
    Returns (attempt id, call id or "", phone) for each."""
    cid = make_campaign(engine, **campaign)
    make_contacts(engine, cid, indian_numbers(n))
    jobs = claims.claim_due(engine, daemon_id="d1", now=at, limit=n, decide=_dial).jobs
    out = []
    for i, job in enumerate(jobs):
        if i >= n - unknown:
            settle.record_unknown(engine, job.attempt_id, sent_at=at, now=at, error="lost")
            out.append((job.attempt_id, "", job.phone_e164))
            continue
        call_id = f"outbound-ours-{i}"
        accept(
            engine, job.attempt_id, call_id=call_id, sent_at=at, now=at, outcome_deadline=DEADLINE
        )
        out.append((job.attempt_id, call_id, job.phone_e164))
    return out


def poller(engine: Engine, api: FakeAPI, clock: Clock, **kw: Any) -> OutcomePoller:
    return OutcomePoller(
        engine,
        api,
        page_size=50,
        outcome_deadline=DEADLINE,  # type: ignore[arg-type]
        clock=clock,
        **kw,
    )


def attempts(engine: Engine) -> dict[int, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Attempt.id,
                Attempt.state,
                Attempt.outcome,
                Attempt.call_id,
                Attempt.summary,
                Attempt.entity,
                Attempt.details_fetched,
                Attempt.error,
                Contact.state.label("cstate"),
                Contact.attempts.label("n"),
            ).join(Contact, Contact.id == Attempt.contact_id)
        ).all()
    return {r.id: r for r in rows}


def background(api: FakeAPI, older: int, newer: int) -> None:
    """Other agents' calls, one per second, before and after T0."""
    for k in range(1, older + 1):
        api.add(f"bg-old-{k}", T0 - timedelta(seconds=k))
    for k in range(1, newer + 1):
        api.add(f"bg-new-{k}", T0 + timedelta(seconds=k))


def test_no_live_attempt_no_request(engine: Engine) -> None:
    api = FakeAPI()
    background(api, 10, 10)
    stats = asyncio.run(poller(engine, api, Clock(T0)).poll_once())
    assert stats.live == 0 and stats.requests == 0 and api.requests == Counter()


def test_calls_of_another_provider_are_left_to_its_daemon(engine: Engine) -> None:
    api = FakeAPI()  # a Vaani client
    (_, call_id, phone), *_ = place(engine, 2, provider="voisnap")
    api.add(call_id, T0 + timedelta(seconds=1), number=phone, agent="agent-1")
    stats = asyncio.run(poller(engine, api, Clock(T0 + timedelta(minutes=1))).poll_once())
    assert stats.live == 0 and api.requests == Counter()  # not read through Vaani
    assert {r.state for r in attempts(engine).values()} == {"accepted"}


def test_paging_stops_once_every_live_call_is_seen(engine: Engine) -> None:
    api = FakeAPI()
    background(api, 300, 150)
    ours = place(engine, 3)
    for i, (_, call_id, phone) in enumerate(ours):
        api.add(
            call_id,
            T0 + timedelta(milliseconds=100 * (i + 1)),
            number=phone,
            status="ringing",
            agent="agent-1",
        )
    p = poller(engine, api, Clock(T0 + timedelta(minutes=3)))
    stats = asyncio.run(p.poll_once())
    # ours are records 151-153 newest first: page 4 of 50; nothing final, no details
    assert (stats.history_pages, stats.details_requests, stats.finished) == (4, 0, 0)
    # the next poll asks for pages big enough to need one (every page costs a request)
    assert asyncio.run(p.poll_once()).history_pages == 1


def test_page_size_does_not_grow_unless_the_api_confirms_it(engine: Engine) -> None:
    api = FakeAPI(silent_cap=50)
    background(api, 300, 150)
    for i, (_, call_id, phone) in enumerate(place(engine, 3)):
        api.add(
            call_id,
            T0 + timedelta(milliseconds=100 * (i + 1)),
            number=phone,
            status="ringing",
            agent="agent-1",
        )
    p = poller(engine, api, Clock(T0 + timedelta(minutes=3)))
    assert [asyncio.run(p.poll_once()).history_pages for _ in range(2)] == [4, 4]


def test_paging_stops_at_the_skew_margin_when_a_call_is_missing(engine: Engine) -> None:
    api = FakeAPI()
    background(api, 300, 150)
    place(engine, 1)  # its call is not in the history (yet)
    stats = asyncio.run(poller(engine, api, Clock(T0 + timedelta(minutes=3))).poll_once())
    # must read back to T0 - 2 min: 150 newer + 121 older records = page 6 of 10
    assert stats.history_pages == 6


def test_final_calls_get_details_once_and_their_outcome(engine: Engine) -> None:
    api = FakeAPI()
    background(api, 20, 20)
    ours = place(engine, 3, retry_delays={"busy": 600})
    statuses = ["completed", "Busy", "ringing"]
    for (_, call_id, phone), status in zip(ours, statuses, strict=True):
        api.add(call_id, T0, number=phone, status=status, agent="agent-1")
    clock = Clock(T0 + timedelta(seconds=30))
    p = poller(engine, api, clock)
    stats = asyncio.run(p.poll_once())
    assert (stats.finished, stats.details_requests, stats.history_pages) == (2, 2, 1)
    rows = attempts(engine)
    done, busy, ringing = (rows[a] for a, _, _ in ours)
    assert (done.state, done.outcome, done.cstate) == ("finished", "answered", "done")
    assert done.summary == f"summary of {ours[0][1]}" and done.entity == {"email": "a@b.c"}
    assert done.details_fetched is True
    assert (busy.outcome, busy.cstate) == ("busy", "retry_wait")
    assert (ringing.state, ringing.cstate) == ("accepted", "awaiting_outcome")
    # the third ends; the finished ones are not fetched again
    api.record(ours[2][1])["call_status"] = "voicemail"
    stats = asyncio.run(p.poll_once())
    assert (stats.finished, stats.details_requests) == (1, 1)
    assert api.requests["details"] == 3
    stats = asyncio.run(p.poll_once())
    assert stats.requests == 0 and stats.live == 0


def test_opt_out_entity_suppresses_the_number(engine: Engine) -> None:
    api = FakeAPI()
    ((aid, call_id, phone),) = place(engine, 1)
    api.add(call_id, T0, number=phone, agent="agent-1")
    api.extra_details[call_id] = {"entity": {"opt_out": "yes"}}
    asyncio.run(poller(engine, api, Clock(T0 + timedelta(seconds=5))).poll_once())
    with engine.connect() as conn:
        sup = conn.execute(select(Suppression.phone_e164, Suppression.source)).all()
    assert sup == [(phone, f"opt_out:{call_id}")]
    assert attempts(engine)[aid].cstate == "done"


def test_details_failures_are_retried_then_given_up(engine: Engine) -> None:
    api = FakeAPI()
    ((aid, call_id, phone),) = place(engine, 1)
    api.add(call_id, T0, number=phone, agent="agent-1", status="no_answer")
    api.fail[call_id] = NotFoundError("HTTP 404", status_code=404)
    p = poller(engine, api, Clock(T0 + timedelta(seconds=5)))
    for _ in range(2):
        stats = asyncio.run(p.poll_once())
        assert stats.finished == 0 and stats.details_failures == 1
        assert attempts(engine)[aid].state == "accepted"
    stats = asyncio.run(p.poll_once())  # third failure: the history's status is enough
    row = attempts(engine)[aid]
    assert stats.finished == 1
    assert (row.state, row.outcome, row.details_fetched) == ("finished", "no_answer", False)
    assert row.cstate == "retry_wait" and "details unavailable" in row.error


def test_account_error_reaches_the_daemon(engine: Engine) -> None:
    api = FakeAPI()
    ((_, call_id, phone),) = place(engine, 1)
    api.add(call_id, T0, number=phone, agent="agent-1")
    api.fail[call_id] = AuthenticationError("HTTP 401", status_code=401)
    with pytest.raises(AuthenticationError):
        asyncio.run(poller(engine, api, Clock(T0)).poll_once())


def test_lost_answer_is_reconciled_and_finished_in_one_poll(engine: Engine) -> None:
    api = FakeAPI()
    background(api, 30, 30)
    ((aid, _, phone),) = place(engine, 1, unknown=1)
    api.add("outbound-found", T0 + timedelta(milliseconds=200), number=phone, agent="agent-1")
    stats = asyncio.run(poller(engine, api, Clock(T0 + timedelta(seconds=40))).poll_once())
    assert (stats.reconciled, stats.finished, stats.details_requests) == (1, 1, 1)
    row = attempts(engine)[aid]
    assert (row.state, row.call_id, row.outcome, row.cstate) == (
        "finished",
        "outbound-found",
        "answered",
        "done",
    )


def test_lost_answer_without_a_call_is_not_placed_after_the_grace(engine: Engine) -> None:
    api = FakeAPI()
    background(api, 200, 10)
    ((aid, _, phone),) = place(engine, 1, unknown=1)
    api.add("older-call-same-number", T0 - timedelta(minutes=30), number=phone, agent="agent-1")
    clock = Clock(T0 + timedelta(seconds=20))
    p = poller(engine, api, clock)
    stats = asyncio.run(p.poll_once())
    assert stats.not_placed == 0 and attempts(engine)[aid].state == "unknown"
    assert stats.history_pages == 3  # read back past T0 - 2 min, no further
    clock.now = T0 + timedelta(seconds=61)
    stats = asyncio.run(p.poll_once())
    row = attempts(engine)[aid]
    assert stats.not_placed == 1
    assert (row.state, row.cstate, row.n) == ("not_placed", "pending", 0)


def test_overdue_call_is_looked_up_then_flagged(engine: Engine) -> None:
    api = FakeAPI()
    ((aid, call_id, _), (aid2, _, _)) = place(engine, 2)

    # the API lists neither call in its history, but its details know both
    async def details(cid: str) -> CallOutcome:
        api.requests["details"] += 1
        status = "ringing" if cid == call_id else "completed"
        body = {"call_id": cid, "call_status": status, "summary": "s"}
        return parse_details(body, call_id=cid).to_outcome()

    api.outcome = details  # type: ignore[method-assign]
    clock = Clock(T0 + DEADLINE - timedelta(seconds=1))
    p = poller(engine, api, clock, lookup_every=timedelta(minutes=2))
    stats = asyncio.run(p.poll_once())
    assert stats.lookups == 0  # not overdue yet
    clock.now = T0 + DEADLINE + timedelta(seconds=1)
    stats = asyncio.run(p.poll_once())
    assert (stats.lookups, stats.finished) == (2, 1)  # the completed one is applied
    assert attempts(engine)[aid2].outcome == "answered"
    clock.now += timedelta(minutes=1)
    assert asyncio.run(p.poll_once()).lookups == 0  # not again before lookup_every
    clock.now = T0 + 2 * DEADLINE + timedelta(seconds=1)
    stats = asyncio.run(p.poll_once())
    row = attempts(engine)[aid]
    assert (stats.lookups, stats.no_outcome) == (1, 1)
    assert (row.state, row.outcome, row.cstate) == ("finished", "no_outcome", "retry_wait")
    assert "last status ringing" in row.error


# --------------------------------------------------------------------------- end to end


async def _dial_and_poll(sb: Sandbox, engine: Engine, jobs: list[Any]) -> list[Any]:
    async with VaaniProvider(sb.api_key, sb.base_url, timeout=10) as client:
        for job in jobs:
            sent = utcnow()
            res = await client.trigger_call(
                agent_id=job.campaign.agent_id,
                contact_number=job.phone_e164,
                name=job.name,
                metadata=job.metadata,
            )
            accept(
                engine,
                job.attempt_id,
                call_id=res.call_id,
                sent_at=sent,
                now=utcnow(),
                outcome_deadline=DEADLINE,
            )
        p = OutcomePoller(engine, client, page_size=20, outcome_deadline=DEADLINE)
        polls = []
        for _ in range(60):
            await asyncio.sleep(0.4)
            stats = await p.poll_once()
            polls.append(stats)
            if stats.live == 0:
                return polls
    raise AssertionError("outcomes still missing after 60 polls")


def test_outcomes_from_the_sandbox_with_background_calls(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(
        "--answer-rate",
        "0.5",
        "--call-seconds",
        "0.5-1.5",
        "--seed",
        "3",
        "--background-calls",
        "20",
    )
    from storage.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'e2e.db'}")
    upgrade(engine)
    cid = make_campaign(engine, agent_id="agent-e2e")
    phones = indian_numbers(10)
    make_contacts(engine, cid, phones)
    with engine.begin() as conn:  # test hooks: one opt-out, one forced busy
        for phone, hook in (
            (phones[0], {"sandbox_opt_out": "yes", "sandbox_outcome": "completed"}),
            (phones[1], {"sandbox_outcome": "busy"}),
        ):
            conn.execute(
                update(Contact)
                .where(Contact.phone_e164 == phone)
                .values(attributes={"customer_name": "X", **hook})
            )
    jobs = claims.claim_due(engine, daemon_id="d1", now=utcnow(), limit=10, decide=_dial).jobs
    polls = asyncio.run(_dial_and_poll(sb, engine, jobs))

    truth = {c["call_id"]: c for c in sb.calls()}
    stats = sb.stats()
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Attempt.call_id,
                Attempt.call_status,
                Attempt.outcome,
                Attempt.entity,
                Attempt.summary,
                Attempt.duration_s,
                Contact.phone_e164,
                Contact.state.label("cstate"),
            ).join(Contact, Contact.id == Attempt.contact_id)
        ).all()
        suppressed = conn.execute(select(Suppression.phone_e164)).scalars().all()
    assert len(rows) == 10 and {r.call_id for r in rows} == set(truth)
    expected = {
        "completed": "answered",
        "no_answer": "no_answer",
        "busy": "busy",
        "failed": "failed",
        "voicemail": "voicemail",
    }
    for r in rows:
        t = truth[r.call_id]
        assert r.call_status == t["call_status"] and r.outcome == expected[t["call_status"]]
        assert r.entity == t["entity"] and r.summary == t["summary"]
        assert r.duration_s == pytest.approx((t["duration_ms"] or 0) / 1000)
    by_phone = {r.phone_e164: r for r in rows}
    assert by_phone[phones[0]].cstate == "done" and suppressed == [phones[0]]
    assert (by_phone[phones[1]].outcome, by_phone[phones[1]].cstate) == ("busy", "retry_wait")
    # one details request per finished call, the rest is shared history pages
    assert stats["requests"]["call_details"] == 10
    assert sum(p.details_requests for p in polls) == 10
    assert stats["requests"]["call-history"] == sum(p.history_pages for p in polls)
    assert stats["background_calls"] > 0
    engine.dispose()
