"""The daemon's bookkeeping in the database (storage/progress.py), on SQLite and PostgreSQL:
ended campaigns expire their waiting contacts, campaigns with nothing open complete through
the checked lifecycle transition, and progress says whether work is left."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update

from scheduler.daemon import _pause_campaign
from storage import campaigns_repo, progress
from storage.engine import make_engine
from storage.models import Campaign, Contact, utcnow
from tests.factories import indian_numbers, make_campaign, make_contacts


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def test_ended_campaign_expires_waiting_contacts_and_completes(engine: Engine) -> None:
    now = utcnow()
    long_ago = now - timedelta(days=3)
    ended = make_campaign(engine, end_at=now - timedelta(minutes=1), updated_at=long_ago)
    make_contacts(engine, ended, indian_numbers(2))
    make_contacts(engine, ended, indian_numbers(1, start=5), state="retry_wait", first_row=9)
    live = make_campaign(engine, updated_at=long_ago)
    make_contacts(engine, live, indian_numbers(2, start=10))
    assert progress.progress(engine).work_left

    assert progress.close_ended_campaigns(engine, now) == [ended]
    with engine.connect() as conn:
        states = conn.execute(
            select(Contact.state, Contact.reason).where(Contact.campaign_id == ended)
        ).all()
    assert {s for s, _ in states} == {"expired"} and len(states) == 3
    assert all("ended before" in (r or "") for _, r in states)
    done = campaigns_repo.get_campaign(engine, ended)
    assert done.status == "completed" and done.updated_at == now  # the transition's stamp
    assert campaigns_repo.get_campaign(engine, live).status == "running"
    assert progress.close_ended_campaigns(engine, now) == []  # idempotent


def test_a_campaign_completes_once_nothing_is_open_and_progress_counts(engine: Engine) -> None:
    now = utcnow()
    cid = make_campaign(engine)
    (a, b) = make_contacts(engine, cid, indian_numbers(2))
    with engine.begin() as conn:
        conn.execute(update(Contact).where(Contact.id == a).values(state="done"))
        conn.execute(update(Contact).where(Contact.id == b).values(state="awaiting_outcome"))
    assert progress.close_ended_campaigns(engine, now) == []  # a call is still in flight
    state = progress.progress(engine, with_counts=True)
    assert state.work_left and state.counts == {cid: {"done": 1, "awaiting_outcome": 1}}
    assert progress.progress(engine).counts == {}  # counted only for the display
    with engine.begin() as conn:
        conn.execute(update(Contact).where(Contact.id == b).values(state="done"))
    assert progress.close_ended_campaigns(engine, now) == [cid]
    assert not progress.progress(engine).work_left


def test_the_daemon_pauses_through_the_lifecycle_transition(engine: Engine) -> None:
    now = utcnow()
    cid = make_campaign(engine, updated_at=now - timedelta(days=1))
    _pause_campaign(engine, cid, "paused by the API (403): forbidden", now)
    camp = campaigns_repo.get_campaign(engine, cid)
    assert (camp.status, camp.status_reason) == ("paused", "paused by the API (403): forbidden")
    assert camp.updated_at == now  # the policy cache sees the change
    # a campaign no longer running (paused already, or gone) is left alone, quietly
    _pause_campaign(engine, cid, "again", now + timedelta(seconds=1))
    _pause_campaign(engine, cid + 1000, "missing", now)
    with engine.connect() as conn:
        assert conn.execute(select(Campaign.status_reason)).scalar() == (
            "paused by the API (403): forbidden"
        )
