"""Test data written straight into the tables (for tests that must not depend on the importer)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from storage import settle
from storage.campaigns_repo import CampaignRecord
from storage.models import Campaign, Contact, utcnow


def make_campaign(engine: Engine, **values: Any) -> int:
    """Insert a running campaign open all day, every day; return its id."""
    row: dict[str, Any] = {
        "name": "test campaign",
        "agent_id": "agent-1",
        "status": "running",
        "window_start": "00:00",
        "window_end": "23:59",
        "days": "mon,tue,wed,thu,fri,sat,sun",
        "timezone": None,
        "max_attempts": 3,
        "retry_delay_s": 60,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    row.update(values)
    with engine.begin() as conn:
        return int(conn.execute(insert(Campaign).values(**row).returning(Campaign.id)).scalar_one())


def make_contacts(
    engine: Engine,
    campaign_id: int,
    phones: Iterable[str],
    *,
    timezones: str | None = "Asia/Kolkata",
    state: str = "pending",
    next_attempt_at: datetime | None = None,
    first_row: int = 2,
    **extra: Any,
) -> list[int]:
    """Insert one pending contact per phone number; return their ids in order."""
    ids = []
    with engine.begin() as conn:
        for i, phone in enumerate(phones, start=first_row - 1):
            ids.append(
                int(
                    conn.execute(
                        insert(Contact)
                        .values(
                            campaign_id=campaign_id,
                            row_number=i + 1,
                            phone_e164=phone,
                            raw_phone=phone,
                            name=f"Contact {i}",
                            attributes={"customer_name": f"Contact {i}", "row": str(i)},
                            timezones=timezones,
                            state=state,
                            attempts=0,
                            next_attempt_at=next_attempt_at,
                            updated_at=utcnow(),
                            **extra,
                        )
                        .returning(Contact.id)
                    ).scalar_one()
                )
            )
    return ids


def indian_numbers(n: int, start: int = 0) -> list[str]:
    """``n`` distinct valid Indian mobile numbers in E.164."""
    return [f"+9198{start + i:08d}" for i in range(n)]


def campaign_record(**values: Any) -> CampaignRecord:
    """A campaign value (never stored) with the schema's defaults, for the pure rules."""
    base: dict[str, Any] = {
        "id": 1,
        "name": "c",
        "provider": "vaani",
        "agent_id": "a",
        "status": "running",
        "status_reason": None,
        "created_at": datetime(2026, 11, 1, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 1, tzinfo=UTC),
        "window_start": "09:00",
        "window_end": "20:00",
        "days": "mon,tue,wed,thu,fri,sat",
        "timezone": None,
        "region": None,
        "start_at": None,
        "end_at": None,
        "max_attempts": 3,
        "retry_delay_s": 7200,
        "retry_delays": {},
        "redial_voicemail": True,
        "daily_cap_per_number": None,
        "outbound_number": None,
        "voice": None,
        "call_options": {},
        "opt_out_entities": ["opt_out", "do_not_call"],
        "columns": [],
        "phone_column": None,
        "name_column": None,
        "source_file": None,
        "import_stats": {},
    }
    base.update(values)
    return CampaignRecord(**base)


def accept(
    engine: Engine,
    attempt_id: int,
    *,
    call_id: str,
    sent_at: datetime,
    now: datetime,
    outcome_deadline: timedelta,
) -> bool:
    """Settle one reserved attempt as accepted, the way the dispatcher's batches do."""
    item = settle.Accepted(attempt_id=attempt_id, call_id=call_id, sent_at=sent_at, accepted_at=now)
    return settle.record_accepted_many(engine, [item], outcome_deadline=outcome_deadline)[0]
