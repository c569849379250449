"""The queries of the outcome report: its column layout, its spans, and its pages.

``campaigns.report`` decides what a report holds and formats it; every statement it needs is
here. Pages are read by keyset (``row_number > last seen``) on the ``(campaign_id,
row_number)`` unique index, each page in its own short transaction, so that memory stays flat
and an export never holds a SQLite write lock for longer than one page.

This is the export's hot path (target: 100,000 rows/s): a page is a list of plain tuples of
raw column values (see :func:`raw`) in the documented order, not value objects, because
building an object per row would cost more than the query. Columns are read raw, without
SQLAlchemy's result processing (JSON decoding, datetime parsing), and converted by the
formatter (``campaigns.report_pages``), several times faster.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, Text, func, or_, select, text, type_coerce

from storage.models import Attempt, CallTranscript, Campaign, Contact

#: A page of result rows (tuples of raw column values).
Page = Sequence[Any]
#: A range of row numbers: (after, upto) means after < row_number <= upto; upto None: no end.
Span = tuple[int, int | None]
WHOLE: Span = (-1, None)


@dataclass(frozen=True, kw_only=True)
class PageFilter:
    """Which rows the pages hold: contact (or attempt) states and outcomes, and a time."""

    states: frozenset[str] = frozenset()
    outcomes: frozenset[str] = frozenset()
    since: datetime | None = None  # aware; rows updated or attempted at or after
    page_size: int = 5000
    #: each row ends with its call's transcript (raw JSON; None when it has none)
    transcripts: bool = False


def _with_transcript(stmt: Select[Any]) -> Select[Any]:
    """``stmt`` with the transcript of its attempt as a last column (outer join: a call with
    none, or a contact never called, reads None)."""
    return stmt.add_columns(raw(CallTranscript.transcript)).outerjoin(
        CallTranscript, CallTranscript.attempt_id == Attempt.id
    )


@dataclass(frozen=True, kw_only=True)
class CampaignColumns:
    """What the campaign's import recorded about its file's columns."""

    columns: list[list[str]]  # [[original header, metadata key], ...] in file order
    phone_column: str | None


def raw(column: Any) -> Any:
    """Read ``column`` without SQLAlchemy's result processing (the formatter converts)."""
    return type_coerce(column, Text)


def campaign_columns(engine: Engine, campaign_id: int) -> CampaignColumns | None:
    """The campaign's recorded columns; None when there is no such campaign."""
    with engine.connect() as conn:
        row = conn.execute(
            select(Campaign.columns, Campaign.phone_column).where(Campaign.id == campaign_id)
        ).first()
    if row is None:
        return None
    return CampaignColumns(columns=list(row[0] or []), phone_column=row[1])


def entity_keys(engine: Engine, campaign_id: int) -> list[str]:
    """Every key of every entity dict recorded for the campaign, sorted, found inside the
    database (``json_each`` on SQLite, ``json_object_keys`` on PostgreSQL; a Python pass
    elsewhere) over all attempts, whatever the filters."""
    with engine.connect() as conn:
        dialect = conn.dialect.name
        if dialect == "sqlite":
            sql = (
                "SELECT DISTINCT j.key FROM attempts a, json_each(a.entity) j "
                "WHERE a.campaign_id = :c AND a.entity IS NOT NULL "
                "AND json_valid(a.entity) AND json_type(a.entity) = 'object'"
            )
        elif dialect == "postgresql":
            sql = (
                "SELECT DISTINCT k FROM attempts a, json_object_keys(CASE WHEN "
                "json_typeof(a.entity) = 'object' THEN a.entity ELSE '{}'::json END) k "
                "WHERE a.campaign_id = :c AND a.entity IS NOT NULL"
            )
        else:  # portable fallback: one streaming pass in Python
            seen: set[str] = set()
            res = conn.execute(
                select(Attempt.entity).where(
                    Attempt.campaign_id == campaign_id, Attempt.entity.is_not(None)
                )
            )
            for (entity,) in res:
                if isinstance(entity, dict):
                    seen.update(entity)
            return sorted(seen)
        return sorted(str(k) for (k,) in conn.execute(text(sql), {"c": campaign_id}))


