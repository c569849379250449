"""The Voisnap wire format: what its answers look like (as far as we can know), read tolerantly.

The seed (``seeds/002``) documents only the Python SDK, not the REST wire, so the shapes below
are ASSUMPTIONS mirroring the SDK's typed objects; every parser keeps the raw record, maps the
fields it knows and never crashes on a missing or mistyped one (property-tested):

* ``outbound_calls.create`` answers the outbound call: ``{"id": "obc_...", "conversation_id":
  "conv_...", "status": "queued", ...}``. Our call id is the ``conversation_id`` when the answer
  has one (``conversations.get/analysis/transcript`` are keyed by it), else the ``id``;
* ``outbound_calls.list`` pages are ``{"data": [call, ...], "page", "page_size", "total",
  "total_pages"}`` (the SDK's ``list_page``), assumed newest first; a listed call carries
  ``to_number``, ``agent_id``, ``status``, ``end_reason``, ``duration_seconds``, ``created_at``
  and the ``metadata`` we sent, where our client reference travels (:data:`CLIENT_REF_KEY`);
* a conversation has ``status`` and ``end_reason`` and may embed its ``analysis``; an analysis
  has ``summary``, ``sentiment`` (+ ``sentiment_score``), ``intent`` and ``extracted_data``;
* errors are ``{"detail", "trace_id", "errors": [{"field", "message"}]}``; a 429 says how long
  to wait in its body, ``retry_after`` (seconds), and maybe in a ``Retry-After`` header.

Statuses. The SDK shows ``completed``; for calls that end otherwise we assume ``failed`` (or
``cancelled``) with the reason in ``end_reason``: ``no_answer``, ``busy``, ``voicemail``,
``error``. :func:`neutral_status` folds (status, end_reason) into our neutral names
(completed, no_answer, busy, voicemail, failed); ``raw_status`` stays the provider's word.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scheduler.errors import RateLimitInfo
from scheduler.providers.base import CallOutcome, CallPage, Direction, ListedCall
from scheduler.providers.vaani_wire import parse_rate_info
from scheduler.providers.wire_common import (
    WireError,
    as_count,
    as_duration,
    as_number,
    as_status,
    as_text,
    is_last_page,
    parse_timestamp,
    shorten,
)

__all__ = [
    "CLIENT_REF_KEY",
    "NAME_KEY",
    "PAGE_SIZE_MAX",
    "Analysis",
    "Conversation",
    "call_id_of",
    "create_body",
    "error_detail",
    "error_rate",
    "neutral_status",
    "parse_analysis",
    "parse_conversation",
    "parse_created",
    "parse_page",
    "parse_rate_info",
    "parse_record",
    "parse_transcript",
]

PAGE_SIZE_MIN, PAGE_SIZE_MAX = 1, 100
#: the metadata key our client reference (``"attempt-42"``) travels in, echoed when listed
CLIENT_REF_KEY = "vaani_campaigns_ref"
#: the metadata key the contact's name travels in (the create call has no name field)
NAME_KEY = "contact_name"

#: ``end_reason`` values that say what became of a call beyond completed/failed
_END_REASONS = {
    "no_answer": "no_answer",
    "noanswer": "no_answer",
    "not_answered": "no_answer",
    "busy": "busy",
    "line_busy": "busy",
    "voicemail": "voicemail",
    "machine_detected": "voicemail",
    "answering_machine": "voicemail",
    "error": "failed",
}
_ENDED = frozenset({"completed", "failed", "cancelled", "canceled", "ended"})
_CONNECTED = frozenset({"completed", "voicemail"})
_DIRECTIONS = {"outbound": Direction.OUTBOUND, "inbound": Direction.INBOUND}


def neutral_status(status: Any, end_reason: Any) -> str | None:
    """Our status name for a Voisnap (status, end_reason): ``("failed", "no_answer")`` is
    ``no_answer``; a status without a known reason stays itself, lower-cased."""
    word = as_status(status)
    reason = as_status(end_reason)
    if word in _ENDED and reason is not None:
        return _END_REASONS.get(reason.replace("-", "_").replace(" ", "_"), word)
    return word


def _written(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def call_id_of(data: Mapping[str, Any]) -> str | None:
    """Our id of an outbound call or conversation: its conversation id, else its own id."""
    return as_text(data.get("conversation_id")) or as_text(data.get("id"))


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


# --------------------------------------------------------------------------- placing a call


def create_body(
    *,
    agent_id: str,
    to_number: str,
    name: str,
    metadata: Mapping[str, Any],
    client_ref: str | None,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``outbound_calls.create`` body: ``options`` (a campaign's provider fields, e.g.
    ``retry_delay_minutes``), then ours, which no option overrides: ``max_retries`` 0 (our
    scheduler owns re-dials: a provider re-dial would call a number twice), and the name and
    our client reference in ``metadata``."""
    meta = dict(metadata)
    meta.setdefault(NAME_KEY, name)
    if client_ref is not None:
        meta[CLIENT_REF_KEY] = client_ref
    return {
        **options,
        "agent_id": agent_id,
        "to_number": to_number,
        "metadata": meta,
        "max_retries": 0,
    }


