"""The do-not-call list: queries on the ``suppressions`` table.

An entry is global (``campaign_id`` NULL: never call this number from any campaign) or
belongs to one campaign (a ``--dnc`` file given at import). Numbers are E.164 strings;
parsing what people type is the caller's job (``campaigns.importer.phones``).

The list is consulted twice (DESIGN.md, "Calling policy"): at import, where matching
contacts become ``suppressed``, and at dial time (``storage.claims`` checks the list in the
claim itself), so a number added mid-campaign is never dialled. :func:`mark_suppressed`
applies the list to the contacts of a campaign that are still waiting.

The functions that take a ``Connection`` run inside the caller's transaction (the importer's,
the outcome recorder's); those that take an ``Engine`` are the do-not-call use cases
(``campaigns.services.dnc``), each one short transaction of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, delete, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage import outbox
from storage.models import Campaign, Contact, Suppression, utcnow
from storage.states import CAMPAIGN_FINAL, CONTACT_DIALABLE, ContactState

_BATCH = 1000
_suppressions = cast(Table, Suppression.__table__)
_contacts = cast(Table, Contact.__table__)


@dataclass(frozen=True, kw_only=True)
class SuppressionEntry:
    """One row of the do-not-call list."""

    phone_e164: str
    campaign_id: int | None
    reason: str | None
    source: str | None
    added_at: datetime


def _scope(campaign_id: int | None) -> Any:
    """Entries that apply to ``campaign_id``: the global ones, and that campaign's own."""
    t = _suppressions.c
    if campaign_id is None:
        return t.campaign_id.is_(None)
    return or_(t.campaign_id.is_(None), t.campaign_id == campaign_id)


def add(
    conn: Connection,
    phones: Iterable[str],
    *,
    campaign_id: int | None = None,
    reason: str | None = None,
    source: str | None = None,
) -> int:
    """Add E.164 numbers to the list (global when ``campaign_id`` is None); numbers already
    on it are left as they are. Returns how many were new."""
    table = _suppressions
    now = utcnow()
    unique = list(dict.fromkeys(phones))
    insert_fn: Any = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    where = (
        table.c.campaign_id.is_(None) if campaign_id is None else table.c.campaign_id.isnot(None)
    )
    elements = ["phone_e164"] if campaign_id is None else ["phone_e164", "campaign_id"]
    added = 0
    for i in range(0, len(unique), _BATCH):
        batch = unique[i : i + _BATCH]
        stmt = (
            insert_fn(table)
            .values(
                [
                    {
                        "phone_e164": p,
                        "campaign_id": campaign_id,
                        "reason": reason,
                        "source": source,
                        "added_at": now,
                    }
                    for p in batch
                ]
            )
            .on_conflict_do_nothing(index_elements=elements, index_where=where)
            .returning(_suppressions.c.id)
        )
        added += len(conn.execute(stmt).all())  # rowcount is not reliable for multi-VALUES
    return added


def remove(conn: Connection, phones: Iterable[str], *, campaign_id: int | None = None) -> int:
    """Remove numbers from the global list (or from one campaign's). Returns how many went.

    Contacts already marked ``suppressed`` stay so: the list is about who may be called from
    now on, and un-suppressing a finished contact is a decision for a person, not a side effect.
    """
    t = _suppressions.c
    scope = t.campaign_id.is_(None) if campaign_id is None else t.campaign_id == campaign_id
    removed = 0
    unique = list(dict.fromkeys(phones))
    for i in range(0, len(unique), _BATCH):
        stmt = delete(_suppressions).where(scope, t.phone_e164.in_(unique[i : i + _BATCH]))
        removed += conn.execute(stmt).rowcount or 0
    return removed


def entries(conn: Connection, *, campaign_id: int | None = None) -> Iterator[SuppressionEntry]:
    """The global list (``campaign_id`` None) or one campaign's own entries, by number."""
    t = _suppressions.c
    scope = t.campaign_id.is_(None) if campaign_id is None else t.campaign_id == campaign_id
    rows = conn.execute(
        select(t.phone_e164, t.campaign_id, t.reason, t.source, t.added_at)
        .where(scope)
        .order_by(t.phone_e164)
    )
    for row in rows:
        yield SuppressionEntry(
            phone_e164=row.phone_e164,
            campaign_id=row.campaign_id,
            reason=row.reason,
            source=row.source,
            added_at=row.added_at,
        )


def all_numbers(conn: Connection, campaign_id: int | None) -> set[str]:
    """Every number that may not be called from ``campaign_id`` (for the importer, which
    checks a whole file against the list in memory rather than one query per row)."""
    t = _suppressions.c
    return set(conn.execute(select(t.phone_e164).where(_scope(campaign_id))).scalars())


def mark_suppressed(conn: Connection, campaign_id: int, *, reason: str = "do-not-call list") -> int:
    """Mark the campaign's contacts that are still waiting (pending or retry_wait) and whose
    number is on the list as ``suppressed``. Returns how many changed."""
    c = _contacts.c
    s = _suppressions.c
    on_list = exists().where(
        s.phone_e164 == c.phone_e164,
        or_(s.campaign_id.is_(None), s.campaign_id == campaign_id),
    )
    now = utcnow()
    stmt = (
        update(_contacts)
        .where(
            and_(
                c.campaign_id == campaign_id,
                c.state.in_([str(x) for x in CONTACT_DIALABLE]),
                on_list,
            )
        )
        .values(state=str(ContactState.SUPPRESSED), reason=reason, updated_at=now)
    )
    return outbox.update_contacts(conn, stmt, campaign_id, now=now)  # + contact.finished


@dataclass(frozen=True, kw_only=True)
class ListChange:
    """What adding numbers to the global list did."""

    added: int  # numbers new on the list (the others were on it already)
    suppressed_contacts: int  # waiting contacts of live campaigns now suppressed


def _apply(conn: Connection) -> int:
    ids = conn.execute(
        select(Campaign.id).where(Campaign.status.notin_([str(s) for s in CAMPAIGN_FINAL]))
    ).scalars()
    return sum(mark_suppressed(conn, cid) for cid in list(ids))


def apply_to_campaigns(engine: Engine) -> int:
    """Suppress the waiting contacts of every campaign that may still dial whose number is
    on a list (one transaction). Returns how many changed."""
    with engine.begin() as conn:
        return _apply(conn)


def add_to_list(
    engine: Engine, phones: Iterable[str], *, reason: str | None, source: str | None
) -> ListChange:
    """Add E.164 numbers to the global list and suppress their waiting contacts in every
    campaign that may still dial, in one transaction."""
    with engine.begin() as conn:
        added = add(conn, phones, reason=reason, source=source)
        return ListChange(added=added, suppressed_contacts=_apply(conn))


def remove_from_list(engine: Engine, phones: Iterable[str]) -> int:
    """Remove numbers from the global list (see :func:`remove`); how many went."""
    with engine.begin() as conn:
        return remove(conn, phones)


def list_entries(engine: Engine) -> list[SuppressionEntry]:
    """The global list, by number."""
    with engine.connect() as conn:
        return list(entries(conn))
