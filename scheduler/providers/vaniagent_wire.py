"""The VaniAgent wire format (``seeds/001``): its answers, and how we read them tolerantly.

Pure functions of bytes, dicts and header values (property-tested with hypothesis); the
rules every provider shares are in :mod:`scheduler.providers.wire_common`. What the seed
documents, and what we assume where it is silent:

* ``POST /v1/calls`` answers ``{"id", "status": "initiated", ...}``;
* ``GET /v1/calls?limit&offset`` answers ``{"data": [record, ...], "total", "limit",
  "offset"}``, ``limit`` at most 100. ASSUMED: newest call first (the seed names no order;
  offset pages of a list that grows at the front can repeat a record, never skip one), and
  listed records carry the fields of ``GET /v1/calls/{id}`` (``to_number``, ``metadata``,
  ``end_reason``) except the transcript;
* ``GET /v1/calls/{id}`` answers ``status``, ``duration`` (SECONDS), ``transcript``,
  ``sentiment``, ``recording_url``, ``transcript_url``, ``metadata``, ``completed_at``, and
  (assumed) ``summary`` when the platform writes one;
* statuses are ``initiated``, ``in_progress``, ``completed``, ``failed``. The seed has no word
  for a missed call: ASSUMED, a final call says why in ``end_reason`` (``completed``,
  ``voicemail``, ``no_answer``, ``busy``, ``failed``). :func:`neutral_status` maps a status
  and its end reason onto our neutral names (``completed`` + ``voicemail`` is ``voicemail``;
  ``failed`` + ``no_answer`` is ``no_answer``); without an end reason the status is taken as
  it is. ``raw_status`` always keeps VaniAgent's own word;
* there is no entities field: the entities are ``sentiment``, ``transcript_url``,
  ``recording_url`` and the ``metadata`` echo (:func:`entities_of`);
* our attempt reference travels in the call's ``metadata`` under :data:`REF_KEY` (and the
  contact's name under :data:`NAME_KEY`, for the agent's greeting): the listing echoes it, so
  a lost answer is reconciled by it rather than by number and time;
* errors are ``{"error": {"code", "message", "param", "type"}}``;
* ``X-RateLimit-Reset`` is a UNIX TIMESTAMP (seconds), read as "seconds from now".
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from scheduler.errors import RateLimitInfo
from scheduler.outcomes import normalise_status
from scheduler.providers.base import CallOutcome, CallPage, ListedCall, PlacedCall
from scheduler.providers.wire_common import (
    WireError,
    as_count,
    as_duration,
    as_header_int,
    as_number,
    as_status,
    as_text,
    decode_json,
    parse_retry_after,
    parse_timestamp,
    shorten,
)

LIMIT_MIN, LIMIT_MAX = 1, 100
#: the metadata key our attempt reference travels under (echoed by the listing and webhooks)
REF_KEY = "_campaigns_ref"
#: the metadata key the contact's name travels under (VaniAgent's call takes no name field)
NAME_KEY = "_campaigns_name"
#: how far a page may run older-to-newer before it counts as listed oldest first
ORDER_SLACK = timedelta(seconds=1)
#: end reasons that name why a ``failed`` call failed, in our neutral statuses
_FAILED_REASONS = frozenset({"no_answer", "busy", "failed"})


def neutral_status(status: Any, end_reason: Any) -> str | None:
    """Our status name for VaniAgent's ``status`` and ``end_reason`` (see the docstring)::

        completed + voicemail                -> voicemail
        completed + anything else or absent  -> completed
        failed + no_answer / busy / failed   -> that end reason
        failed + anything else or absent     -> failed
        any other status                     -> the status itself (lower-cased)

    The webhook events (``vaniagent_events``) are read with this function too (through
    :func:`read_outcome`): a call settles the same whether polled or pushed.
    """
    word = as_status(status)
    reason = normalise_status(end_reason if isinstance(end_reason, str) else None)
    if word == "completed":
        return "voicemail" if reason == "voicemail" else word
    if word == "failed" and reason in _FAILED_REASONS:
        return reason
    return word


def written_status(raw: Mapping[str, Any]) -> str | None:
    """The status exactly as VaniAgent wrote it (stripped), or None."""
    value = raw.get("status")
    return value.strip() or None if isinstance(value, str) else None


def echoed_metadata(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The call's metadata as echoed, or {} when absent or not an object."""
    value = raw.get("metadata")
    return dict(value) if isinstance(value, dict) else {}


