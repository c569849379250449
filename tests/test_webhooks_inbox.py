"""The webhook inbox (storage.inbox + scheduler.inbox) on SQLite and PostgreSQL.

Every verified event is kept; an event settles the accepted attempt with its call id through
the poller's own path (outcome, summary, entities, the contact's next state); replays and
events for settled attempts change nothing; an event that arrives before its call id is on an
attempt waits, and is applied once the call id lands (also after a lost answer is reconciled).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from scheduler.inbox import Inbox
from scheduler.providers.vaniagent_events import parse_payload
from scheduler.sweep import PushSweep
from storage.attempts import mark_reconciled
from storage.engine import make_engine
from storage.inbox import list_events, ready_events, store_event
from tests.webhooks_helpers import (
    DEADLINE,
    PROVIDER,
    T0,
    attempt,
    event,
    finished,
    land,
    place,
    reserve,
    vaniagent_source,
)


def receive(inbox: Inbox, payload: dict[str, Any]) -> bool:
    return asyncio.run(inbox.receive(PROVIDER, parse_payload(payload)))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def new_inbox(engine: Engine, sweep: PushSweep | None = None) -> Inbox:
    return Inbox(
        engine,
        {PROVIDER: vaniagent_source()},
        sweeps={PROVIDER: sweep} if sweep else None,
        clock=lambda: T0 + timedelta(minutes=1),
    )


def test_store_is_once_per_provider_and_event_id(engine: Engine) -> None:
    args: dict[str, Any] = {
        "event_id": "e1",
        "call_id": "c1",
        "kind": "call.completed",
        "payload": {"a": 1},
        "now": T0,
    }
    assert store_event(engine, provider=PROVIDER, **args)
    assert not store_event(engine, provider=PROVIDER, **args)
    assert store_event(engine, provider="other", **args)
    rows = list_events(engine)
    assert [(r.provider, r.event_id, r.payload, r.applied_at) for r in rows] == [
        (PROVIDER, "e1", {"a": 1}, None),
        ("other", "e1", {"a": 1}, None),
    ]


def test_event_settles_the_call_like_a_polled_outcome(engine: Engine) -> None:
    (aid, call_id), (other, _) = place(engine, 2)
    sweep = PushSweep(max_gap=3600, every_settled=1)
    assert sweep.due()  # the first poll always sweeps
    inbox = new_inbox(engine, sweep)
    assert not sweep.due()
    assert receive(inbox, event(call_id))
    row = attempt(engine, aid)
    assert (row.state, row.outcome, row.call_status, row.cstate) == (
        "finished",
        "answered",
        "completed",
        "done",
    )
    assert row.summary == f"summary of {call_id}" and row.duration_s == 42
    assert row.entity == {
        "sentiment": "positive",
        "transcript_url": f"https://example.test/{call_id}/transcript",
        "metadata": {"client_ref": "attempt-x"},
    }
    assert attempt(engine, other).state == "accepted"  # another call: untouched
    assert [e.applied_at is not None for e in list_events(engine)] == [True]
    assert inbox.settled == 1 and sweep.due()  # a settled call makes the sweep due


def test_failed_event_follows_the_retry_rules(engine: Engine) -> None:
    ((aid, call_id),) = place(engine, 1)
    inbox = new_inbox(engine)
    receive(inbox, event(call_id, "call.failed"))
    row = attempt(engine, aid)
    assert (row.outcome, row.call_status, row.cstate) == ("no_answer", "failed", "retry_wait")


def test_replays_and_events_for_settled_calls_change_nothing(engine: Engine) -> None:
    ((aid, call_id),) = place(engine, 1)
    inbox = new_inbox(engine)
    assert receive(inbox, event(call_id))
    before = attempt(engine, aid)
    assert not receive(inbox, event(call_id))  # the same event again: not even stored
    # a different event for the settled call (a contradicting call.failed) is kept, applied
    # as "nothing to do", and the attempt keeps its first outcome
    assert receive(inbox, event(call_id, "call.failed"))
    assert attempt(engine, aid) == before
    assert len(list_events(engine)) == 2
    assert all(e.applied_at is not None for e in list_events(engine))
    assert inbox.settled == 1


def test_non_final_events_are_kept_and_settle_nothing(engine: Engine) -> None:
    ((aid, call_id),) = place(engine, 1)
    inbox = new_inbox(engine)
    started = {"event": "call.started", "timestamp": "t", "data": {"call_id": call_id}}
    assert receive(inbox, started)
    assert attempt(engine, aid).state == "accepted"
    (stored,) = list_events(engine)
    assert stored.kind == "call.started" and stored.applied_at is not None


def test_early_event_waits_for_its_call_id_then_applies(engine: Engine) -> None:
    ((aid, _),) = place(engine, 1, unknown=1)  # the POST's answer was lost: no call id yet
    inbox = new_inbox(engine)
    assert receive(inbox, event("va-late"))
    assert attempt(engine, aid).state == "unknown"
    assert asyncio.run(inbox.apply(PROVIDER)) == 0  # still not known: kept, not dropped
    (pending,) = list_events(engine)
    assert pending.applied_at is None and pending.call_id == "va-late"
    # the poller reconciles the lost answer: the call id lands on the attempt
    assert mark_reconciled(
        engine, aid, call_id="va-late", call_started_at=T0, now=T0, outcome_deadline=DEADLINE
    )
    assert [r.attempt_id for r in ready_events(engine, PROVIDER)] == [aid]
    assert asyncio.run(inbox.apply(PROVIDER)) == 1
    assert attempt(engine, aid).outcome == "answered"
    assert ready_events(engine, PROVIDER) == []


def test_sweep_loop_applies_pending_events(engine: Engine) -> None:
    aid = reserve(engine)
    inbox = new_inbox(engine)

    async def scenario() -> str:
        await inbox.receive(PROVIDER, parse_payload(event("va-early")))
        task = asyncio.create_task(inbox.run_sweeps(every=0.05))
        try:
            await asyncio.sleep(0.1)
            # the dispatcher has not recorded the call id yet
            assert attempt(engine, aid).state == "reserved"
            land(engine, aid, "va-early")
            return str((await finished(engine, aid)).outcome)
        finally:
            task.cancel()

    assert asyncio.run(scenario()) == "answered"


def test_unreadable_stored_payload_is_skipped_not_fatal(engine: Engine) -> None:
    ((aid, call_id),) = place(engine, 1)
    store_event(
        engine,
        provider=PROVIDER,
        event_id="bad",
        call_id=call_id,
        kind="call.completed",
        payload={"not": "an event"},
        now=T0,
    )
    inbox = new_inbox(engine)
    assert asyncio.run(inbox.apply(PROVIDER)) == 0
    assert attempt(engine, aid).state == "accepted"
    assert json.dumps([e.applied_at is not None for e in list_events(engine)]) == "[true]"
