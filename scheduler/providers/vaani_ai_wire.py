"""The vaani.ai wire format (``seeds/003``), read tolerantly.

The seed documents the requests (paths, query filters, the outbound-call body) and the error
details, but not the fields of an answer: "the full call log with all fields (same schema as
list item)". What we assume, and what the sandbox's ``vaani-ai`` front-end serves:

* ``POST /calls/outbound_call`` answers the new call log's id as ``call_log_id`` (also read:
  ``id``, ``call_id``, at the top level or under ``data``);
* ``GET /calls/logs`` answers ``{"items": [log, ...], "total", "page", "page_size",
  "total_pages"}``, newest call first (also read: the list under ``data``, ``call_logs``,
  ``logs`` or ``results``, and the counts under ``pagination`` or ``meta``);
* a call log (list item and ``GET /calls/{id}`` alike) has ``id``, ``call_type`` ("phone" or
  "web", the seed's filter values), ``direction`` ("outbound"/"inbound"), ``phone_number``
  (the other party; also ``phone_number_to_dial``, ``to_number``), ``agent_phone_number``,
  ``status``, ``end_reason``, ``duration`` (seconds; ``duration_ms`` wins when present),
  ``created_at``, ``summary``, ``extracted_data`` (the entities: an object or a JSON string;
  also ``entities``), ``transcript`` and ``dynamic_variables`` as sent;
* statuses: ``queued``, ``ringing``, ``in-progress`` while the call lives, then ``completed``
  or ``failed``, with ``end_reason`` saying how it ended (``completed``, ``voicemail``,
  ``no_answer``, ``busy``, ``failed``). When ``end_reason`` is one of the outcome words of
  :mod:`scheduler.outcomes` it is the neutral status; otherwise (an end reason we do not know,
  such as ``customer-ended-call``) the ``status`` is. ``raw_status`` stays vaani.ai's ``status``;
* our attempt reference travels in ``dynamic_variables`` under :data:`CLIENT_REF_KEY` and
  comes back in the log's ``dynamic_variables``;
* errors are FastAPI's ``{"detail": ...}`` (read by :func:`vaani_wire.error_detail`), rate
  limits a 429 with ``Retry-After`` (and ``X-RateLimit-*`` if ever sent).

Every parser is a pure function that never raises on a mistyped field (it becomes None); only
an answer of the wrong overall shape raises :class:`WireError`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from scheduler.outcomes import STATUS_OUTCOMES, normalise_status
from scheduler.providers.base import CallOutcome, CallPage, Direction
from scheduler.providers.wire_common import (
    WireError,
    as_count,
    as_duration,
    as_number,
    as_object,
    as_status,
    as_text,
    is_last_page,
    parse_timestamp,
)

#: the dynamic variable that carries our attempt reference ("attempt-42")
CLIENT_REF_KEY = "vaani_campaigns_ref"
#: the seed's default page size, and the largest we ask for (an assumption: not documented)
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 25, 100
_LIST_KEYS = ("items", "data", "call_logs", "logs", "results")
_ID_KEYS = ("call_log_id", "id", "call_id")
_NUMBER_KEYS = ("phone_number", "phone_number_to_dial", "to_number", "customer_number")
_DIRECTIONS = {"outbound": Direction.OUTBOUND, "inbound": Direction.INBOUND}


def _first_text(data: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        text = as_text(data.get(key))
        if text is not None:
            return text
    return None


def neutral_status(status: Any, end_reason: Any) -> str | None:
    """Our status word: ``end_reason`` when it names an outcome we know, else ``status``
    (both lower-cased; see the module docstring)."""
    reason = as_status(end_reason)
    if reason is not None and normalise_status(reason) in STATUS_OUTCOMES:
        return normalise_status(reason)
    return as_status(status)


def duration_ms(data: Mapping[str, Any]) -> float | None:
    """``duration_ms``, else ``duration`` (seconds) in milliseconds."""
    ms = as_duration(data.get("duration_ms"))
    if ms is not None:
        return ms
    seconds = as_duration(data.get("duration", data.get("duration_seconds")))
    return None if seconds is None else seconds * 1000.0


def client_ref(data: Mapping[str, Any]) -> str | None:
    """Our attempt reference echoed in the log's ``dynamic_variables``."""
    variables = data.get("dynamic_variables")
    return as_text(variables.get(CLIENT_REF_KEY)) if isinstance(variables, dict) else None


