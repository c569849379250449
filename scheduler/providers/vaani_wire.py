"""The Vaani wire format: what the API's answers look like, and how we read them tolerantly.

Everything here is a pure function of bytes, dicts and header values, so that property tests
can throw arbitrary input at it; the rules every provider shares (numbers, timestamps,
``Retry-After``, ``X-RateLimit-Reset``) are in :mod:`scheduler.providers.wire_common`. Vaani's
own rules (from the official client ``vaani-sdk`` 0.3.1 and what real deployments send):

* trigger-call answers ``{"call_id": ...}``, some deployments ``{"output": {"call_id": ...}}``;
* call-history answers ``{"data": [record, ...], "pagination": {..., "total" | "total_count"}}``,
  newest call first; a record's field set varies: we map the fields we know (``call_type``
  gives the :class:`~scheduler.providers.base.Direction`), keep the raw record, and never crash
  on a missing or oddly typed field (a record without a usable ``call_id`` is skipped);
* rate limits come as ``Retry-After`` and ``X-RateLimit-Limit/Remaining/Reset``;
* error bodies carry ``{"detail": ...}`` (a string, or FastAPI's list of problems) or
  ``{"message": ...}``.

Malformed answers raise :class:`WireError` (a ``ValueError``); the client turns it into
:class:`scheduler.errors.ProtocolError` with the request it belongs to.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from scheduler.errors import RateLimitInfo
from scheduler.providers.base import CallOutcome, CallPage, Direction
from scheduler.providers.wire_common import (
    EPOCH_MS_THRESHOLD,
    EPOCH_THRESHOLD,
    WireError,
    as_count,
    as_duration,
    as_header_int,
    as_status,
    as_text,
    decode_json,
    is_last_page,
    parse_rate_reset,
    parse_retry_after,
    parse_timestamp,
    shorten,
)

__all__ = [
    "EPOCH_MS_THRESHOLD",
    "EPOCH_THRESHOLD",
    "PAGE_SIZE_MAX",
    "PAGE_SIZE_MIN",
    "CallDetails",
    "CallRecord",
    "HistoryPage",
    "TriggerResult",
    "WireError",
    "clamp_page_size",
    "decode_json",
    "error_detail",
    "parse_details",
    "parse_history",
    "parse_rate_info",
    "parse_rate_reset",
    "parse_record",
    "parse_retry_after",
    "parse_timestamp",
    "parse_transcript",
    "parse_trigger",
]

PAGE_SIZE_MIN, PAGE_SIZE_MAX = 1, 200
_DIRECTIONS = {"outbound": Direction.OUTBOUND, "inbound": Direction.INBOUND}


# --------------------------------------------------------------------------- results


def _written_status(raw: Mapping[str, Any], parsed: str | None) -> str | None:
    """``call_status`` (or ``status``) exactly as written, else the parsed (lower-cased) one."""
    written = raw.get("call_status", raw.get("status"))
    return written.strip() if isinstance(written, str) and written.strip() else parsed


@dataclass(frozen=True, kw_only=True)
class TriggerResult:
    """The answer to trigger-call: the new call's id (and the whole body, as sent)."""

    call_id: str
    raw: dict[str, Any]


