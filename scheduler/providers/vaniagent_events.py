"""VaniAgent's webhooks: checking the signature and reading an event (``seeds/001``).

VaniAgent POSTs ``{"event": "call.completed", "timestamp": ISO, "data": {call_id, agent_id,
duration, status, end_reason, transcript_url, recording_url, metadata, sentiment, summary}}``
and signs the raw body: header ``X-Vaniagent-Signature`` = hex HMAC-SHA256(secret, body).
The VaniAgent provider delegates its :class:`~scheduler.providers.base.EventSource` methods to
:func:`verify_event` and :func:`parse_event`; the receiver (``scheduler.webhooks_in``) stores
what they return.

An event's ``data`` is read by :func:`scheduler.providers.vaniagent_wire.read_outcome`, the
reading of ``GET /v1/calls/{id}``: one status mapping (``status`` and ``end_reason`` to our
neutral status; a ``call.failed`` event without a status is ``failed``), one set of entities
(``sentiment``, ``transcript_url``, ``recording_url``, the ``metadata`` echo), ``duration`` in
seconds, so that a call settled by its event reports exactly what the poll sweep would have.

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
from scheduler.providers.base import PushedEvent
from scheduler.providers.vaniagent_wire import read_outcome
from scheduler.providers.wire_common import as_text, shorten

SIGNATURE_HEADER = "x-vaniagent-signature"
#: event types that end a call: their outcome settles it
FINAL_EVENTS = frozenset({"call.completed", "call.failed"})


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


def _event_id(event: Mapping[str, Any], kind: str, call_id: str) -> str:
    explicit = as_text(event.get("id")) or as_text(event.get("event_id"))
    if explicit:
        return explicit[:200]
    stamp = event.get("timestamp")
    key = json.dumps([kind, call_id, stamp if isinstance(stamp, str | int | float) else None])
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:32]


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
        default = "failed" if kind == "call.failed" else None
        outcome = read_outcome(data, call_id=call_id, default_status=default)
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