class CallLog:
    """One call log from ``GET /calls/logs``; ``raw`` is the log exactly as sent.

    Only the id is read up front, the rest on first access (a poller looks at most logs of a
    busy history only to see that they are not its own). Treat it as read-only.
    """

    __slots__ = ("__dict__", "call_id", "raw")

    def __init__(self, *, call_id: str, raw: dict[str, Any]) -> None:
        self.call_id = call_id
        self.raw = raw

    @functools.cached_property
    def status(self) -> str | None:
        return neutral_status(self.raw.get("status"), self.raw.get("end_reason"))

    @functools.cached_property
    def raw_status(self) -> str | None:
        written = self.raw.get("status")
        return written.strip() if isinstance(written, str) and written.strip() else self.status

    @functools.cached_property
    def duration_ms(self) -> float | None:
        return duration_ms(self.raw)

    @functools.cached_property
    def contact_number(self) -> str | None:
        return _first_text(self.raw, _NUMBER_KEYS)

    @property
    def agent_id(self) -> str | None:
        """None: vaani.ai's agent id is not what our campaigns know the agent by (its phone
        number), so it must not rule a candidate out when reconciling."""
        return None

    @functools.cached_property
    def created_at(self) -> datetime | None:
        return parse_timestamp(self.raw.get("created_at"))

    @functools.cached_property
    def direction(self) -> Direction:
        kind = self.raw.get("direction")
        if isinstance(kind, str):
            return _DIRECTIONS.get(kind.strip().lower(), Direction.UNKNOWN)
        return Direction.UNKNOWN

    @functools.cached_property
    def client_ref(self) -> str | None:
        return client_ref(self.raw)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallLog):
            return NotImplemented
        return self.call_id == other.call_id and self.raw == other.raw

    __hash__ = None  # type: ignore[assignment]  # raw is a dict: not hashable

    def __repr__(self) -> str:
        return f"CallLog(call_id={self.call_id!r}, status={self.status!r})"


def parse_log(data: Any) -> CallLog | None:
    """A call log, or None when it is not an object with a usable id (never raises)."""
    if not isinstance(data, dict):
        return None
    call_id = _first_text(data, _ID_KEYS)
    return None if call_id is None else CallLog(call_id=call_id, raw=data)


def parse_placed(data: Any) -> tuple[str, dict[str, Any]]:
    """The new call log's id from an outbound-call answer, and the answer."""
    if not isinstance(data, dict):
        raise WireError(f"outbound_call answered a JSON {type(data).__name__}, not an object")
    call_id = _first_text(data, _ID_KEYS)
    inner = data.get("data")
    if call_id is None and isinstance(inner, dict):
        call_id = _first_text(inner, _ID_KEYS)
    if call_id is None:
        raise WireError("outbound_call answered success without a call log id")
    return call_id, data


def _counts(data: dict[str, Any]) -> dict[str, Any]:
    for key in ("pagination", "meta"):
        block = data.get(key)
        if isinstance(block, dict):
            return {**data, **block}
    return data


def parse_logs(data: Any, *, page: int, page_size: int) -> CallPage:
    """A ``/calls/logs`` page; ``page``/``page_size`` are what we asked for (the fallback).

    The end of the listing is what the counts say (``total_pages``, else ``total``); only
    without them does a short page count as the end, and an empty page always does.
    """
    if not isinstance(data, dict):
        raise WireError(f"calls/logs answered a JSON {type(data).__name__}, not an object")
    items: Any = None
    for key in _LIST_KEYS:
        if key in data:
            items = data[key]
            break
    if items is None:
        items = []
    if not isinstance(items, list):
        raise WireError(f"calls/logs listed a {type(items).__name__}, not a list")
    records = [r for r in (parse_log(item) for item in items) if r is not None]
    counts = _counts(data)
    served = as_count(counts.get("page_size"))
    size = served or page_size
    number = as_count(counts.get("page")) or page
    total = as_count(counts.get("total", counts.get("total_count")))
    pages = as_count(counts.get("total_pages"))
    last = is_last_page(
        count=len(items), page=number, page_size=size, total=total, total_pages=pages
    )
    return CallPage(
        records=records,
        page=number,
        page_size=size,
        total=total,
        is_last=last,
        served_size=served,
    )


def parse_outcome(data: Any, *, call_id: str) -> CallOutcome:
    """The outcome in a ``GET /calls/{id}`` answer; ``call_id`` is the id we asked for."""
    if not isinstance(data, dict):
        raise WireError(f"calls/{{id}} answered a JSON {type(data).__name__}, not an object")
    log = parse_log(data) or CallLog(call_id=call_id, raw=data)
    summary = data.get("summary")
    found = data.get("extracted_data")
    if found is None:
        found = data.get("entities")
    return CallOutcome(
        call_id=log.call_id,
        status=log.status,
        raw_status=log.raw_status,
        duration_ms=log.duration_ms,
        summary=(summary.strip() or None) if isinstance(summary, str) else None,
        entities=as_object(found),
        transcript=data.get("transcript"),
        raw=data,
    )


def clamp_page_size(page_size: Any) -> int:
    """A page size within 1..:data:`PAGE_SIZE_MAX` (the seed's default when unreadable)."""
    number = as_number(page_size)
    if number is None:
        return PAGE_SIZE_DEFAULT
    return max(1, min(PAGE_SIZE_MAX, int(number)))
