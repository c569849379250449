"""Pages of the outcome report: the keyset queries and the formatting of their cells.

``contact_pages`` / ``attempt_pages`` read a campaign a page at a time, each page in its own
short transaction (see ``campaigns.report`` for why); ``contact_cells`` / ``attempt_cells``
turn a page into CSV cells.

This is the export's hot path (target: 100,000 rows/s): columns are read raw, without
SQLAlchemy's result processing (see :func:`raw`), JSON is decoded with the C scanner, and
only cells holding outside data go through the spreadsheet-safety check. (Reading the next
page on a second thread while formatting this one was tried and measured slower: the GIL
is held for most of a page's fetch.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Select, Text, func, or_, select, type_coerce

from campaigns.csvsafe import FORMULA_TRIGGERS, safe_cell
from storage.models import Attempt, Contact

if TYPE_CHECKING:
    from campaigns.report import ReportOptions

_TRIGGERS = FORMULA_TRIGGERS

#: A page of result rows (tuples of raw column values).
Page = Sequence[Any]
#: A range of row numbers: (after, upto) means after < row_number <= upto; upto None: no end.
Span = tuple[int, int | None]


def _iso(dt: datetime | str | None) -> str:
    """ISO 8601 UTC. Times are read raw (see :func:`raw`): naive UTC ``datetime`` objects from
    PostgreSQL, and SQLAlchemy's SQLite storage text ``YYYY-MM-DD HH:MM:SS.ffffff``, which is
    sliced rather than parsed (the export's hot path)."""
    if dt is None:
        return ""
    if isinstance(dt, str):
        return f"{dt[:10]}T{dt[11:19]}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


_decode = json.JSONDecoder().raw_decode
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _json(v: Any) -> Any:
    """A JSON column read raw: text on SQLite, already decoded by psycopg on PostgreSQL.
    ``raw_decode`` skips ``json.loads``' whitespace scans (the text was written by a JSON
    encoder, without leading blanks); anything it refuses goes through ``json.loads``."""
    if v.__class__ is not str:
        return v
    try:
        return _decode(v)[0]
    except ValueError:
        return json.loads(v)


def raw(column: Any) -> Any:
    """Read ``column`` without SQLAlchemy's result processing (JSON decoding, datetime
    parsing): the export converts the raw values itself, several times faster."""
    return type_coerce(column, Text)


def _seconds(x: float | None) -> str:
    if x is None:
        return ""
    x = round(x, 3)
    return str(int(x)) if x.is_integer() else repr(x)


def text_cell(v: Any) -> str:
    """A cell holding outside data: text as is, other JSON values compact, made safe."""
    if v is None:
        return ""
    if v.__class__ is not str:
        v = _encode(v)
    if not v or v[0] not in _TRIGGERS:
        return v
    if v[0] == "+" and v[1:].isdigit() and v.isascii():  # E.164, the commonest trigger
        return v
    return safe_cell(v)


def _original_cells(keys: list[str | None], attrs: Any, raw_phone: str | None) -> list[str]:
    attrs = _json(attrs) if attrs else None
    if not isinstance(attrs, dict):
        attrs = {}
    t = _TRIGGERS
    return [
        ("" if raw_phone is None else text_cell(raw_phone))
        if k is None
        else (
            v
            if (v := attrs.get(k, "")).__class__ is str and (not v or v[0] not in t)
            else text_cell(v)
        )
        for k in keys
    ]


def _entity_cells(entity_keys: list[str], entity: Any) -> list[str]:
    if entity:
        entity = _json(entity)
    if not entity or not isinstance(entity, dict):
        return [""] * len(entity_keys)
    return [text_cell(entity.get(k)) for k in entity_keys]


# --------------------------------------------------------------------------- queries


def contact_pages(
    engine: Engine, campaign_id: int, options: ReportOptions, span: Span = (-1, None)
) -> Iterator[Page]:
    """Pages of contacts in row_number order, each with its last placed call; only row
    numbers in ``span`` (``(after, upto)``: after < row_number <= upto, upto None = no end)."""
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
        )
        .select_from(Contact)
        .outerjoin(Attempt, Attempt.id == last_call)
        .where(Contact.campaign_id == campaign_id)
        .order_by(Contact.row_number)
        .limit(options.page_size)
    )
    if options.states:
        base = base.where(Contact.state.in_(sorted(options.states)))
    if options.outcomes:
        base = base.where(Contact.outcome.in_(sorted(options.outcomes)))
    if options.since is not None:
        base = base.where(
            or_(Contact.updated_at >= options.since, Contact.last_attempt_at >= options.since)
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
        if len(page) < options.page_size:
            return


def contact_cells(page: Page, keys: list[str | None], ekeys: list[str]) -> list[list[str]]:
    """Format a page of :func:`contact_pages` (original columns, our columns, entities)."""
    return [
        [
            *_original_cells(keys, attrs, raw),
            e164 or "",  # our own E.164 ("+" and digits): safe as it is
            state,
            outcome or "",
            "" if reason is None else text_cell(reason),
            str(attempts),
            "" if call_id is None else text_cell(call_id),
            _iso(at),
            _seconds(dur),
            "" if summary is None else text_cell(summary),
            *_entity_cells(ekeys, entity),
        ]
        for (
            _,
            raw,
            attrs,
            e164,
            state,
            outcome,
            reason,
            attempts,
            call_id,
            at,
            dur,
            summary,
            entity,
        ) in page
    ]


def attempt_pages(
    engine: Engine, campaign_id: int, options: ReportOptions, span: Span = (-1, None)
) -> Iterator[Page]:
    """Attempts in (row_number, attempt_no) order, read a range of contacts at a time: the
    range's upper row_number is found on the index first, so that each page's sort is small."""
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
        )
        .select_from(Contact)
        .join(Attempt, Attempt.contact_id == Contact.id)
        .where(Contact.campaign_id == campaign_id)
        .order_by(Contact.row_number, Attempt.attempt_no)
    )
    if options.states:
        stmt = stmt.where(Attempt.state.in_(sorted(options.states)))
    if options.outcomes:
        stmt = stmt.where(Attempt.outcome.in_(sorted(options.outcomes)))
    if options.since is not None:
        since = options.since
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
            .offset(options.page_size - 1)
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


def attempt_cells(page: Page, keys: list[str | None], ekeys: list[str]) -> list[list[str]]:
    """Format a page of :func:`attempt_pages`."""
    return [
        [
            *_original_cells(keys, attrs, raw),
            e164 or "",  # our own E.164 ("+" and digits): safe as it is
            str(no),
            state,
            "" if call_id is None else text_cell(call_id),
            _iso(created),
            _iso(accepted),
            _iso(finished),
            "" if call_status is None else text_cell(call_status),
            outcome or "",
            "" if error is None else text_cell(error),
            _seconds(dur),
            "" if summary is None else text_cell(summary),
            *_entity_cells(ekeys, entity),
        ]
        for (
            _,
            raw,
            attrs,
            e164,
            no,
            state,
            call_id,
            created,
            accepted,
            finished,
            call_status,
            outcome,
            error,
            dur,
            summary,
            entity,
        ) in page
    ]
