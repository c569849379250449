"""The Vaani wire format: what the API's answers look like, and how we read them tolerantly.

Everything here is a pure function of bytes, dicts and header values, so that property tests
can throw arbitrary input at it. The rules (from the official client ``vaani-sdk`` 0.3.1 and
what real deployments send):

* trigger-call answers ``{"call_id": ...}``, some deployments ``{"output": {"call_id": ...}}``;
* call-history answers ``{"data": [record, ...], "pagination": {..., "total" | "total_count"}}``;
  a record's field set varies: we map the fields we know, keep the raw record, and never crash
  on a missing or oddly typed field (a record without a usable ``call_id`` is skipped);
* ``Retry-After`` is delta-seconds or an HTTP-date; ``X-RateLimit-Reset`` is delta-seconds or
  an epoch timestamp (values above 10^9 are taken as epoch seconds);
* error bodies carry ``{"detail": ...}`` (a string, or FastAPI's list of problems) or
  ``{"message": ...}``.

Malformed answers raise :class:`WireError` (a ``ValueError``); the client turns it into
:class:`scheduler.errors.ProtocolError` with the request it belongs to.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from scheduler.errors import RateLimitInfo

#: X-RateLimit-Reset values above this are epoch seconds, below it delta-seconds.
EPOCH_THRESHOLD = 1_000_000_000
#: Epoch values above this (in created_at fields) are milliseconds.
EPOCH_MS_THRESHOLD = 100_000_000_000
PAGE_SIZE_MIN, PAGE_SIZE_MAX = 1, 200
_DETAIL_MAX = 300


class WireError(ValueError):
    """An answer that does not have the shape the Vaani wire format promises."""


# --------------------------------------------------------------------------- results


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
        return _status(self.raw.get("call_status", self.raw.get("status")))

    @functools.cached_property
    def duration_ms(self) -> float | None:
        return _duration(self.raw.get("duration_ms"))

    @functools.cached_property
    def contact_number(self) -> str | None:
        return _text(self.raw.get("contact_number"))

    @functools.cached_property
    def agent_id(self) -> str | None:
        return _text(self.raw.get("agent_id"))

    @functools.cached_property
    def created_at(self) -> datetime | None:
        """Aware, UTC."""
        return parse_timestamp(self.raw.get("created_at"))

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


# --------------------------------------------------------------------------- headers


def _number(value: Any) -> float | None:
    """A finite number from an int, float or numeric string; None otherwise (never bool)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date).

    A date in the past gives 0.0; a value we cannot read gives None (as if absent).
    ``now`` is the current epoch time (for tests); defaults to ``time.time()``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    seconds = _number(text)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC per RFC 5322
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    try:
        return max(0.0, when.timestamp() - current)
    except (OverflowError, OSError, ValueError):
        return None


def _header_int(value: str | None) -> int | None:
    number = _number(value) if value is not None else None
    if number is None or number < 0:
        return None
    return int(number)


def parse_rate_reset(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds until the rate window resets; epoch values (> 10^9) become delta-seconds."""
    number = _number(value) if value is not None else None
    if number is None or number < 0:
        return None
    if number > EPOCH_THRESHOLD:
        current = time.time() if now is None else now
        return max(0.0, number - current)
    return number


def parse_rate_info(headers: Mapping[str, str], *, now: float | None = None) -> RateLimitInfo:
    """What the rate-limit headers of a response say (every field optional; names any case)."""
    h = headers if isinstance(headers, httpx.Headers) else httpx.Headers(dict(headers))
    return RateLimitInfo(
        limit=_header_int(h.get("X-RateLimit-Limit")),
        remaining=_header_int(h.get("X-RateLimit-Remaining")),
        reset_s=parse_rate_reset(h.get("X-RateLimit-Reset"), now=now),
        retry_after_s=parse_retry_after(h.get("Retry-After"), now=now),
    )


# --------------------------------------------------------------------------- bodies


def decode_json(content: bytes) -> Any:
    """The JSON value of a body; an empty body is ``{}`` (as the official client reads it)."""
    if not content.strip():
        return {}
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"the answer is not JSON ({exc.__class__.__name__}: {exc})") from None


def error_detail(content: bytes) -> str | None:
    """The human-readable reason in an error body (``detail`` or ``message``), or its text."""
    try:
        data = json.loads(content) if content.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if isinstance(data, dict):
        for key in ("detail", "message", "error"):
            if data.get(key) not in (None, "", [], {}):
                return _shorten(_describe(data[key]))
    if data is not None and not isinstance(data, dict):
        return _shorten(_describe(data))
    text = content.decode("utf-8", errors="replace").strip()
    return _shorten(text) if text else None


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


def _shorten(text: str) -> str:
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


def _text(value: Any) -> str | None:
    """A non-empty string from a string or an integer (ids and numbers come as both)."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _status(value: Any) -> str | None:
    """A call status, lower-cased ("Completed" and "completed" are the same outcome)."""
    if isinstance(value, str) and value.strip():
        return value.strip().lower()
    return None


def parse_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (naive = UTC) or epoch seconds/milliseconds."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not text.lstrip("+-").replace(".", "", 1).isdigit():  # not a bare number: ISO 8601
            try:
                parsed = datetime.fromisoformat(text)  # 3.11+: also "Z" and most ISO forms
            except ValueError:
                return None
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            try:
                return parsed.astimezone(UTC)
            except (OverflowError, ValueError):
                return None
    number = _number(value)
    if number is None or number < 0:
        return None
    if number > EPOCH_MS_THRESHOLD:
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _duration(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number >= 0 else None


def parse_trigger(data: Any) -> TriggerResult:
    """The call id from a trigger-call answer, at the top level or under ``output``."""
    if not isinstance(data, dict):
        raise WireError(f"trigger-call answered a JSON {type(data).__name__}, not an object")
    call_id = _text(data.get("call_id"))
    output = data.get("output")
    if call_id is None and isinstance(output, dict):
        call_id = _text(output.get("call_id"))
    if call_id is None:
        raise WireError("trigger-call answered success without a call_id")
    return TriggerResult(call_id=call_id, raw=data)


def parse_record(data: Any) -> CallRecord | None:
    """A history record, or None when it has no usable ``call_id`` (never raises)."""
    if not isinstance(data, dict):
        return None
    call_id = _text(data.get("call_id"))
    if call_id is None:
        return None
    return CallRecord(call_id=call_id, raw=data)


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number >= 0 else None


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
    total = _count(pagination.get("total"))
    if total is None:
        total = _count(pagination.get("total_count"))
    return HistoryPage(
        records=records,
        page=_count(pagination.get("page")) or page,
        page_size=_count(pagination.get("page_size")) or page_size,
        total=total,
        total_pages=_count(pagination.get("total_pages")),
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
        call_id=_text(data.get("call_id")) or call_id,
        status=_status(data.get("call_status", data.get("status"))),
        duration_ms=_duration(data.get("duration_ms")),
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
