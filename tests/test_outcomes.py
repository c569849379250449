"""Status classification (scheduler/outcomes.py), the outcome rules (campaigns/dialing.py) and
outcome application (storage/outcomes.py), on SQLite and PostgreSQL, with attempts placed
through the real claim and settlement code."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from campaigns.dialing import OutcomeRules, is_truthy, opted_out
from scheduler.outcomes import NON_FINAL_STATUSES, classify, normalise_status
from storage import claims
from storage import outcomes as stored
from storage.claims import Decision
from storage.engine import make_engine
from storage.models import Attempt, Campaign, Contact, Suppression, utcnow
from storage.outcomes import CallResult
from storage.states import Outcome
from tests.factories import accept, indian_numbers, make_campaign, make_contacts

# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("completed", Outcome.ANSWERED),
        ("Completed", Outcome.ANSWERED),
        ("no_answer", Outcome.NO_ANSWER),
        ("no-answer", Outcome.NO_ANSWER),
        ("NOT_ANSWERED", Outcome.NO_ANSWER),
        ("missed", Outcome.NO_ANSWER),
        ("busy", Outcome.BUSY),
        ("failed", Outcome.FAILED),
        ("error", Outcome.FAILED),
        ("cancelled", Outcome.FAILED),
        ("rejected", Outcome.FAILED),
        ("voicemail", Outcome.VOICEMAIL),
        ("machine", Outcome.VOICEMAIL),
        # unknown but final-looking: failed (the raw status is kept by the caller)
        ("carrier_blocked", Outcome.FAILED),
        ("queued", None),
        ("ringing", None),
        ("in_progress", None),
        ("in-progress", None),
        ("initiated", None),
        (None, None),
        ("  ", None),
    ],
)
def test_classify(status: str | None, outcome: Outcome | None) -> None:
    assert classify(status) == outcome


@given(st.text(max_size=30))
def test_classify_any_text(status: str) -> None:
    """Never raises; in-progress statuses are never final, anything else is some outcome."""
    result = classify(status)
    key = normalise_status(status)
    if key is None or key in NON_FINAL_STATUSES:
        assert result is None
    else:
        assert isinstance(result, Outcome)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_- ", max_size=20))
def test_classify_ignores_case_and_separators(status: str) -> None:
    assert classify(status.upper()) == classify(status)
    assert classify(status.replace("_", "-")) == classify(status.replace("-", "_"))


@given(st.sampled_from(sorted(NON_FINAL_STATUSES)), st.booleans())
def test_non_final_spellings(status: str, upper: bool) -> None:
    text = status.replace("_", "-")
    assert classify(text.upper() if upper else text) is None


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        (True, True),
        ("yes", True),
        ("TRUE", True),
        (" y ", True),
        (1, True),
        ("1", True),
        (False, False),
        ("no", False),
        ("false", False),
        (0, False),
        (None, False),
        ("", False),
        ({"x": 1}, False),
    ],
)
def test_is_truthy(value: Any, truthy: bool) -> None:
    assert is_truthy(value) is truthy


def test_opted_out_matches_configured_keys_case_insensitively() -> None:
    keys = ["opt_out", "do_not_call"]
    assert opted_out({"Do_Not_Call": "yes"}, keys) == "do_not_call"
    assert opted_out({"opt_out": False, "email": "a@b.c"}, keys) is None
    assert opted_out({"unsubscribe": True}, keys) is None
    assert opted_out({"unsubscribe": True}, ["unsubscribe"]) == "unsubscribe"
    assert opted_out(None, keys) is None


# --------------------------------------------------------------------------- applying


def apply_outcome(
    engine: Engine, attempt_id: int, result: CallResult, **kw: Any
) -> stored.Applied | None:
    """``storage.outcomes.apply_outcome`` with the calling policy's rules, as the poller."""
    return stored.apply_outcome(engine, attempt_id, result, rules=OutcomeRules(), **kw)


def apply_outcomes(
    engine: Engine, items: Sequence[tuple[int, CallResult]], **kw: Any
) -> list[stored.Applied | None]:
    return stored.apply_outcomes(engine, items, rules=OutcomeRules(), **kw)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _dial(*_: Any) -> Decision:
    return Decision.dial()


