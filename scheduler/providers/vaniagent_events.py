"""VaniAgent's webhooks: checking the signature and reading an event (``seeds/001``).

VaniAgent POSTs ``{"event": "call.completed", "timestamp": ISO, "data": {call_id, agent_id,
duration, status, end_reason, transcript_url, recording_url, metadata, sentiment, summary}}``
and signs the raw body: header ``X-Vaniagent-Signature`` = hex HMAC-SHA256(secret, body).
The VaniAgent provider delegates its :class:`~scheduler.providers.base.EventSource` methods to
:func:`verify_event` and :func:`parse_event`; the receiver (``scheduler.webhooks_in``) stores
what they return.

Statuses. VaniAgent's documented statuses are ``initiated``, ``in_progress``, ``completed`` and
``failed``; what made a call fail (or a completed call a voicemail) is in ``end_reason``
(an assumption shared with the sandbox front-end: the seed shows no such field). The neutral
status the engine classifies is derived from both:

=====================  ==========================  ==================
``status``             ``end_reason``              CallOutcome.status
=====================  ==========================  ==================
completed              completed / absent / other  completed
completed              voicemail                   voicemail
failed                 no_answer / busy / failed   that end reason
failed                 absent / other              failed
anything else          (ignored)                   the status itself
=====================  ==========================  ==================

``raw_status`` keeps the provider's own word. VaniAgent has no ``entities``: the outcome's
entities are what it does have (``sentiment``, ``transcript_url``, ``recording_url`` and the
``metadata`` echo), reported as ``entity.<key>`` columns. The adapter's reading of
``GET /v1/calls/{id}`` should use :func:`neutral_status` and :func:`call_entities` too, so that
a call settled by the poll sweep reports exactly what its event would have.

Events carry no id of their own in the seed; the dedupe key is the ``id``/``event_id`` field
when one is sent, else a digest of (event type, call id, the event's timestamp), so a
re-delivery of the same event is recognised whatever its byte layout.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from scheduler.errors import ProtocolError
from scheduler.outcomes import normalise_status
from scheduler.providers.base import CallOutcome, PushedEvent
from scheduler.providers.wire_common import as_duration, as_status, as_text, shorten

SIGNATURE_HEADER = "x-vaniagent-signature"
#: event types that end a call: their outcome settles it
FINAL_EVENTS = frozenset({"call.completed", "call.failed"})
#: end reasons that name an outcome of their own (others fall back to the status)
_REASON_OUTCOMES = frozenset({"voicemail", "no_answer", "busy", "failed", "completed"})
#: data fields copied into the outcome's entities when present
_ENTITY_FIELDS = ("sentiment", "transcript_url", "recording_url")


def signature(body: bytes, secret: str) -> str:
    """The hex HMAC-SHA256 of ``body`` with ``secret``: what VaniAgent sends (and the sandbox
    signs with)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_event(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """Is ``body`` signed with ``secret``? ``headers`` have lower-case names. Constant time;
    False for a missing, empty or non-ASCII signature and for an empty secret."""
    sent = headers.get(SIGNATURE_HEADER)
    if not sent or not secret:
        return False
    given = sent.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(given, signature(body, secret).encode())


def neutral_status(status: str | None, end_reason: str | None, kind: str) -> str | None:
    """The engine's status for a VaniAgent status and end reason (see the module docstring)."""
    reason = normalise_status(end_reason)
    if status is None and kind == "call.failed":
        status = "failed"
    if status == "completed":
        return "voicemail" if reason == "voicemail" else "completed"
    if status == "failed":
        return reason if reason in _REASON_OUTCOMES and reason != "completed" else "failed"
    return status


def _event_id(event: Mapping[str, Any], kind: str, call_id: str) -> str:
    explicit = as_text(event.get("id")) or as_text(event.get("event_id"))
    if explicit:
        return explicit[:200]
    stamp = event.get("timestamp")
    key = json.dumps([kind, call_id, stamp if isinstance(stamp, str | int | float) else None])
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:32]


def call_entities(data: Mapping[str, Any]) -> dict[str, Any]:
    """A call record's entities: sentiment, transcript and recording URLs, metadata echo."""
    entities: dict[str, Any] = {}
    for key in _ENTITY_FIELDS:
        value = as_text(data.get(key))
        if value is not None:
            entities[key] = value
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and metadata:
        entities["metadata"] = dict(metadata)
    return entities


def parse_payload(event: Any) -> PushedEvent:
    """The event in an already decoded body (the inbox re-reads stored payloads with it)."""
    if not isinstance(event, dict):
        raise ProtocolError("the webhook body is not a JSON object")
    kind = as_text(event.get("event")) or as_text(event.get("type"))
    if kind is None:
        raise ProtocolError("the webhook body names no event type (field 'event')")
    data = event.get("data")
    if not isinstance(data, dict):
        raise ProtocolError(f"the {shorten(kind)} event has no 'data' object")
    call_id = as_text(data.get("call_id")) or as_text(data.get("id"))
    if call_id is None:
        raise ProtocolError(f"the {shorten(kind)} event names no call (field 'data.call_id')")
    kind = kind.lower()
    outcome = None
    if kind in FINAL_EVENTS:
        raw_status = as_text(data.get("status"))
        end_reason = as_text(data.get("end_reason"))
        duration_s = as_duration(data.get("duration"))
        outcome = CallOutcome(
            call_id=call_id,
            status=neutral_status(as_status(raw_status), end_reason, kind),
            raw_status=raw_status,
            duration_ms=duration_s * 1000.0 if duration_s is not None else None,
            summary=as_text(data.get("summary")),
            entities=call_entities(data),
            transcript=None,
            raw=data,
        )
    return PushedEvent(
        event_id=_event_id(event, kind, call_id),
        kind=kind,
        call_id=call_id,
        outcome=outcome,
        raw=event,
    )


def parse_event(body: bytes) -> PushedEvent:
    """The event in a verified raw body; ProtocolError when it is not a VaniAgent event."""
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"the webhook body is not JSON ({exc.__class__.__name__})") from None
    return parse_payload(event)
