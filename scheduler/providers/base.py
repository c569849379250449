"""The provider interface: what the dispatcher, poller and reconciler may ask of a voice-AI API.

The scheduler's engine knows nothing of any provider's wire. It places a call from a
:class:`DialRequest`, lists calls as :class:`CallPage` pages of :class:`CallRecord` values,
looks for the call of a lost answer with a :class:`CallQuery`, and reads a call's
:class:`CallOutcome`. What differs between providers and changes how the engine works is said
by :class:`Capabilities` (does it push events, does it take an idempotency key or echo our
client reference, how are its calls listed). Each provider (``scheduler.providers.vaani``, and
the later VaniAgent, Voisnap and vaani.ai adapters) implements :class:`CallProvider` with its
own wire parsers, its ``httpx.Auth`` and its rate-limit headers; failures are raised as the one
tree of :mod:`scheduler.errors` (root ``ProviderError``).

Values crossing the interface are frozen and keyword-only, with one exception for speed:
:class:`CallRecord` is a protocol, so that a provider may parse a listed record lazily (a
poller looks at most records of a busy history only to see that they are not its own);
:class:`ListedCall` is the plain frozen implementation for providers that parse eagerly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import httpx

from scheduler.errors import RateLimitInfo


class Direction(StrEnum):
    """Who placed a listed call: we skip inbound calls when reconciling."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"
    UNKNOWN = "unknown"


class Listing(StrEnum):
    """How a provider lists its calls, which decides how far a poll must read."""

    #: numbered pages, newest call first (Vaani's call history): stop at the oldest needed
    NEWEST_FIRST_PAGES = "newest_first_pages"
    #: offset pages in no promised order (VaniAgent's ``limit``/``offset``): read them all
    UNORDERED_PAGES = "unordered_pages"


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a provider can do, as far as the engine's behaviour depends on it."""

    #: outcomes are pushed (webhooks): polling is only a slow sweep for missed events
    pushes_events: bool
    #: the place-call request takes an idempotency key: a resent POST places no second call
    idempotency_key: bool
    #: listed calls carry our client reference back: reconcile by it, not by number and time
    client_reference: bool
    listing: Listing
    #: the largest page the listing serves
    max_page_size: int
    #: the outcome already holds the transcript (no extra request for it)
    transcript_in_outcome: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DialRequest:
    """One call to place, from a dial job: who, as whom, through which agent, and our id."""

    agent_id: str
    phone_e164: str
    name: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: the number shown to the callee (Vaani ``outbound_number``, VaniAgent ``from_number``)
    caller_id: str | None = None
    voice: str | None = None
    #: provider-specific body fields, merged as given (``sip_trunk_id``, ``test_mode``, ...)
    options: Mapping[str, Any] = field(default_factory=dict)
    #: our reference for this attempt (e.g. ``"attempt-42"``): sent where the provider
    #: accepts one (idempotency key, echoed metadata), ignored otherwise
    client_ref: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacedCall:
    """The provider accepted the call: its id, and the answer as sent."""

    call_id: str
    raw: Mapping[str, Any]


class CallRecord(Protocol):
    """One listed call, read-only; ``raw`` is the record exactly as the provider sent it."""

    @property
    def call_id(self) -> str: ...

    @property
    def raw(self) -> Mapping[str, Any]: ...

    @property
    def status(self) -> str | None:
        """Lower-cased status as the provider names it (classified in ``campaigns``)."""
        ...

    @property
    def raw_status(self) -> str | None:
        """The status exactly as the provider wrote it (reports show it)."""
        ...

    @property
    def duration_ms(self) -> float | None: ...

    @property
    def contact_number(self) -> str | None: ...

    @property
    def agent_id(self) -> str | None: ...

    @property
    def created_at(self) -> datetime | None:
        """Aware, UTC."""
        ...

    @property
    def direction(self) -> Direction: ...

    @property
    def client_ref(self) -> str | None:
        """Our :attr:`DialRequest.client_ref`, when the provider echoes it."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedCall:
    """A :class:`CallRecord` parsed eagerly (the plain implementation of the protocol)."""

    call_id: str
    raw: Mapping[str, Any]
    status: str | None = None
    raw_status: str | None = None
    duration_ms: float | None = None
    contact_number: str | None = None
    agent_id: str | None = None
    created_at: datetime | None = None
    direction: Direction = Direction.UNKNOWN
    client_ref: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPage:
    """One page of a provider's call listing, with the provider's verdict on what follows."""

    records: Sequence[CallRecord]
    page: int  # 1-based
    page_size: int  # the size the provider served (or the one asked for)
    total: int | None
    #: no page follows (the provider's pagination says so, or the page came back empty)
    is_last: bool
    #: the page size the provider says it served, None when it does not say
    served_size: int | None

    def size_confirmed(self, asked: int) -> bool:
        """Did the provider confirm it serves ``asked`` records a page (so that asking for
        bigger pages is safe)?"""
        return self.served_size == asked


#: How far a provider's clock may be behind ours when comparing its times with ours.
DEFAULT_SKEW = timedelta(minutes=2)


def phone_key(number: str | None) -> str:
    """Digits only: ``"+91 98000-00001"`` and ``"919800000001"`` are the same number."""
    return "".join(ch for ch in number or "" if ch.isdigit())


def attempt_ref(attempt_id: int) -> str:
    """Our client reference for an attempt (``"attempt-42"``): the dispatcher sends it as
    :attr:`DialRequest.client_ref` and reconcile looks for it; one spelling for both, since a
    record carrying another reference is never taken for the attempt's call."""
    return f"attempt-{attempt_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQuery:
    """Which listed call could be the one a lost answer placed."""

    phone_e164: str
    #: the attempt was reserved then: the call cannot be older (less the clock skew)
    since: datetime
    agent_id: str | None = None
    client_ref: str | None = None
    #: how far the provider's clock may be behind ours
    skew: timedelta = DEFAULT_SKEW

    @property
    def earliest(self) -> datetime:
        """No matching call can have been created before this."""
        return self.since - self.skew

    def matches(self, record: CallRecord) -> bool:
        """Is ``record`` a candidate? By client reference when both carry one; otherwise an
        outbound (or unlabelled) call to the same number, by the same agent when the record
        names one, created at or after :attr:`earliest` (or with no time at all)."""
        if self.client_ref is not None and record.client_ref is not None:
            return record.client_ref == self.client_ref
        if phone_key(record.contact_number) != phone_key(self.phone_e164):
            return False
        if record.agent_id and self.agent_id and record.agent_id != self.agent_id:
            return False
        if record.direction is Direction.INBOUND:
            return False
        return record.created_at is None or record.created_at >= self.earliest


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOutcome:
    """What became of a call: status, length, and what the agent heard and extracted."""

    call_id: str
    status: str | None  # lower-cased
    #: the status exactly as the provider wrote it (reports show it)
    raw_status: str | None
    duration_ms: float | None
    summary: str | None
    #: extracted data, reported as ``entity.<key>`` columns
    entities: Mapping[str, Any]
    transcript: Any  # None unless cheap to get (see Capabilities.transcript_in_outcome)
    raw: Mapping[str, Any]