def place_calls(
    engine: Engine, n: int, *, now: datetime, start: int = 0, **campaign: Any
) -> tuple[int, list[int], list[str]]:
    """A campaign with ``n`` contacts, each claimed and accepted (live attempt with a call_id).
    Returns the campaign id, the attempt ids and the call ids."""
    cid = make_campaign(engine, **campaign)
    make_contacts(engine, cid, indian_numbers(n, start=start))
    jobs = claims.claim_due(engine, daemon_id="d1", now=now, limit=n, decide=_dial).jobs
    call_ids = []
    for job in jobs:
        call_id = f"outbound-{job.attempt_id}-{start}"
        assert accept(
            engine,
            job.attempt_id,
            call_id=call_id,
            sent_at=now,
            now=now,
            outcome_deadline=timedelta(minutes=15),
        )
        call_ids.append(call_id)
    return cid, [j.attempt_id for j in jobs], call_ids


def contact_of(engine: Engine, attempt_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(Contact)
            .join(Attempt, Attempt.contact_id == Contact.id)
            .where(Attempt.id == attempt_id)
        ).one()


def attempt(engine: Engine, attempt_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(Attempt).where(Attempt.id == attempt_id)).one()


def result(outcome: Outcome, status: str, **kw: Any) -> CallResult:
    return CallResult(outcome=outcome, call_status=status, **kw)


def test_answered_finishes_attempt_and_contact(engine: Engine) -> None:
    now = utcnow()
    _, (aid,), (call_id,) = place_calls(engine, 1, now=now)
    raw = {"call_id": call_id, "call_status": "Completed", "duration_ms": 4250}
    applied = apply_outcome(
        engine,
        aid,
        result(
            Outcome.ANSWERED,
            "Completed",
            duration_ms=4250,
            summary="Asha answered.",
            entity={"email": "asha@example.com"},
            raw=raw,
            call_started_at=now,
            details_fetched=True,
        ),
        now=now + timedelta(seconds=5),
    )
    assert applied is not None and applied.contact_state == "done" and not applied.opted_out
    a = attempt(engine, aid)
    assert (a.state, a.outcome, a.call_status) == ("finished", "answered", "Completed")
    assert a.duration_s == pytest.approx(4.25)
    assert a.summary == "Asha answered." and a.entity == {"email": "asha@example.com"}
    assert a.raw == raw and a.details_fetched is True
    assert a.finished_at == now + timedelta(seconds=5)
    c = contact_of(engine, aid)
    assert (c.state, c.outcome, c.attempts) == ("done", "answered", 1)


def test_redial_outcome_waits_for_the_campaign_delay(engine: Engine) -> None:
    now = utcnow()
    _, aids, _ = place_calls(engine, 2, now=now, retry_delays={"busy": 900})
    applied = apply_outcome(engine, aids[0], result(Outcome.BUSY, "busy"), now=now)
    assert applied is not None and applied.contact_state == "retry_wait"
    c = contact_of(engine, aids[0])
    assert (c.state, c.outcome) == ("retry_wait", "busy")
    assert c.next_attempt_at == now + timedelta(seconds=900)
    # no_answer uses the campaign's base delay (factories: retry_delay_s=60)
    apply_outcome(engine, aids[1], result(Outcome.NO_ANSWER, "no-answer"), now=now)
    c = contact_of(engine, aids[1])
    assert c.state == "retry_wait" and c.next_attempt_at == now + timedelta(seconds=60)
    assert attempt(engine, aids[1]).call_status == "no-answer"


def test_attempt_cap_exhausts_and_unredialled_voicemail_is_done(engine: Engine) -> None:
    now = utcnow()
    _, capped, _ = place_calls(engine, 1, now=now, max_attempts=1)
    _, vm, _ = place_calls(engine, 1, now=now, start=50, redial_voicemail=False)
    apply_outcome(engine, capped[0], result(Outcome.NO_ANSWER, "no_answer"), now=now)
    c = contact_of(engine, capped[0])
    assert (c.state, c.outcome, c.next_attempt_at) == ("exhausted", "no_answer", None)
    apply_outcome(engine, vm[0], result(Outcome.VOICEMAIL, "voicemail"), now=now)
    c = contact_of(engine, vm[0])
    assert (c.state, c.outcome) == ("done", "voicemail")


