"""Campaign reads, counts and lifecycle transitions (storage/campaigns_repo.py), on SQLite and
PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, insert, select, update

from storage import campaigns_repo as repo
from storage.errors import InvalidTransition, NotFound
from storage.models import Attempt, Campaign, Contact
from storage.states import CampaignStatus, ContactState
from tests.factories import make_campaign

ALL_CONTACT_STATES = [s.value for s in ContactState]
WAITING = {"pending", "retry_wait"}

# every (action, from status) pair the lifecycle allows, and the status it leads to
ALLOWED = {
    ("start", "draft"): "running",
    ("pause", "running"): "paused",
    ("resume", "paused"): "running",
    ("complete", "running"): "completed",
    ("stop", "draft"): "stopped",
    ("stop", "running"): "stopped",
    ("stop", "paused"): "stopped",
    ("cancel", "draft"): "cancelled",
    ("cancel", "running"): "cancelled",
    ("cancel", "paused"): "cancelled",
}
ACTIONS: dict[str, Callable[..., repo.TransitionResult]] = {
    "start": repo.start_campaign,
    "pause": repo.pause_campaign,
    "resume": repo.resume_campaign,
    "complete": repo.complete_campaign,
    "stop": repo.stop_campaign,
    "cancel": repo.cancel_campaign,
}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from storage.engine import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def one_contact_per_state(engine: Engine, campaign_id: int) -> dict[str, int]:
    """Insert one contact in every contact state (live attempts for the in-flight ones)."""
    ids = {}
    with engine.begin() as conn:
        for i, state in enumerate(ALL_CONTACT_STATES):
            phone = f"+9198{campaign_id:02d}{i:06d}"
            cid = conn.execute(
                insert(Contact)
                .values(
                    campaign_id=campaign_id,
                    row_number=i + 2,
                    phone_e164=phone,
                    state=state,
                    attempts=1 if state in ("dialing", "awaiting_outcome", "retry_wait") else 0,
                )
                .returning(Contact.id)
            ).scalar_one()
            ids[state] = int(cid)
            if state in ("dialing", "awaiting_outcome"):
                conn.execute(
                    insert(Attempt).values(
                        contact_id=cid,
                        campaign_id=campaign_id,
                        attempt_no=1,
                        phone_e164=phone,
                        state="reserved" if state == "dialing" else "accepted",
                    )
                )
    return ids


def contact_rows(engine: Engine, campaign_id: int) -> dict[int, tuple[str, str | None, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Contact.id, Contact.state, Contact.reason, Contact.attempts).where(
                Contact.campaign_id == campaign_id
            )
        ).all()
    return {r.id: (r.state, r.reason, r.attempts) for r in rows}


def test_every_allowed_transition_and_no_other(engine: Engine) -> None:
    """All 6 actions from all 6 statuses: allowed ones change the status, others raise and
    change nothing."""
    statuses = [s.value for s in CampaignStatus]
    cids = {
        (a, s): make_campaign(engine, status=s, name=f"{a} from {s}")
        for a in ACTIONS
        for s in statuses
    }
    for (action, status), cid in cids.items():
        target = ALLOWED.get((action, status))
        if target is None:
            with pytest.raises(InvalidTransition) as info:
                ACTIONS[action](engine, cid)
            assert info.value.current == status
            assert f"cannot {action} campaign {cid}" in str(info.value)
            assert f" {status}" in str(info.value).split("): ")[1]
            assert repo.get_campaign(engine, cid).status == status
        else:
            result = ACTIONS[action](engine, cid)
            assert (result.previous_status, result.campaign.status) == (status, target)
            assert repo.get_campaign(engine, cid).status == target


def test_invalid_transitions_say_what_to_do(engine: Engine) -> None:
    draft = make_campaign(engine, status="draft", name="Spring")
    paused = make_campaign(engine, status="paused")
    stopped = make_campaign(engine, status="stopped")
    with pytest.raises(
        InvalidTransition,
        match=r"cannot pause campaign \d+ \('Spring'\): it is draft; start it first",
    ):
        repo.pause_campaign(engine, draft)
    with pytest.raises(InvalidTransition, match="resume it instead"):
        repo.start_campaign(engine, paused)
    with pytest.raises(InvalidTransition, match="a stopped campaign is final"):
        repo.resume_campaign(engine, stopped)


@pytest.mark.parametrize("action", ["stop", "cancel"])
@pytest.mark.parametrize("start", ["running", "paused"])
def test_stop_and_cancel_cancel_waiting_contacts_and_let_in_flight_ones_finish(
    engine: Engine, action: str, start: str
) -> None:
    cid = make_campaign(engine, status=start)
    other = make_campaign(engine, status="running")
    ids = one_contact_per_state(engine, cid)
    one_contact_per_state(engine, other)
    before_other = contact_rows(engine, other)
    before = contact_rows(engine, cid)

    result = ACTIONS[action](engine, cid, reason="client asked")

    past = {"stop": "stopped", "cancel": "cancelled"}[action]
    assert result.contacts_cancelled == len(WAITING)
    assert result.campaign.status == past
    assert result.campaign.status_reason == "client asked"
    after = contact_rows(engine, cid)
    for state, contact_id in ids.items():
        if state in WAITING:
            assert after[contact_id] == (
                "cancelled",
                f"campaign {past}: client asked",
                before[contact_id][2],
            )
        else:  # in flight and terminal contacts are left exactly as they were
            assert after[contact_id] == before[contact_id]
    assert contact_rows(engine, other) == before_other  # other campaigns untouched
    # live attempts are still there for the outcome side to settle
    with engine.connect() as conn:
        live = (
            conn.execute(
                select(Attempt.state).where(Attempt.campaign_id == cid).order_by(Attempt.id)
            )
            .scalars()
            .all()
        )
    assert live == ["reserved", "accepted"]


def test_pause_then_resume_touches_no_contact(engine: Engine) -> None:
    cid = make_campaign(engine, status="running")
    one_contact_per_state(engine, cid)
    before = contact_rows(engine, cid)
    paused = repo.pause_campaign(engine, cid, reason="402 insufficient balance")
    assert paused.campaign.status_reason == "402 insufficient balance"
    assert paused.contacts_cancelled == 0
    resumed = repo.resume_campaign(engine, cid)
    assert resumed.campaign.status == "running"
    assert resumed.campaign.status_reason is None
    assert resumed.campaign.updated_at >= paused.campaign.updated_at
    assert contact_rows(engine, cid) == before
    with engine.connect() as conn:
        assert len(conn.execute(select(Attempt.id).where(Attempt.campaign_id == cid)).all()) == 2


def test_complete_requires_every_contact_terminal(engine: Engine) -> None:
    cid = make_campaign(engine, status="running")
    ids = one_contact_per_state(engine, cid)
    with pytest.raises(InvalidTransition, match="4 contacts are still waiting or in flight"):
        repo.complete_campaign(engine, cid)
    with engine.begin() as conn:
        conn.execute(update(Attempt).values(state="finished"))
        conn.execute(
            update(Contact)
            .where(
                Contact.id.in_(
                    [ids[s] for s in ("pending", "dialing", "awaiting_outcome", "retry_wait")]
                )
            )
            .values(state="done")
        )
    assert repo.complete_campaign(engine, cid).campaign.status == "completed"


def test_counts_by_state_lists_every_state(engine: Engine) -> None:
    cid = make_campaign(engine)
    empty = make_campaign(engine)
    one_contact_per_state(engine, cid)
    with engine.begin() as conn:
        conn.execute(
            insert(Contact).values(
                campaign_id=cid, row_number=100, phone_e164="+919899999999", state="done"
            )
        )
    counts = repo.counts_by_state(engine, cid)
    assert list(counts) == ALL_CONTACT_STATES
    assert counts == {s: (2 if s == "done" else 1) for s in ALL_CONTACT_STATES}
    assert repo.counts_by_state(engine, empty) == dict.fromkeys(ALL_CONTACT_STATES, 0)
    assert repo.counts_by_campaign(engine) == {
        cid: counts,
        empty: dict.fromkeys(ALL_CONTACT_STATES, 0),
    }


def test_reads_return_frozen_values_and_unknown_ids_raise(engine: Engine) -> None:
    a = make_campaign(engine, status="draft", name="A", retry_delays={"busy": 900})
    b = make_campaign(engine, status="running", name="B")
    records = repo.list_campaigns(engine)
    assert [(r.id, r.name, r.status) for r in records] == [(a, "A", "draft"), (b, "B", "running")]
    assert [r.id for r in repo.list_campaigns(engine, statuses=["running"])] == [b]
    rec = repo.get_campaign(engine, a)
    assert rec.retry_delays == {"busy": 900}
    assert rec.created_at.tzinfo is not None
    assert not rec.is_final
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.status = "running"  # type: ignore[misc]
    # every column of the table is carried by the value object
    assert {f.name for f in dataclasses.fields(rec)} == set(Campaign.__table__.columns.keys())
    for call in (repo.get_campaign, repo.counts_by_state, *ACTIONS.values()):
        with pytest.raises(NotFound, match="no campaign with id 9999"):
            call(engine, 9999)