def parse_created(data: Any) -> tuple[str, dict[str, Any]]:
    """The call id of a create answer, and the answer; WireError when it has none."""
    if not isinstance(data, dict):
        raise WireError(f"outbound_calls.create answered a JSON {type(data).__name__}")
    call_id = call_id_of(data)
    if call_id is None:
        raise WireError("outbound_calls.create answered success without an id")
    return call_id, data


# --------------------------------------------------------------------------- listing


def parse_record(data: Any) -> ListedCall | None:
    """A listed outbound call, or None when it has no usable id (never raises)."""
    if not isinstance(data, dict):
        return None
    call_id = call_id_of(data)
    if call_id is None:
        return None
    seconds = as_duration(data.get("duration_seconds"))
    direction = as_status(data.get("direction"))
    ref = _mapping(data.get("metadata")).get(CLIENT_REF_KEY)
    return ListedCall(
        call_id=call_id,
        raw=data,
        status=neutral_status(data.get("status"), data.get("end_reason")),
        raw_status=_written(data.get("status")),
        duration_ms=seconds * 1000 if seconds is not None else None,
        contact_number=as_text(data.get("to_number")),
        agent_id=as_text(data.get("agent_id")),
        created_at=parse_timestamp(data.get("created_at")),
        # the outbound-calls resource lists outbound calls unless a record says otherwise
        direction=_DIRECTIONS.get(direction or "outbound", Direction.UNKNOWN),
        client_ref=ref if isinstance(ref, str) and ref else None,
    )


def parse_page(data: Any, *, page: int, page_size: int) -> CallPage:
    """One listing page; ``page``/``page_size`` are what we asked for (the fallback)."""
    if not isinstance(data, dict):
        raise WireError(f"outbound_calls.list answered a JSON {type(data).__name__}")
    items = data.get("data", [])
    if not isinstance(items, list):
        raise WireError(f"outbound_calls.list 'data' is a {type(items).__name__}, not a list")
    records = [r for r in (parse_record(item) for item in items) if r is not None]
    served = as_count(data.get("page_size"))
    number = as_count(data.get("page")) or page
    size = served or page_size
    total = as_count(data.get("total"))
    total_pages = as_count(data.get("total_pages"))
    is_last = is_last_page(
        count=len(items), page=number, page_size=size, total=total, total_pages=total_pages
    )
    return CallPage(
        records=records,
        page=number,
        page_size=size,
        total=total,
        is_last=is_last,
        served_size=served,
    )


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    """A conversation's analysis: summary, and the entities we report (intent, sentiment,
    extracted data)."""

    summary: str | None
    entities: dict[str, Any]
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """One conversation: how it ended, and its analysis when it embeds one."""

    call_id: str
    status: str | None
    raw_status: str | None
    duration_ms: float | None
    analysis: Analysis | None
    raw: dict[str, Any]

    @property
    def needs_analysis(self) -> bool:
        """Ended connected (completed, voicemail) without an embedded analysis: only then is
        the analysis worth a request (a missed call has no summary nor entities)."""
        return self.status in _CONNECTED and self.analysis is None

    def to_outcome(self, analysis: Analysis | None = None) -> CallOutcome:
        """The neutral outcome, with ``analysis`` (or the embedded one)."""
        found = analysis or self.analysis
        raw = dict(self.raw)
        if analysis is not None:
            raw["analysis"] = analysis.raw
        return CallOutcome(
            call_id=self.call_id,
            status=self.status,
            raw_status=self.raw_status,
            duration_ms=self.duration_ms,
            summary=found.summary if found else None,
            entities=dict(found.entities) if found else {},
            transcript=None,
            raw=raw,
        )


