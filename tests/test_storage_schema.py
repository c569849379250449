"""What the database itself enforces, on SQLite and PostgreSQL (the migrated schema).

Invariant 1 (at most one live attempt per contact, attempts numbered once each) must hold even
if application code is wrong, so it is checked straight against the tables here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.exc import StatementError

from storage.engine import make_engine
from storage.errors import IntegrityConflict
from storage.models import Attempt, Campaign, Contact, Suppression
from storage.states import ATTEMPT_LIVE, AttemptState
from tests.factories import indian_numbers, make_campaign, make_contacts

LIVE = sorted(s.value for s in ATTEMPT_LIVE)
NOT_LIVE = sorted(s.value for s in AttemptState if s not in ATTEMPT_LIVE)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def contact(engine: Engine) -> tuple[int, int]:
    """(campaign id, contact id) of one pending contact."""
    cid = make_campaign(engine)
    (contact_id,) = make_contacts(engine, cid, indian_numbers(1))
    return cid, contact_id


def add_contact(engine: Engine, campaign_id: int, phone: str, row: int) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(Contact)
                .values(campaign_id=campaign_id, row_number=row, phone_e164=phone)
                .returning(Contact.id)
            ).scalar_one()
        )


def add_attempt(engine: Engine, campaign_id: int, contact_id: int, no: int, state: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(Attempt).values(
                campaign_id=campaign_id,
                contact_id=contact_id,
                attempt_no=no,
                phone_e164="+919800000000",
                state=state,
            )
        )


def test_second_live_attempt_for_a_contact_is_refused(
    engine: Engine, contact: tuple[int, int]
) -> None:
    cid, contact_id = contact
    for no, first in enumerate(LIVE, start=1):
        add_attempt(engine, cid, contact_id, no * 10, first)
        for second in LIVE:
            with pytest.raises(IntegrityConflict):
                add_attempt(engine, cid, contact_id, no * 10 + 1, second)
        # settle it so that the next live state can be tried as the first
        with engine.begin() as conn:
            conn.execute(
                update(Attempt)
                .where(Attempt.attempt_no == no * 10)
                .values(state=AttemptState.FINISHED.value)
            )


def test_finished_attempts_and_one_live_attempt_coexist(
    engine: Engine, contact: tuple[int, int]
) -> None:
    cid, contact_id = contact
    for no, state in enumerate(NOT_LIVE, start=1):
        add_attempt(engine, cid, contact_id, no, state)
    add_attempt(engine, cid, contact_id, len(NOT_LIVE) + 1, AttemptState.RESERVED.value)
    # another contact may have its own live attempt at the same time
    other = add_contact(engine, cid, "+919800000050", row=50)
    add_attempt(engine, cid, other, 1, AttemptState.ACCEPTED.value)
    with engine.connect() as conn:
        assert len(conn.execute(select(Attempt.id)).all()) == len(NOT_LIVE) + 2


def test_an_attempt_number_is_used_once_per_contact(
    engine: Engine, contact: tuple[int, int]
) -> None:
    cid, contact_id = contact
    add_attempt(engine, cid, contact_id, 1, AttemptState.FINISHED.value)
    with pytest.raises(IntegrityConflict):
        add_attempt(engine, cid, contact_id, 1, AttemptState.FINISHED.value)


def test_call_id_is_unique_per_provider(engine: Engine, contact: tuple[int, int]) -> None:
    cid, contact_id = contact
    other = add_contact(engine, cid, "+919800000007", row=7)
    third = add_contact(engine, cid, "+919800000008", row=8)

    def attempt(c: int, provider: str) -> Any:
        return insert(Attempt).values(
            campaign_id=cid,
            contact_id=c,
            attempt_no=1,
            phone_e164="+1",
            call_id="call-1",
            provider=provider,
        )

    with engine.begin() as conn:
        conn.execute(attempt(contact_id, "vaani"))
    with engine.begin() as conn:  # another provider may hand out the same id
        conn.execute(attempt(other, "voisnap"))
    with pytest.raises(IntegrityConflict), engine.begin() as conn:
        conn.execute(attempt(third, "vaani"))
    with engine.connect() as conn:
        rows = conn.execute(select(Attempt.provider).where(Attempt.call_id == "call-1")).all()
    assert sorted(r.provider for r in rows) == ["vaani", "voisnap"]


def test_provider_defaults_to_vaani(engine: Engine, contact: tuple[int, int]) -> None:
    cid, contact_id = contact
    add_attempt(engine, cid, contact_id, 1, AttemptState.FINISHED.value)
    with engine.connect() as conn:
        assert conn.execute(select(Campaign.provider).where(Campaign.id == cid)).scalar() == "vaani"
        assert conn.execute(select(Attempt.provider)).scalar() == "vaani"


def test_a_number_appears_once_per_campaign(engine: Engine) -> None:
    a, b = make_campaign(engine), make_campaign(engine)
    make_contacts(engine, a, ["+919811111111"])
    make_contacts(engine, b, ["+919811111111"])  # another campaign: fine
    with pytest.raises(IntegrityConflict), engine.begin() as conn:
        conn.execute(
            insert(Contact).values(campaign_id=a, row_number=99, phone_e164="+919811111111")
        )


def test_invalid_rows_without_a_number_do_not_collide(engine: Engine) -> None:
    cid = make_campaign(engine)
    with engine.begin() as conn:
        for row in (2, 3):
            conn.execute(
                insert(Contact).values(
                    campaign_id=cid, row_number=row, phone_e164=None, state="invalid"
                )
            )
    with pytest.raises(IntegrityConflict), engine.begin() as conn:
        conn.execute(insert(Contact).values(campaign_id=cid, row_number=2, phone_e164=None))


def test_suppression_entries_are_unique_per_scope(engine: Engine) -> None:
    cid = make_campaign(engine)
    phone = "+919822222222"

    def add(campaign_id: int | None) -> None:
        with engine.begin() as conn:
            conn.execute(insert(Suppression).values(phone_e164=phone, campaign_id=campaign_id))

    add(None)
    add(cid)  # global and campaign-level entries for one number coexist
    with pytest.raises(IntegrityConflict):
        add(None)
    with pytest.raises(IntegrityConflict):
        add(cid)


def test_utc_datetime_round_trips_aware_instants(engine: Engine) -> None:
    values = [
        datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC),
        datetime(2026, 11, 23, 23, 59, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-8))),
    ]
    for value in values:
        cid = make_campaign(engine, start_at=value)
        with engine.connect() as conn:
            got = conn.execute(select(Campaign.start_at).where(Campaign.id == cid)).scalar_one()
            raw = conn.execute(
                text("SELECT start_at FROM campaigns WHERE id = :id"), {"id": cid}
            ).scalar_one()
        assert got == value
        assert got.tzinfo is UTC
        # stored as naive UTC wall time, so that both databases compare instants alike
        utc_wall = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        assert str(raw).replace("T", " ")[:19] == utc_wall


def test_utc_datetime_refuses_naive_values(engine: Engine) -> None:
    values: dict[str, Any] = {"start_at": datetime(2026, 1, 1, 9, 0)}
    with pytest.raises(StatementError, match="naive datetime"):
        make_campaign(engine, **values)
    with engine.connect() as conn:
        assert conn.execute(select(Campaign.id)).first() is None