def client_ref_of(raw: Mapping[str, Any]) -> str | None:
    """Our attempt reference echoed in the metadata, or None."""
    return as_text(echoed_metadata(raw).get(REF_KEY))


def duration_ms(raw: Mapping[str, Any]) -> float | None:
    """``duration`` is in seconds; ours in milliseconds."""
    seconds = as_duration(raw.get("duration"))
    return None if seconds is None else seconds * 1000.0


def to_listed(data: Any) -> ListedCall | None:
    """A listed call, or None when it has no usable ``id`` (never raises)."""
    if not isinstance(data, dict):
        return None
    call_id = as_text(data.get("id"))
    if call_id is None:
        return None
    created: datetime | None = parse_timestamp(data.get("created_at"))
    return ListedCall(
        call_id=call_id,
        raw=data,
        status=neutral_status(data.get("status"), data.get("end_reason")),
        raw_status=written_status(data),
        duration_ms=duration_ms(data),
        contact_number=as_text(data.get("to_number")),
        agent_id=as_text(data.get("agent_id")),
        created_at=created,
        client_ref=client_ref_of(data),
    )


def parse_placed(data: Any) -> PlacedCall:
    """The new call's ``id`` from a make-call answer."""
    if not isinstance(data, dict):
        raise WireError(f"POST /v1/calls answered a JSON {type(data).__name__}, not an object")
    call_id = as_text(data.get("id"))
    if call_id is None:
        raise WireError("POST /v1/calls answered success without an id")
    return PlacedCall(call_id=call_id, raw=data)


def check_newest_first(records: Sequence[ListedCall]) -> None:
    """WireError when a page lists older calls first (by more than :data:`ORDER_SLACK`).

    The poller stops reading at the first page older than the calls it needs, and a lost
    answer whose call it did not see is taken as never placed: read oldest first, the
    listing would make it re-dial a call that was placed. Refusing the page instead leaves
    lost answers undecided (never re-dialled) and outcomes to the direct look-ups.
    """
    times = [r.created_at for r in records if r.created_at is not None]
    if len(times) >= 2 and times[-1] - times[0] > ORDER_SLACK:
        raise WireError(
            "GET /v1/calls lists older calls first; this client assumes newest first "
            "(see the README's VaniAgent notes) and will not read it, lest a lost call be "
            "taken as never placed"
        )


def parse_list(data: Any, *, page: int, limit: int) -> CallPage:
    """A list-calls answer as page ``page`` of ``limit`` records (what we asked for).

    The end is decided by ``total`` when the answer has one (``offset + served >= total``),
    else by a short or empty page.
    """
    if not isinstance(data, dict):
        raise WireError(f"GET /v1/calls answered a JSON {type(data).__name__}, not an object")
    items = data.get("data", [])
    if not isinstance(items, list):
        raise WireError(f"GET /v1/calls 'data' is a {type(items).__name__}, not a list")
    records = [r for r in (to_listed(item) for item in items) if r is not None]
    check_newest_first(records)
    total = as_count(data.get("total"))
    served = as_count(data.get("limit"))
    offset = as_count(data.get("offset"))
    if offset is None:
        offset = (page - 1) * limit
    if not items:
        is_last = True
    elif total is not None:
        is_last = offset + len(items) >= total
    else:
        is_last = len(items) < (served or limit)
    return CallPage(
        records=records,
        page=page,
        page_size=served or limit,
        total=total,
        is_last=is_last,
        served_size=served,
    )