class CallProvider(Protocol):
    """A voice-AI platform that places outbound calls; the engine's only view of one."""

    @property
    def name(self) -> str:
        """The provider's registry name (``"vaani"``), stored on campaigns."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def auth(self) -> httpx.Auth:
        """How requests are signed (Vaani: the ``X-API-Key`` header)."""
        ...

    @property
    def last_rate(self) -> RateLimitInfo:
        """The rate-limit headers of the latest response."""
        ...

    def rate_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """What this provider's rate-limit headers in ``headers`` say."""
        ...

    async def place_call(self, request: DialRequest) -> PlacedCall:
        """Place one call; resent only when it was certainly not placed."""
        ...

    async def list_calls(self, *, page: int, page_size: int) -> CallPage:
        """One page of the listing, in the order :attr:`Capabilities.listing` says."""
        ...

    async def find_calls(self, query: CallQuery, *, max_pages: int = 10) -> list[CallRecord]:
        """Recent calls that :meth:`CallQuery.matches`, oldest first."""
        ...

    async def outcome(self, call_id: str) -> CallOutcome:
        """The outcome of one call (status, duration, summary, entities)."""
        ...

    async def aclose(self) -> None:
        """Close the connection pool."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PushedEvent:
    """One event a provider pushed to ``run --listen`` (a webhook), verified and parsed."""

    #: stable across the provider's re-deliveries, for dedupe: the provider's event id when
    #: it sends one, else a digest of (kind, call id, the event's own timestamp)
    event_id: str
    #: the event type as the provider names it (``"call.completed"``)
    kind: str
    call_id: str
    #: the call has ended: this outcome settles it (None for events that do not end a call,
    #: such as ``call.started``, which the receiver records and otherwise ignores)
    outcome: CallOutcome | None
    raw: Mapping[str, Any]


@runtime_checkable
class EventSource(Protocol):
    """What a provider whose :attr:`Capabilities.pushes_events` is true adds to
    :class:`CallProvider`: checking and reading the events it pushes."""

    def verify_event(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """Is ``body`` (the raw request body) signed with ``secret``? ``headers`` have
        lower-case names. Compares in constant time."""
        ...

    def parse_event(self, body: bytes) -> PushedEvent:
        """The event in a verified body; :class:`scheduler.errors.ProtocolError` when it is not
        one this provider sends (the receiver answers 400 and changes nothing)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingStream:
    """A call's recording as it downloads: where its bytes start, and the bytes."""

    #: the byte the chunks start at: the offset asked for when the server honoured the range
    #: (206), 0 when it sent the whole recording (200) whatever was asked
    offset: int
    #: the whole recording's size when the server says it (Content-Range or Content-Length)
    total: int | None
    content_type: str | None
    #: the body as it arrives; a connection lost midway raises ``AnswerLostError``
    chunks: AsyncIterator[bytes]


@runtime_checkable
class RecordingSource(Protocol):
    """What a provider that keeps call audio adds to :class:`CallProvider` (Vaani's
    ``GET /api/stream/{call_id}``): its recordings, streamed, resumable from a byte offset.
    Requests pass the client's gate (the plan's rate limiter) like every other."""

    def stream_recording(
        self, call_id: str, *, offset: int = 0
    ) -> AbstractAsyncContextManager[RecordingStream]:
        """The recording of ``call_id`` from byte ``offset`` (a ``Range`` request when > 0);
        :class:`scheduler.errors.NotFoundError` when the call has none."""
        ...
