"""storage.contacts (the console's reads) and the outlook service, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from campaigns.services.outlook import outlook
from storage.contacts import calls_timeline, contact_page, sample_metadata, waiting_zones
from storage.engine import make_engine
from storage.errors import NotFound
from storage.models import Attempt
from tests.factories import indian_numbers, make_campaign, make_contacts

T0 = datetime(2026, 11, 30, 10, 0, 30, tzinfo=UTC)


def test_keyset_pages_return_every_contact_once_whatever_the_size(db_url: str) -> None:
    engine = make_engine(db_url)
    cid = make_campaign(engine)
    other = make_campaign(engine)
    ids = make_contacts(engine, cid, indian_numbers(23))
    make_contacts(engine, other, indian_numbers(5, start=100))
    for limit in (1, 4, 10, 23, 50):
        seen, cursor = [], 0
        while cursor is not None:
            page = contact_page(engine, cid, cursor=cursor, limit=limit)
            assert len(page.contacts) <= limit
            seen += [c.id for c in page.contacts]
            cursor = page.next_cursor
        assert seen == ids, limit
    with pytest.raises(NotFound):
        contact_page(engine, 999)
    engine.dispose()


def test_filters_state_outcome_and_search(db_url: str) -> None:
    engine = make_engine(db_url)
    cid = make_campaign(engine)
    make_contacts(engine, cid, indian_numbers(3))
    done = make_contacts(
        engine, cid, indian_numbers(2, start=10), state="done", outcome="answered", first_row=10
    )
    assert [c.id for c in contact_page(engine, cid, states=["done"]).contacts] == done
    assert [c.id for c in contact_page(engine, cid, outcomes=["answered"]).contacts] == done
    assert [c.name for c in contact_page(engine, cid, q="CONTACT 10").contacts] == ["Contact 10"]
    by_number = contact_page(engine, cid, q="+919800000001").contacts
    assert [c.phone_e164 for c in by_number] == ["+919800000001"]
    assert contact_page(engine, cid, q="_").contacts == []  # LIKE wildcards are literal
    assert contact_page(engine, cid, q="%").contacts == []
    assert waiting_zones(engine, cid) == {"Asia/Kolkata": 3}
    assert [s["name"] for s in sample_metadata(engine, cid, limit=2)] == ["Contact 1", "Contact 2"]
    engine.dispose()


def test_calls_timeline_groups_accepted_calls_per_minute_and_outcome(db_url: str) -> None:
    engine = make_engine(db_url)
    cid = make_campaign(engine)
    contacts = make_contacts(engine, cid, indian_numbers(4))
    rows = [  # (contact, minute offset, outcome); one never accepted, one before `since`
        (contacts[0], 0, "answered"),
        (contacts[1], 0, "no_answer"),
        (contacts[2], 0, None),
        (contacts[3], 2, "answered"),
        (contacts[0], -30, "busy"),
    ]
    with engine.begin() as conn:
        for no, (contact, minutes, outcome) in enumerate(rows, start=1):
            at = T0 + timedelta(minutes=minutes)
            conn.execute(
                insert(Attempt).values(
                    contact_id=contact, campaign_id=cid, attempt_no=no, phone_e164=f"+1{no}",
                    state="finished" if outcome else "accepted", created_at=at, accepted_at=at,
                    call_id=f"call-{no}", outcome=outcome,
                )
            )  # fmt: skip
        conn.execute(
            insert(Attempt).values(
                contact_id=contacts[1], campaign_id=cid, attempt_no=9, phone_e164="+19",
                state="failed", created_at=T0,
            )
        )  # fmt: skip
    points = calls_timeline(engine, cid, since=T0 - timedelta(minutes=5))
    assert [(p.minute, p.placed, p.outcomes) for p in points] == [
        (
            datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
            3,
            {"answered": 1, "no_answer": 1, "pending": 1},
        ),
        (datetime(2026, 11, 30, 10, 2, tzinfo=UTC), 1, {"answered": 1}),
    ]
    with pytest.raises(NotFound):
        calls_timeline(engine, 999, since=T0)
    engine.dispose()


def test_outlook_counts_callable_now_and_the_next_opening(db_url: str) -> None:
    engine = make_engine(db_url)
    cid = make_campaign(engine, window_start="09:00", window_end="20:00")
    make_contacts(engine, cid, indian_numbers(2), timezones="Asia/Kolkata")
    make_contacts(engine, cid, ["+12125550100"], timezones="America/New_York", first_row=5)
    make_contacts(engine, cid, indian_numbers(1, start=50), state="done", first_row=6)
    now = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # 11:30 in Kolkata, 01:00 in New York
    seen = outlook(engine, cid, now=now)
    assert (seen.callable_now, seen.later) == (2, 1)
    assert seen.next_window_at == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # 09:00 New York
    assert outlook(engine, cid, now=datetime(2026, 11, 30, 16, 0, tzinfo=UTC)).callable_now == 1
    engine.dispose()
