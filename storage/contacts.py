"""Reads behind the web console: contacts page by page, the zones still waiting, and calls
over time.

:func:`contact_page` pages by keyset (``id > cursor``, ``LIMIT n + 1``), never by OFFSET, so
page 10 000 of a 1M-contact campaign costs what page 1 does and a contact the daemon updates
between two pages is neither skipped nor shown twice. :func:`waiting_zones` and
:func:`calls_timeline` are grouped queries: no row is loaded. Every read is one short
read-only transaction (``reading``), so the console never holds the write lock a daemon needs.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, or_, select

from storage.engine import is_sqlite, reading
from storage.errors import NotFound
from storage.models import Attempt, Campaign, Contact
from storage.states import ContactState

MAX_PAGE = 500
WAITING = (ContactState.PENDING.value, ContactState.RETRY_WAIT.value)


@dataclass(frozen=True, kw_only=True)
class ContactRow:
    """One contact as the console lists it (the cells as imported, never interpreted)."""

    id: int
    row_number: int
    phone_e164: str | None
    raw_phone: str | None
    name: str | None
    state: str
    outcome: str | None
    reason: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    metadata: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class ContactPage:
    """A page of contacts and the cursor of the next one (None: this was the last)."""

    contacts: list[ContactRow]
    next_cursor: int | None


@dataclass(frozen=True, kw_only=True)
class TimelinePoint:
    """Calls placed in one minute (UTC, ``minute`` is its start), per outcome."""

    minute: datetime
    placed: int
    outcomes: dict[str, int]


def _check_campaign(conn: Any, campaign_id: int) -> None:
    if conn.execute(select(Campaign.id).where(Campaign.id == campaign_id)).first() is None:
        raise NotFound(f"no campaign with id {campaign_id}")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contact_page(
    engine: Engine,
    campaign_id: int,
    *,
    states: Collection[str] = (),
    outcomes: Collection[str] = (),
    q: str | None = None,
    cursor: int = 0,
    limit: int = 100,
) -> ContactPage:
    """Contacts of ``campaign_id`` with ``id > cursor`` in id (import) order, filtered by
    state, outcome and ``q`` (a substring of the name, the number as written or E.164,
    case-insensitive). Raises :class:`NotFound` for an unknown campaign."""
    limit = max(1, min(limit, MAX_PAGE))
    stmt = select(Contact).where(Contact.campaign_id == campaign_id, Contact.id > cursor)
    if states:
        stmt = stmt.where(Contact.state.in_(list(states)))
    if outcomes:
        stmt = stmt.where(Contact.outcome.in_(list(outcomes)))
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        stmt = stmt.where(
            or_(
                *(
                    func.lower(col).like(pattern, escape="\\")
                    for col in (Contact.name, Contact.raw_phone, Contact.phone_e164)
                )
            )
        )
    stmt = stmt.order_by(Contact.id).limit(limit + 1)
    with reading(engine).connect() as conn:
        _check_campaign(conn, campaign_id)
        rows = conn.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    page = [
        ContactRow(
            id=r.id,
            row_number=r.row_number,
            phone_e164=r.phone_e164,
            raw_phone=r.raw_phone,
            name=r.name,
            state=r.state,
            outcome=r.outcome,
            reason=r.reason,
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at,
            last_attempt_at=r.last_attempt_at,
            metadata=dict(r.metadata or {}),
        )
        for r in rows
    ]
    return ContactPage(contacts=page, next_cursor=page[-1].id if more else None)


def waiting_zones(engine: Engine, campaign_id: int) -> dict[str | None, int]:
    """Contacts still waiting to be dialled (pending, retry_wait) per stored zone list."""
    stmt = (
        select(Contact.timezones, func.count())
        .where(Contact.campaign_id == campaign_id, Contact.state.in_(WAITING))
        .group_by(Contact.timezones)
    )
    with reading(engine).connect() as conn:
        return {zones: int(n) for zones, n in conn.execute(stmt).all()}


#: Characters of an E.164 number that tell apart the countries sharing a calling code
#: (+1 650: US, +1 416: CA; +44 1481: GG): "+", the code and the leading digits after it.
COUNTRY_PREFIX = 8


def waiting_zone_samples(engine: Engine, campaign_id: int) -> list[tuple[str | None, int, str]]:
    """Contacts still waiting per stored zone list and number prefix (:data:`COUNTRY_PREFIX`):
    (zones, count, one number of the group), for the holidays of the contacts' countries."""
    prefix = func.substr(Contact.phone_e164, 1, COUNTRY_PREFIX)
    stmt = (
        select(Contact.timezones, func.count(), func.min(Contact.phone_e164))
        .where(Contact.campaign_id == campaign_id, Contact.state.in_(WAITING))
        .group_by(Contact.timezones, prefix)
    )
    with reading(engine).connect() as conn:
        return [(zones, int(n), phone or "") for zones, n, phone in conn.execute(stmt).all()]


def sample_metadata(engine: Engine, campaign_id: int, *, limit: int = 3) -> list[dict[str, Any]]:
    """The metadata of the first few contacts to be called (what the agent would get)."""
    stmt = (
        select(Contact.name, Contact.phone_e164, Contact.attributes)
        .where(Contact.campaign_id == campaign_id, Contact.state == ContactState.PENDING.value)
        .order_by(Contact.id)
        .limit(limit)
    )
    with reading(engine).connect() as conn:
        return [
            {"name": n, "phone_e164": p, "metadata": dict(m or {})}
            for n, p, m in conn.execute(stmt).all()
        ]


def calls_timeline(engine: Engine, campaign_id: int, *, since: datetime) -> list[TimelinePoint]:
    """Calls the API accepted from ``since``, per minute and outcome (``pending`` while the
    outcome is not known), oldest minute first."""
    if is_sqlite(engine):
        minute: Any = func.strftime("%Y-%m-%dT%H:%M:00", Attempt.accepted_at)
    else:
        minute = func.to_char(  # naive UTC in the column: no zone conversion
            func.date_trunc("minute", Attempt.accepted_at), 'YYYY-MM-DD"T"HH24:MI:00'
        )
    stmt = (
        select(minute.label("minute"), Attempt.outcome, func.count())
        .where(
            Attempt.campaign_id == campaign_id,
            Attempt.accepted_at.is_not(None),
            Attempt.accepted_at >= since,
        )
        .group_by(minute, Attempt.outcome)
        .order_by(minute)
    )
    points: dict[str, dict[str, int]] = {}
    with reading(engine).connect() as conn:
        _check_campaign(conn, campaign_id)
        for at, outcome, n in conn.execute(stmt).all():
            points.setdefault(at, {})[outcome or "pending"] = int(n)
    return [
        TimelinePoint(
            minute=datetime.fromisoformat(at + "+00:00"),
            placed=sum(by.values()),
            outcomes=by,
        )
        for at, by in points.items()
    ]