def spans(engine: Engine, campaign_id: int, *, parts: int, min_contacts: int) -> list[Span]:
    """Split the campaign's row numbers into ``parts`` spans of equal numbers of contacts
    (cut on the row_number index), or one span when it has fewer than ``min_contacts`` or
    the database is in memory (a worker process could not open it)."""
    whole = [WHOLE]
    if parts < 2 or (engine.dialect.name == "sqlite" and not engine.url.database):
        return whole
    of_campaign = Contact.campaign_id == campaign_id
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).where(of_campaign)).scalar_one()
        if n < max(parts, min_contacts):
            return whole
        cuts = [
            conn.execute(
                select(Contact.row_number)
                .where(of_campaign)
                .order_by(Contact.row_number)
                .offset(n * i // parts - 1)
                .limit(1)
            ).scalar_one()
            for i in range(1, parts)
        ]
    return list(zip([-1, *cuts], [*cuts, None], strict=True))


def engine_url(engine: Engine) -> str:
    """The engine's URL with its password, for a worker process to open its own engine."""
    return engine.url.render_as_string(hide_password=False)


def contact_pages(
    engine: Engine, campaign_id: int, filt: PageFilter, span: Span = WHOLE
) -> Iterator[Page]:
    """Pages of contacts in row_number order, each with its last placed call; only row
    numbers in ``span``. Row: ``row_number, raw_phone, attributes, phone_e164, state,
    outcome, reason, attempts, call_id, last_call_at, duration_s, summary, entity,
    callback_at, callback_note`` (then ``transcript`` with ``filt.transcripts``)."""
    last_call = (
        select(Attempt.id)
        .where(Attempt.contact_id == Contact.id, Attempt.call_id.is_not(None))
        .order_by(Attempt.attempt_no.desc())
        .limit(1)
        .correlate(Contact)
        .scalar_subquery()
    )
    base = (
        select(
            Contact.row_number,
            Contact.raw_phone,
            raw(Contact.attributes),
            Contact.phone_e164,
            Contact.state,
            Contact.outcome,
            Contact.reason,
            Contact.attempts,
            Attempt.call_id,
            raw(func.coalesce(Attempt.call_started_at, Attempt.accepted_at, Attempt.created_at)),
            Attempt.duration_s,
            Attempt.summary,
            raw(Attempt.entity),
            raw(Attempt.callback_at),
            Attempt.callback_note,
        )
        .select_from(Contact)
        .outerjoin(Attempt, Attempt.id == last_call)
        .where(Contact.campaign_id == campaign_id)
        .order_by(Contact.row_number)
        .limit(filt.page_size)
    )
    if filt.transcripts:
        base = _with_transcript(base)
    if filt.states:
        base = base.where(Contact.state.in_(sorted(filt.states)))
    if filt.outcomes:
        base = base.where(Contact.outcome.in_(sorted(filt.outcomes)))
    if filt.since is not None:
        base = base.where(
            or_(Contact.updated_at >= filt.since, Contact.last_attempt_at >= filt.since)
        )
    after, upto = span
    if upto is not None:
        base = base.where(Contact.row_number <= upto)
    while True:
        with engine.connect() as conn:
            page = conn.execute(base.where(Contact.row_number > after)).all()
        if not page:
            return
        after = page[-1][0]
        yield page
        if len(page) < filt.page_size:
            return


def attempt_pages(
    engine: Engine, campaign_id: int, filt: PageFilter, span: Span = WHOLE
) -> Iterator[Page]:
    """Attempts in (row_number, attempt_no) order, read a range of contacts at a time: the
    range's upper row_number is found on the index first, so that each page's sort is small.
    Row: ``row_number, raw_phone, attributes, phone_e164, attempt_no, state, call_id,
    created_at, accepted_at, finished_at, call_status, outcome, error, duration_s, summary,
    entity, callback_at, callback_note`` (then ``transcript`` with ``filt.transcripts``)."""
    stmt: Select[Any] = (
        select(
            Contact.row_number,
            Contact.raw_phone,
            raw(Contact.attributes),
            Contact.phone_e164,
            Attempt.attempt_no,
            Attempt.state,
            Attempt.call_id,
            raw(Attempt.created_at),
            raw(Attempt.accepted_at),
            raw(Attempt.finished_at),
            Attempt.call_status,
            Attempt.outcome,
            Attempt.error,
            Attempt.duration_s,
            Attempt.summary,
            raw(Attempt.entity),
            raw(Attempt.callback_at),
            Attempt.callback_note,
        )
        .select_from(Contact)
        .join(Attempt, Attempt.contact_id == Contact.id)
        .where(Contact.campaign_id == campaign_id)
        .order_by(Contact.row_number, Attempt.attempt_no)
    )
    if filt.transcripts:
        stmt = _with_transcript(stmt)
    if filt.states:
        stmt = stmt.where(Attempt.state.in_(sorted(filt.states)))
    if filt.outcomes:
        stmt = stmt.where(Attempt.outcome.in_(sorted(filt.outcomes)))
    if filt.since is not None:
        since = filt.since
        stmt = stmt.where(
            or_(
                Attempt.created_at >= since,
                Attempt.accepted_at >= since,
                Attempt.finished_at >= since,
            )
        )
    after, upto = span
    while True:
        upper = (
            select(Contact.row_number)
            .where(Contact.campaign_id == campaign_id, Contact.row_number > after)
            .order_by(Contact.row_number)
            .offset(filt.page_size - 1)
            .limit(1)
            .scalar_subquery()
        )
        with engine.connect() as conn:
            bound = conn.execute(select(upper)).scalar()
            if upto is not None and (bound is None or bound >= upto):
                bound = upto
            rng = Contact.row_number > after
            if bound is not None:
                rng = rng & (Contact.row_number <= bound)
            page = conn.execute(stmt.where(rng)).all()
        yield page
        if bound is None or bound == upto:
            return
        after = bound
