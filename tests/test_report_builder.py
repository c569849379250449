"""A small builder of campaigns, contacts and attempts with SQLAlchemy Core inserts.

Used by the report and ``campaign show`` tests to lay down exactly the rows a scenario needs,
independently of the importer and the daemon. The builder's own check is the test below.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from campaigns.cli import build_cli
from campaigns.cli.common import AppContext, handle_errors
from storage.models import Attempt, Campaign, Contact

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


class Builder:
    """Insert rows one call at a time; every method returns the new row's id."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._row = 0
        self._call = 0

    def campaign(
        self,
        columns: list[list[str]] | None = None,
        *,
        phone_column: str = "Phone",
        **values: Any,
    ) -> int:
        cols = columns if columns is not None else [["Phone", "phone"], ["Name", "name"]]
        row = {
            "name": "test campaign",
            "agent_id": "agent-1",
            "columns": cols,
            "phone_column": phone_column,
            "created_at": T0,
            **values,
        }
        with self.engine.begin() as conn:
            return int(
                conn.execute(insert(Campaign).values(**row).returning(Campaign.id)).scalar_one()
            )

    def contact(
        self,
        campaign_id: int,
        *,
        raw_phone: str | None = "+919876543210",
        phone_e164: str | None = "auto",
        attributes: dict[str, str] | None = None,
        row_number: int | None = None,
        **values: Any,
    ) -> int:
        if row_number is None:
            self._row += 1
            row_number = self._row
        if phone_e164 == "auto":
            phone_e164 = f"+9198{row_number:08d}"
        row = {
            "campaign_id": campaign_id,
            "row_number": row_number,
            "raw_phone": raw_phone,
            "phone_e164": phone_e164,
            "attributes": attributes or {},
            "state": "pending",
            "updated_at": T0,
            **values,
        }
        with self.engine.begin() as conn:
            return int(
                conn.execute(insert(Contact).values(**row).returning(Contact.id)).scalar_one()
            )

    def attempt(
        self,
        contact_id: int,
        *,
        attempt_no: int = 1,
        state: str = "finished",
        outcome: str | None = "answered",
        at: datetime = T0,
        call_id: str | None = "auto",
        **values: Any,
    ) -> int:
        with self.engine.begin() as conn:
            c = conn.execute(
                select(Contact.campaign_id, Contact.phone_e164).where(Contact.id == contact_id)
            ).one()
            if call_id == "auto":
                self._call += 1
                call_id = f"call-{self._call:06d}"
            row = {
                "contact_id": contact_id,
                "campaign_id": c.campaign_id,
                "phone_e164": c.phone_e164 or "+10000000000",
                "attempt_no": attempt_no,
                "state": state,
                "outcome": outcome,
                "call_id": call_id,
                "created_at": at,
                "accepted_at": at + timedelta(seconds=1) if call_id else None,
                "finished_at": at + timedelta(seconds=60) if state == "finished" else None,
                **values,
            }
            return int(
                conn.execute(insert(Attempt).values(**row).returning(Attempt.id)).scalar_one()
            )


def in_process_cli(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., int]:
    """Run the real command line in this process (exit code back, output to capsys); the
    engines it made are disposed at teardown (``AppContext`` does not dispose its engine,
    which would leak PostgreSQL connections)."""
    engines: list[Engine] = []
    original = AppContext.engine

    def engine(self: AppContext, *, create: bool = False) -> Engine:
        eng = original(self, create=create)
        engines.append(eng)
        return eng

    monkeypatch.setattr(AppContext, "engine", engine)

    def dispose() -> None:
        for eng in engines:
            eng.dispose()

    request.addfinalizer(dispose)
    return lambda *argv: handle_errors(build_cli(), list(argv))


def test_builder_writes_rows(sqlite_url: str) -> None:
    from storage.engine import make_engine

    engine = make_engine(sqlite_url)
    b = Builder(engine)
    cid = b.campaign()
    k = b.contact(cid, attributes={"name": "A"})
    b.attempt(k, entity={"x": 1})
    with engine.connect() as conn:
        assert conn.execute(select(Contact.row_number, Contact.attributes)).one() == (
            1,
            {"name": "A"},
        )
        assert conn.execute(select(Attempt.entity, Attempt.call_id)).one() == (
            {"x": 1},
            "call-000001",
        )
    engine.dispose()
