"""Test data written straight into the tables (for tests that must not depend on the importer)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert

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