def test_no_outcome_is_redialled_per_policy(engine: Engine) -> None:
    now = utcnow()
    _, (aid,), _ = place_calls(engine, 1, now=now)
    flagged = result(Outcome.NO_OUTCOME, "ringing", error="no outcome within 30m")
    apply_outcome(engine, aid, flagged, now=now)
    a = attempt(engine, aid)
    assert (a.state, a.outcome, a.error) == ("finished", "no_outcome", "no outcome within 30m")
    assert contact_of(engine, aid).state == "retry_wait"


def test_stopped_campaign_closes_instead_of_redialling(engine: Engine) -> None:
    now = utcnow()
    cid, (aid,), _ = place_calls(engine, 1, now=now)
    with engine.begin() as conn:
        conn.execute(update(Campaign).where(Campaign.id == cid).values(status="stopped"))
    apply_outcome(engine, aid, result(Outcome.NO_ANSWER, "no_answer"), now=now)
    c = contact_of(engine, aid)
    assert (c.state, c.outcome) == ("cancelled", "no_answer")


def test_opt_out_suppresses_the_number_once(engine: Engine) -> None:
    now = utcnow()
    # the same number in two campaigns opts out on both calls
    _, first, calls1 = place_calls(engine, 1, now=now)
    _, second, _ = place_calls(engine, 1, now=now)
    for aid, value in ((first[0], True), (second[0], "yes")):
        applied = apply_outcome(
            engine,
            aid,
            result(Outcome.NO_ANSWER, "completed", entity={"opt_out": value}),
            now=now,
        )
        assert applied is not None and applied.opted_out
        c = contact_of(engine, aid)
        assert c.state == "done" and c.reason.startswith("opted out")
    with engine.connect() as conn:
        rows = conn.execute(select(Suppression)).all()
    assert len(rows) == 1
    assert rows[0].campaign_id is None and rows[0].phone_e164 == indian_numbers(1)[0]
    assert rows[0].source == f"opt_out:{calls1[0]}"


def test_custom_opt_out_entity(engine: Engine) -> None:
    now = utcnow()
    _, (aid,), _ = place_calls(engine, 1, now=now, opt_out_entities=["unsubscribe"])
    entity = {"opt_out": True, "unsubscribe": "no"}  # only the configured key counts
    apply_outcome(engine, aid, result(Outcome.ANSWERED, "completed", entity=entity), now=now)
    with engine.connect() as conn:
        assert conn.execute(select(Suppression)).all() == []


def test_second_application_changes_nothing(engine: Engine) -> None:
    now = utcnow()
    _, (aid,), _ = place_calls(engine, 1, now=now)
    assert apply_outcome(engine, aid, result(Outcome.NO_ANSWER, "no_answer"), now=now)
    later = now + timedelta(minutes=1)
    assert apply_outcome(engine, aid, result(Outcome.ANSWERED, "completed"), now=later) is None
    a, c = attempt(engine, aid), contact_of(engine, aid)
    assert (a.outcome, a.finished_at, c.state) == ("no_answer", now, "retry_wait")


def test_two_daemons_applying_at_once_apply_once(engine: Engine, db_url: str) -> None:
    now = utcnow()
    _, aids, _ = place_calls(engine, 10, now=now)
    engines = [make_engine(db_url), make_engine(db_url)]
    applied: list[Sequence[object]] = [[], []]
    barrier = threading.Barrier(2)

    def worker(i: int) -> None:
        barrier.wait()
        if i == 0:  # one outcome per transaction
            for aid in aids:
                r = apply_outcome(engines[i], aid, result(Outcome.BUSY, "busy"), now=now)
                if r is not None:
                    applied[i].append(aid)  # type: ignore[attr-defined]
            return
        # a whole poll's batch, in another order
        batch = [(aid, result(Outcome.BUSY, "busy")) for aid in reversed(aids)]
        for (aid, _), r in zip(batch, apply_outcomes(engines[i], batch, now=now), strict=True):
            if r is not None:
                assert r.attempt_id == aid
                applied[i].append(aid)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for eng in engines:
        eng.dispose()
    assert sorted([*applied[0], *applied[1]]) == sorted(aids)
    with engine.connect() as conn:
        states = conn.execute(select(Contact.state, Contact.attempts)).all()
    assert states == [("retry_wait", 1)] * 10