def entities_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What VaniAgent tells about a call, as report entities (it has no entities field):
    ``sentiment``, ``transcript_url``, ``recording_url`` when present, and ``metadata``, the
    metadata echoed back (one ``entity.metadata`` column; the same as the webhook events)."""
    out: dict[str, Any] = {}
    for key in ("sentiment", "transcript_url", "recording_url"):
        value = as_text(raw.get(key))
        if value is not None:
            out[key] = value
    metadata = echoed_metadata(raw)
    if metadata:
        out["metadata"] = metadata
    return out


def read_outcome(
    data: Mapping[str, Any], *, call_id: str, default_status: str | None = None
) -> CallOutcome:
    """A call record as an outcome: a get-call answer or a webhook event's ``data``.

    The one reading of both (``vaniagent_events`` parses events with it), so that a call
    settles with the same status, duration (seconds here, milliseconds ours), summary and
    entities whether it was polled or pushed. ``default_status`` stands in for a missing
    ``status`` (a ``call.failed`` event that names none is ``failed``).
    """
    status = data.get("status")
    if as_status(status) is None:
        status = default_status
    summary = data.get("summary")
    return CallOutcome(
        call_id=call_id,
        status=neutral_status(status, data.get("end_reason")),
        raw_status=written_status(data),
        duration_ms=duration_ms(data),
        summary=(summary.strip() or None) if isinstance(summary, str) else None,
        entities=entities_of(data),
        transcript=data.get("transcript"),
        raw=data,
    )


def parse_call(data: Any, *, call_id: str) -> CallOutcome:
    """A get-call answer as an outcome; ``call_id`` is the id we asked for (used when absent)."""
    if not isinstance(data, dict):
        raise WireError(f"GET /v1/calls/{{id}} answered a JSON {type(data).__name__}")
    return read_outcome(data, call_id=as_text(data.get("id")) or call_id)


def parse_reset(value: str | None, *, now: float) -> float | None:
    """``X-RateLimit-Reset`` (a Unix timestamp) as seconds from ``now``; a time in the past
    gives 0, a value we cannot read None."""
    stamp = as_number(value) if value is not None else None
    if stamp is None or stamp < 0:
        return None
    return max(0.0, stamp - now)


def parse_rate_info(headers: Mapping[str, str], *, now: float | None = None) -> RateLimitInfo:
    """``X-RateLimit-Limit/Remaining/Reset`` (and a ``Retry-After`` if one is ever sent)."""
    h = headers if isinstance(headers, httpx.Headers) else httpx.Headers(dict(headers))
    current = time.time() if now is None else now
    return RateLimitInfo(
        limit=as_header_int(h.get("X-RateLimit-Limit")),
        remaining=as_header_int(h.get("X-RateLimit-Remaining")),
        reset_s=parse_reset(h.get("X-RateLimit-Reset"), now=current),
        retry_after_s=parse_retry_after(h.get("Retry-After"), now=current),
    )


def error_parts(content: bytes) -> tuple[str | None, str | None, str | None]:
    """``(code, message, param)`` of a VaniAgent error body; Nones where it does not say."""
    try:
        data = decode_json(content)
    except WireError:
        return None, None, None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, str):
        return None, as_text(err), None
    if not isinstance(err, dict):
        return None, None, None
    return as_text(err.get("code")), as_text(err.get("message")), as_text(err.get("param"))


def error_detail(content: bytes) -> str | None:
    """The reason in an error body as one line: ``"code: message (param: p)"``, else its text.

    The code leads, so that :func:`error_code` reads it back from an exception's detail.
    """
    code, message, param = error_parts(content)
    if code or message:
        line = ": ".join(p for p in (code, message) if p)
        return shorten(f"{line} (param: {param})" if param else line)
    text = content.decode("utf-8", errors="replace").strip()
    return shorten(text) if text else None


def error_code(detail: str | None) -> str | None:
    """The machine code that :func:`error_detail` put first, or None."""
    if not detail:
        return None
    head = detail.split(":", 1)[0].strip()
    return head if head and head.replace("_", "").isalnum() and head.islower() else None


def clamp_limit(limit: int) -> int:
    """``limit`` within the API's 1..100."""
    return max(LIMIT_MIN, min(LIMIT_MAX, int(limit)))
