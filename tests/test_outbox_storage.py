"""The outbox on SQLite and PostgreSQL: an event row exists if and only if the state change
that causes it committed, and delivery claims keep events in order per contact."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from campaigns.dialing import OutcomeRules
from campaigns.webhooks import fingerprint
from storage import campaigns_repo, claims, outbox, progress, settle, suppressions
from storage import outbox_delivery as delivery
from storage import outcomes as stored
from storage.campaigns_repo import CampaignRecord
from storage.claims import Decision
from storage.engine import make_engine
from storage.models import Contact, OutboxEvent, utcnow
from storage.outcomes import CallResult, ContactMove
from storage.states import ContactState, Outcome
from tests.factories import accept, indian_numbers, make_campaign, make_contacts
from tests.test_report_builder import in_process_cli

FP = fingerprint("s3cret-webhook")
HOOK = {"webhook_url": "http://127.0.0.1:9/hook", "webhook_secret_fp": FP}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _dial(*_: Any) -> Decision:
    return Decision.dial()


def placed(engine: Engine, n: int, now: datetime, **campaign: Any) -> tuple[int, list[int]]:
    """A campaign with ``n`` contacts whose calls were placed; its id and the attempt ids."""
    cid = make_campaign(engine, **campaign)
    make_contacts(engine, cid, indian_numbers(n))
    jobs = claims.claim_due(engine, daemon_id="d1", now=now, limit=n, decide=_dial).jobs
    for j in jobs:
        assert accept(
            engine,
            j.attempt_id,
            call_id=f"call-{j.attempt_id}",
            sent_at=now,
            now=now,
            outcome_deadline=timedelta(minutes=15),
        )
    return cid, [j.attempt_id for j in jobs]


def events(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(OutboxEvent).order_by(OutboxEvent.id)))


def body(row: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row.payload)
    return data


ANSWERED = CallResult(
    outcome=Outcome.ANSWERED,
    call_status="completed",
    duration_ms=42_000,
    summary="wants a callback",
    entity={"email": "a@example.com"},
)


def test_finished_contact_writes_one_event_with_the_documented_body(engine: Engine) -> None:
    now = utcnow()
    cid, (aid,) = placed(engine, 1, now, **HOOK)
    applied = stored.apply_outcome(engine, aid, ANSWERED, now=now, rules=OutcomeRules())
    assert applied is not None and applied.contact_state == "done"
    (row,) = events(engine)
    b = body(row)
    assert set(b) == {"id", "event", "created_at", "data"}
    assert b["id"] == row.event_id and b["event"] == "contact.finished" == row.event
    d = b["data"]
    assert d["campaign_id"] == cid and d["state"] == "done" and d["outcome"] == "answered"
    assert d["attempts"] == 1 and d["duration_s"] == 42.0 and d["summary"] == "wants a callback"
    assert d["entities"] == {"email": "a@example.com"}
    assert d["contact"]["phone_e164"] == indian_numbers(1)[0]
    assert d["contact"]["metadata"]["customer_name"] == d["contact"]["name"]
    assert row.contact_id == d["contact"]["id"]


def test_no_event_for_a_redial_or_a_campaign_without_webhook(engine: Engine) -> None:
    now = utcnow()
    _, (aid,) = placed(engine, 1, now, **HOOK)
    no_answer = CallResult(outcome=Outcome.NO_ANSWER, call_status="no_answer")
    applied = stored.apply_outcome(engine, aid, no_answer, now=now, rules=OutcomeRules())
    assert applied is not None and applied.contact_state == "retry_wait"
    _, (other,) = placed(engine, 1, now)  # no webhook: nothing is written
    assert stored.apply_outcome(engine, other, ANSWERED, now=now, rules=OutcomeRules())
    assert events(engine) == []


class _FailOnSecond:
    """Outcome rules that fail half-way through a batch, after a first move (and event)."""

    def __init__(self) -> None:
        self.calls = 0

    def after_outcome(
        self,
        campaign: CampaignRecord,
        *,
        outcome: Outcome,
        entity: Mapping[str, Any] | None,
        attempts: int,
        now: datetime,
        **_: Any,
    ) -> ContactMove:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("crash mid-transaction")
        return ContactMove(state=ContactState.DONE)


def test_event_rolls_back_with_its_state_change(engine: Engine) -> None:
    """The first outcome of the batch moved its contact and wrote its event; the crash on
    the second rolls back both: no event without its change, no change without its event."""
    now = utcnow()
    _, aids = placed(engine, 2, now, **HOOK)
    rules = _FailOnSecond()
    with pytest.raises(RuntimeError):
        stored.apply_outcomes(engine, [(a, ANSWERED) for a in aids], now=now, rules=rules)
    assert rules.calls == 2
    assert events(engine) == []
    with engine.connect() as conn:
        states = set(conn.execute(select(Contact.state)).scalars())
    assert states == {"awaiting_outcome"}
    # the same batch with working rules commits both changes and both events
    stored.apply_outcomes(engine, [(a, ANSWERED) for a in aids], now=now, rules=OutcomeRules())
    assert [r.event for r in events(engine)] == ["contact.finished"] * 2


def test_opt_out_writes_finished_then_opted_out(engine: Engine) -> None:
    now = utcnow()
    _, (aid,) = placed(engine, 1, now, **HOOK)
    res = CallResult(outcome=Outcome.ANSWERED, call_status="completed", entity={"opt_out": True})
    stored.apply_outcome(engine, aid, res, now=now, rules=OutcomeRules())
    rows = events(engine)
    assert [r.event for r in rows] == ["contact.finished", "contact.opted_out"]
    assert body(rows[1])["data"]["entity"] == "opt_out"
    assert rows[0].contact_id == rows[1].contact_id


def test_lifecycle_events_pause_stop_and_complete(engine: Engine) -> None:
    cid = make_campaign(engine, **HOOK)
    make_contacts(engine, cid, indian_numbers(3))
    campaigns_repo.pause_campaign(engine, cid, reason="paused by the API (402)")
    campaigns_repo.stop_campaign(engine, cid, reason="enough")
    rows = events(engine)
    assert [r.event for r in rows] == ["campaign.paused"] + ["contact.finished"] * 3
    assert body(rows[0])["data"]["reason"] == "paused by the API (402)"
    assert rows[0].contact_id is None
    assert {body(r)["data"]["state"] for r in rows[1:]} == {"cancelled"}

    done = make_campaign(engine, **HOOK)
    make_contacts(engine, done, indian_numbers(1, start=10), state="done")
    campaigns_repo.complete_campaign(engine, done)
    last = events(engine)[-1]
    assert last.event == "campaign.completed"
    assert body(last)["data"]["counts"] == {"done": 1}


def test_refused_transition_writes_no_event(engine: Engine) -> None:
    cid = make_campaign(engine, status="draft", **HOOK)
    with pytest.raises(campaigns_repo.InvalidTransition):
        campaigns_repo.pause_campaign(engine, cid, reason="x")
    assert events(engine) == []


def test_rejected_call_and_dial_time_close_write_events(engine: Engine) -> None:
    now = utcnow()
    cid = make_campaign(engine, **HOOK)
    make_contacts(engine, cid, indian_numbers(2))
    (job,) = claims.claim_due(engine, daemon_id="d1", now=now, limit=1, decide=_dial).jobs
    assert settle.record_rejected(
        engine,
        job.attempt_id,
        now=now,
        contact_state=ContactState.INVALID,
        reason="422: not a callable number",
        http_status=422,
    )

    def close(*_: Any) -> Decision:
        return Decision.close(ContactState.SUPPRESSED, "on the do-not-call list")

    claims.claim_due(engine, daemon_id="d1", now=now, limit=1, decide=close)
    states = [body(r)["data"]["state"] for r in events(engine)]
    assert states == ["invalid", "suppressed"]


# --------------------------------------------------------------------------- delivery


def _claim(engine: Engine, now: datetime, fp: str = FP, daemon: str = "d1") -> list[int]:
    got = delivery.claim_due(
        engine, fingerprint=fp, daemon_id=daemon, now=now, lease=timedelta(seconds=30)
    )
    return [d.id for d in got]


def test_claims_keep_order_per_contact_and_respect_leases(engine: Engine) -> None:
    now = utcnow()
    _, (aid,) = placed(engine, 1, now, **HOOK)
    res = CallResult(outcome=Outcome.ANSWERED, call_status="completed", entity={"opt_out": 1})
    stored.apply_outcome(engine, aid, res, now=now, rules=OutcomeRules())
    first, second = (r.id for r in events(engine))
    assert _claim(engine, now) == [first]  # the second waits for the first
    assert _claim(engine, now, daemon="d2") == []  # leased by d1
    delivery.mark_failed(engine, first, now=now, error="HTTP 500", retry_at=now)
    assert _claim(engine, now, daemon="d2") == [first]  # failed, due again: still first
    delivery.mark_delivered(engine, first, now=now)
    assert _claim(engine, now) == [second]
    delivery.mark_failed(engine, second, now=now, error="HTTP 410", retry_at=None)
    assert _claim(engine, now + timedelta(hours=1)) == []
    counts = outbox.outbox_counts(engine, events(engine)[0].campaign_id)
    assert (counts.pending, counts.delivered, counts.dead) == (0, 1, 1)
    assert counts.last_dead_error == "HTTP 410"
    assert counts.last_dead_event_id == events(engine)[1].event_id


def test_events_of_another_secret_are_held_not_claimed(engine: Engine) -> None:
    now = utcnow()
    cid, (aid,) = placed(engine, 1, now, **HOOK)
    stored.apply_outcome(engine, aid, ANSWERED, now=now, rules=OutcomeRules())
    other = fingerprint("another secret")
    assert _claim(engine, now, fp=other) == []
    assert delivery.pending_count(engine, other) == 0
    assert delivery.held_campaigns(engine, other) == [cid]
    assert delivery.held_campaigns(engine, None) == [cid]  # no secret at all
    assert delivery.held_campaigns(engine, FP) == []
    assert delivery.pending_count(engine, FP) == 1
    assert _claim(engine, now + timedelta(seconds=1)) != []


def test_campaign_show_counts_events_and_names_the_newest_dead_one(
    sqlite_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = make_engine(sqlite_url)
    hook = {**HOOK, "webhook_url": "https://crm.example.com/hook?token=tok-9f8e7d"}
    cid = make_campaign(engine, **hook)
    make_contacts(engine, cid, indian_numbers(2))
    campaigns_repo.cancel_campaign(engine, cid)
    first, second = events(engine)
    delivery.mark_delivered(engine, first.id, now=utcnow())
    delivery.mark_failed(engine, second.id, now=utcnow(), error="HTTP 410", retry_at=None)
    plain = make_campaign(engine)
    engine.dispose()
    cli = in_process_cli(request, monkeypatch)

    monkeypatch.setenv("COLUMNS", "200")
    assert cli("--db", sqlite_url, "campaign", "show", str(cid)) == 0
    text = capsys.readouterr().out
    assert (
        f"events to https://crm.example.com/hook: 0 waiting, 1 delivered, 1 dead "
        f"(newest dead: {second.event_id}: HTTP 410)"
    ) in text
    assert "tok-9f8e7d" not in text  # a token in the URL's query is not shown
    assert cli("--db", sqlite_url, "campaign", "show", str(cid), "--json") == 0
    data = json.loads(capsys.readouterr().out)["outbox"]
    assert (data["pending"], data["delivered"], data["dead"]) == (0, 1, 1)
    assert data["last_dead_error"] == "HTTP 410" and data["last_dead_at"].endswith("Z")
    assert cli("--db", sqlite_url, "campaign", "show", str(plain), "--json") == 0
    assert json.loads(capsys.readouterr().out)["outbox"] is None


def test_dnc_added_mid_campaign_and_campaign_end_write_events(engine: Engine) -> None:
    now = utcnow()
    cid = make_campaign(engine, end_at=now + timedelta(hours=1), **HOOK)
    phones = indian_numbers(3)
    make_contacts(engine, cid, phones)
    change = suppressions.add_to_list(engine, [phones[0]], reason="asked", source="cli")
    assert change.suppressed_contacts == 1
    progress.close_ended_campaigns(engine, now + timedelta(hours=2))  # past its end
    rows = events(engine)
    got = [(body(r)["data"]["contact"]["phone_e164"], body(r)["data"]["state"]) for r in rows[:3]]
    assert got == [(phones[0], "suppressed"), (phones[1], "expired"), (phones[2], "expired")]
    assert [r.event for r in rows[3:]] == ["campaign.completed"]
