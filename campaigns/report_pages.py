"""Cells of the outcome report: a page of raw column values turned into CSV cells.

The pages are read by ``storage.reports.contact_pages`` / ``attempt_pages`` (the keyset
queries, each page in its own short transaction); ``contact_cells`` / ``attempt_cells`` turn
one into rows of cells, in the column order those functions document.

This is the export's hot path (target: 100,000 rows/s): columns arrive raw, without
SQLAlchemy's result processing (see ``storage.reports.raw``), JSON is decoded with the C
scanner, and only cells holding outside data go through the spreadsheet-safety check.
(Reading the next page on a second thread while formatting this one was tried and measured
slower: the GIL is held for most of a page's fetch.)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from campaigns.csvsafe import FORMULA_TRIGGERS, safe_cell
from storage.reports import Page

_TRIGGERS = FORMULA_TRIGGERS


def _iso(dt: datetime | str | None) -> str:
    """ISO 8601 UTC. Times are read raw (see ``storage.reports.raw``): naive UTC ``datetime`` objects from
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


def contact_cells(page: Page, keys: list[str | None], ekeys: list[str]) -> list[list[str]]:
    """Format a page of ``storage.reports.contact_pages`` (originals, ours, entities)."""
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
            _iso(callback_at),
            "" if note is None else text_cell(note),
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
            callback_at,
            note,
        ) in page
    ]


def attempt_cells(page: Page, keys: list[str | None], ekeys: list[str]) -> list[list[str]]:
    """Format a page of ``storage.reports.attempt_pages``."""
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
            _iso(callback_at),
            "" if note is None else text_cell(note),
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
            callback_at,
            note,
        ) in page
    ]