class CallRecord:
    """One call from the call history; ``raw`` is the record exactly as the API sent it.

    Only ``call_id`` is read up front: the other fields are parsed on first access, because
    a poller looks at most records of a busy history only to see that they are not its own
    (this keeps a history page's parsing out of the client's per-request cost). Treat it as
    read-only.
    """

    __slots__ = ("__dict__", "call_id", "raw")

    def __init__(self, *, call_id: str, raw: dict[str, Any]) -> None:
        self.call_id = call_id
        self.raw = raw

    @functools.cached_property
    def status(self) -> str | None:
        """``call_status`` (or ``status``), lower-cased."""
        return as_status(self.raw.get("call_status", self.raw.get("status")))

    @functools.cached_property
    def raw_status(self) -> str | None:
        """The status exactly as the API wrote it (else the parsed one)."""
        return _written_status(self.raw, self.status)

    @functools.cached_property
    def duration_ms(self) -> float | None:
        return as_duration(self.raw.get("duration_ms"))

    @functools.cached_property
    def contact_number(self) -> str | None:
        return as_text(self.raw.get("contact_number"))

    @functools.cached_property
    def agent_id(self) -> str | None:
        return as_text(self.raw.get("agent_id"))

    @functools.cached_property
    def created_at(self) -> datetime | None:
        """Aware, UTC."""
        return parse_timestamp(self.raw.get("created_at"))

    @functools.cached_property
    def direction(self) -> Direction:
        """From ``call_type`` ("outbound", "inbound"); UNKNOWN when absent or other."""
        kind = self.raw.get("call_type")
        return (
            _DIRECTIONS.get(kind.strip().lower(), Direction.UNKNOWN)
            if isinstance(kind, str)
            else Direction.UNKNOWN
        )

    @property
    def client_ref(self) -> str | None:
        """Vaani echoes no client reference: always None."""
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallRecord):
            return NotImplemented
        return self.call_id == other.call_id and self.raw == other.raw

    __hash__ = None  # type: ignore[assignment]  # raw is a dict: not hashable

    def __repr__(self) -> str:
        return f"CallRecord(call_id={self.call_id!r}, status={self.status!r})"


@dataclass(frozen=True, kw_only=True)
class HistoryPage:
    """One page of the call history (newest first) and its pagination block."""

    records: list[CallRecord]
    page: int
    page_size: int
    total: int | None
    total_pages: int | None
    raw: dict[str, Any]

    @property
    def is_last(self) -> bool:
        """Is this the end of the history? (:func:`wire_common.is_last_page`)"""
        items = self.raw.get("data")
        return is_last_page(
            count=len(items) if isinstance(items, list) else 0,
            page=self.page,
            page_size=self.page_size,
            total=self.total,
            total_pages=self.total_pages,
        )

    def echoed_page_size(self) -> int | None:
        """The page size the pagination block echoes, if any."""
        pagination = self.raw.get("pagination")
        try:
            return int(pagination["page_size"]) if isinstance(pagination, dict) else None
        except (KeyError, TypeError, ValueError):
            return None

    def to_page(self) -> CallPage:
        """The provider-neutral page."""
        return CallPage(
            records=self.records,
            page=self.page,
            page_size=self.page_size,
            total=self.total,
            is_last=self.is_last,
            served_size=self.echoed_page_size(),
        )


@dataclass(frozen=True, kw_only=True)
class CallDetails:
    """The details of one call: outcome, summary and the data the agent extracted."""

    call_id: str
    status: str | None
    duration_ms: float | None
    summary: str | None
    entity: dict[str, Any]
    transcript: Any
    raw: dict[str, Any]

    def to_outcome(self) -> CallOutcome:
        """The provider-neutral outcome (``raw_status`` as the API wrote it)."""
        return CallOutcome(
            call_id=self.call_id,
            status=self.status,
            raw_status=_written_status(self.raw, self.status),
            duration_ms=self.duration_ms,
            summary=self.summary,
            entities=self.entity,
            transcript=self.transcript,
            raw=self.raw,
        )


# --------------------------------------------------------------------------- headers and bodies


def parse_rate_info(headers: Mapping[str, str], *, now: float | None = None) -> RateLimitInfo:
    """What the rate-limit headers of a response say (every field optional; names any case)."""
    h = headers if isinstance(headers, httpx.Headers) else httpx.Headers(dict(headers))
    return RateLimitInfo(
        limit=as_header_int(h.get("X-RateLimit-Limit")),
        remaining=as_header_int(h.get("X-RateLimit-Remaining")),
        reset_s=parse_rate_reset(h.get("X-RateLimit-Reset"), now=now),
        retry_after_s=parse_retry_after(h.get("Retry-After"), now=now),
    )


