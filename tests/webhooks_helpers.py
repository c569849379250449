"""Helpers of the webhook tests: the VaniAgent provider as an EventSource, VaniAgent events,
attempts in each state an event can meet, and a receiver served on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, select

from scheduler.inbox import Inbox
from scheduler.providers.base import EventSource
from scheduler.providers.vaniagent import VaniAgentProvider
from scheduler.webhooks_in import Channel, Receiver, bind
from storage import claims, settle
from storage.claims import Decision
from storage.models import Attempt, Contact
from tests.factories import accept, indian_numbers, make_campaign, make_contacts

SECRET = "whsec-test-a81f40c2"
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
DEADLINE = timedelta(minutes=10)
PROVIDER = "vaniagent"


def vaniagent_source() -> EventSource:
    """The real VaniAgent provider as the receiver's EventSource (no request is ever made:
    verifying and parsing events is local)."""
    return VaniAgentProvider("test-key-webhooks-2d7e", "http://127.0.0.1:9")


def event(call_id: str, kind: str = "call.completed", **data: Any) -> dict[str, Any]:
    """A VaniAgent event for ``call_id`` (the seed's payload shape)."""
    fields: dict[str, Any] = {
        "call_id": call_id,
        "agent_id": "agent-1",
        "duration": 42,
        "status": "completed" if kind == "call.completed" else "failed",
        "end_reason": "completed" if kind == "call.completed" else "no_answer",
        "sentiment": "positive",
        "transcript_url": f"https://example.test/{call_id}/transcript",
        "summary": f"summary of {call_id}",
        "metadata": {"client_ref": "attempt-x"},
    }
    fields.update(data)
    return {"event": kind, "timestamp": "2026-05-04T10:01:00Z", "data": fields}


def place(engine: Engine, n: int, *, unknown: int = 0) -> list[tuple[int, str]]:
    """``n`` VaniAgent attempts; the first ``n - unknown`` accepted with call ids ``va-<i>``,
    the rest lost answers. Returns (attempt id, call id or "")."""
    cid = make_campaign(engine, provider=PROVIDER, max_attempts=2)
    make_contacts(engine, cid, indian_numbers(n))
    jobs = claims.claim_due(
        engine, daemon_id="d1", now=T0, limit=n, decide=lambda *_: Decision.dial()
    ).jobs
    out = []
    for i, job in enumerate(jobs):
        if i >= n - unknown:
            settle.record_unknown(engine, job.attempt_id, sent_at=T0, now=T0, error="lost")
            out.append((job.attempt_id, ""))
            continue
        accept(
            engine, job.attempt_id, call_id=f"va-{i}", sent_at=T0, now=T0, outcome_deadline=DEADLINE
        )
        out.append((job.attempt_id, f"va-{i}"))
    return out


def attempt(engine: Engine, attempt_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(
                Attempt.state,
                Attempt.outcome,
                Attempt.call_status,
                Attempt.summary,
                Attempt.entity,
                Attempt.duration_s,
                Contact.state.label("cstate"),
            )
            .join(Contact, Contact.id == Attempt.contact_id)
            .where(Attempt.id == attempt_id)
        ).one()


def reserve(engine: Engine) -> int:
    """One VaniAgent attempt whose POST is in flight (reserved, no call id yet): its id."""
    make_contacts(engine, make_campaign(engine, provider=PROVIDER), indian_numbers(1))
    (job,) = claims.claim_due(
        engine, daemon_id="d1", now=T0, limit=1, decide=lambda *_: Decision.dial()
    ).jobs
    return job.attempt_id


def land(engine: Engine, attempt_id: int, call_id: str) -> None:
    """The POST's answer arrives: the dispatcher records ``call_id`` on the attempt."""
    accept(engine, attempt_id, call_id=call_id, sent_at=T0, now=T0, outcome_deadline=DEADLINE)


async def finished(engine: Engine, attempt_id: int, timeout: float = 4.0) -> Any:
    """The attempt once finished (or as it is after ``timeout`` seconds)."""
    for _ in range(int(timeout / 0.02)):
        if attempt(engine, attempt_id).state == "finished":
            break
        await asyncio.sleep(0.02)
    return attempt(engine, attempt_id)


@contextlib.asynccontextmanager
async def serving(
    inbox: Inbox, provider: str = "vaniagent"
) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """A receiver for ``provider``'s events on a free loopback port; yields its base URL and
    an HTTP client."""
    channel = Channel(provider=provider, source=vaniagent_source(), secret=SECRET)
    receiver = Receiver(inbox, {provider: channel}, bind("127.0.0.1", 0))
    await receiver.start()
    try:
        async with httpx.AsyncClient() as http:
            yield f"http://127.0.0.1:{receiver.port}", http
    finally:
        await receiver.stop()