def _label(value: Any) -> str | None:
    """A sentiment or intent: a string, or an object's ``name``/``label``/``value``."""
    if isinstance(value, dict):
        value = next((value[k] for k in ("name", "label", "value") if k in value), None)
    return as_text(value)


def parse_analysis(data: Any) -> Analysis:
    """An analysis (``conversations.analysis``); WireError when it is not an object."""
    if not isinstance(data, dict):
        raise WireError(f"conversations.analysis answered a JSON {type(data).__name__}")
    extracted = data.get("extracted_data")
    if isinstance(extracted, str):  # some APIs send extractions as a JSON string
        try:
            extracted = json.loads(extracted)
        except json.JSONDecodeError:
            extracted = None
    entities = {k: v for k, v in _mapping(extracted).items() if v is not None}
    for key in ("intent", "sentiment"):
        label = _label(data.get(key))
        if label is not None:
            entities[key] = label
    score = as_number(data.get("sentiment_score"))
    if score is not None:
        entities["sentiment_score"] = score
    summary = data.get("summary")
    return Analysis(
        summary=(summary.strip() or None) if isinstance(summary, str) else None,
        entities=entities,
        raw=data,
    )


def parse_conversation(data: Any, *, call_id: str) -> Conversation:
    """A conversation; ``call_id`` is the id we asked for (used when the answer has none)."""
    if not isinstance(data, dict):
        raise WireError(f"conversations.get answered a JSON {type(data).__name__}")
    seconds = as_duration(data.get("duration_seconds"))
    embedded = data.get("analysis")
    analysis = None
    if isinstance(embedded, dict) and "summary" in embedded:
        analysis = parse_analysis(embedded)
    return Conversation(
        call_id=as_text(data.get("id")) or call_id,
        status=neutral_status(data.get("status"), data.get("end_reason")),
        raw_status=_written(data.get("status")),
        duration_ms=seconds * 1000 if seconds is not None else None,
        analysis=analysis,
        raw=data,
    )


def parse_transcript(data: Any) -> list[Any]:
    """The turns of a transcript (``{"turns": [...]}``); [] when it has none."""
    turns = data.get("turns") if isinstance(data, dict) else data
    return list(turns) if isinstance(turns, list) else []


# --------------------------------------------------------------------------- errors


def _body(content: bytes) -> dict[str, Any]:
    try:
        data = json.loads(content) if content.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def error_detail(content: bytes) -> str | None:
    """``detail``, then each ``errors[]`` entry as ``field: message``, then the trace id."""
    data = _body(content)
    parts: list[str] = []
    detail = data.get("detail", data.get("message"))
    if isinstance(detail, str) and detail.strip():
        parts.append(detail.strip())
    problems = data.get("errors")
    if isinstance(problems, list):
        for item in problems:
            if isinstance(item, dict):
                field, message = as_text(item.get("field")), as_text(item.get("message"))
                if message:
                    parts.append(f"{field}: {message}" if field else message)
    if not parts:
        text = content.decode("utf-8", errors="replace").strip()
        if not text:
            return None
        parts.append(text)
    trace = as_text(data.get("trace_id"))
    tail = f" (trace_id {trace})" if trace else ""
    return shorten("; ".join(parts) + tail)


def error_rate(rate: RateLimitInfo, content: bytes) -> RateLimitInfo:
    """``rate`` (from the headers) with a body's ``retry_after`` when no header said it."""
    if rate.retry_after_s is not None:
        return rate
    wait = as_duration(_body(content).get("retry_after"))
    return rate if wait is None else dataclasses.replace(rate, retry_after_s=wait)