def error_detail(content: bytes) -> str | None:
    """The human-readable reason in an error body (``detail`` or ``message``), or its text."""
    try:
        data = json.loads(content) if content.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if isinstance(data, dict):
        for key in ("detail", "message", "error"):
            if data.get(key) not in (None, "", [], {}):
                return shorten(_describe(data[key]))
    if data is not None and not isinstance(data, dict):
        return shorten(_describe(data))
    text = content.decode("utf-8", errors="replace").strip()
    return shorten(text) if text else None


def _describe(value: Any) -> str:
    """FastAPI's ``[{"loc": [...], "msg": ...}]`` as "body.contact_number: msg; ..."."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_describe(item) for item in value)
    if isinstance(value, dict):
        if "msg" in value:
            loc = value.get("loc")
            where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
            return f"{where}: {value['msg']}" if where else str(value["msg"])
        if "message" in value:
            return str(value["message"])
    return json.dumps(value, default=str, ensure_ascii=False)


def parse_trigger(data: Any) -> TriggerResult:
    """The call id from a trigger-call answer, at the top level or under ``output``."""
    if not isinstance(data, dict):
        raise WireError(f"trigger-call answered a JSON {type(data).__name__}, not an object")
    call_id = as_text(data.get("call_id"))
    output = data.get("output")
    if call_id is None and isinstance(output, dict):
        call_id = as_text(output.get("call_id"))
    if call_id is None:
        raise WireError("trigger-call answered success without a call_id")
    return TriggerResult(call_id=call_id, raw=data)


def parse_record(data: Any) -> CallRecord | None:
    """A history record, or None when it has no usable ``call_id`` (never raises)."""
    if not isinstance(data, dict):
        return None
    call_id = as_text(data.get("call_id"))
    if call_id is None:
        return None
    return CallRecord(call_id=call_id, raw=data)


def parse_history(data: Any, *, page: int, page_size: int) -> HistoryPage:
    """A call-history page; ``page``/``page_size`` are what we asked for (the fallback)."""
    if not isinstance(data, dict):
        raise WireError(f"call-history answered a JSON {type(data).__name__}, not an object")
    items = data.get("data", [])
    if not isinstance(items, list):
        raise WireError(f"call-history 'data' is a {type(items).__name__}, not a list")
    records = [r for r in (parse_record(item) for item in items) if r is not None]
    pagination = data.get("pagination")
    if not isinstance(pagination, dict):
        pagination = {}
    total = as_count(pagination.get("total"))
    if total is None:
        total = as_count(pagination.get("total_count"))
    return HistoryPage(
        records=records,
        page=as_count(pagination.get("page")) or page,
        page_size=as_count(pagination.get("page_size")) or page_size,
        total=total,
        total_pages=as_count(pagination.get("total_pages")),
        raw=data,
    )


def _entity(value: Any) -> dict[str, Any]:
    if isinstance(value, str):  # some deployments send the extraction as a JSON string
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return dict(value) if isinstance(value, dict) else {}


def parse_details(data: Any, *, call_id: str) -> CallDetails:
    """The details of a call; ``call_id`` is the id we asked for (used when absent)."""
    if not isinstance(data, dict):
        raise WireError(f"call_details answered a JSON {type(data).__name__}, not an object")
    summary = data.get("summary")
    return CallDetails(
        call_id=as_text(data.get("call_id")) or call_id,
        status=as_status(data.get("call_status", data.get("status"))),
        duration_ms=as_duration(data.get("duration_ms")),
        summary=(summary.strip() or None) if isinstance(summary, str) else None,
        entity=_entity(data.get("entity")),
        transcript=data.get("transcript"),
        raw=data,
    )


def parse_transcript(data: Any) -> Any:
    """The transcript value (``{"transcript": ...}``, or the whole body as the SDK does)."""
    if isinstance(data, dict) and "transcript" in data:
        return data["transcript"]
    return data


def clamp_page_size(page_size: int) -> int:
    """page_size within the API's 1..200."""
    return max(PAGE_SIZE_MIN, min(PAGE_SIZE_MAX, int(page_size)))
