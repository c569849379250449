"""Vaani behind the provider interface: the async client of the Vaani External API.

Wire-identical to the official ``vaani-sdk`` 0.3.1 for the six endpoints the scheduler needs
(health, trigger-call, call-history, call details, transcript, stream), but unlike it the
client keeps the rate-limit headers and tells *not sent* (safe to resend) from *answer lost*
(the call may have been placed). Usage::

    async with VaaniProvider(api_key, gate=limiter) as vaani:
        placed = await vaani.place_call(DialRequest(agent_id="sales", phone_e164="+14155550100",
                                                    name="Ada", metadata={"order": "A-17"}))
        page = await vaani.list_calls(page=1, page_size=100)

:class:`VaaniProvider` implements :class:`~scheduler.providers.base.CallProvider`
(``place_call``, ``list_calls``, ``find_calls``, ``outcome``) on top of Vaani's own endpoint
methods (``trigger_call``, ``call_history``, ``call_details``, ``transcript``, ``health``,
and ``stream_recording``, which makes it a :class:`~scheduler.providers.base.RecordingSource`),
which stay public for the tests and the benchmarks. Requests go through
:class:`~scheduler.providers.http.HttpCore`; the key travels in the ``X-API-Key`` header only
(:class:`VaaniAuth`) and is redacted from every message, log line and repr.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx

from scheduler.providers.base import (
    CallOutcome,
    CallPage,
    CallQuery,
    CallRecord,
    Capabilities,
    DialRequest,
    Listing,
    PlacedCall,
    RecordingStream,
)
from scheduler.providers.client import HeaderAuth, HttpProvider
from scheduler.providers.http import served_range
from scheduler.providers.listing import find_newest_first
from scheduler.providers.vaani_wire import (
    PAGE_SIZE_MAX,
    CallDetails,
    HistoryPage,
    TriggerResult,
    clamp_page_size,
    error_detail,
    parse_details,
    parse_history,
    parse_rate_info,
    parse_transcript,
    parse_trigger,
)
from scheduler.retry import RetryPolicy

NAME = "vaani"
DEFAULT_BASE_URL = "https://api.vaanivoice.ai"
TRIGGER_PATH = "/api/trigger-call/"
DEFAULT_RETRY = RetryPolicy()
CAPABILITIES = Capabilities(
    pushes_events=False,
    idempotency_key=False,
    client_reference=False,
    listing=Listing.NEWEST_FIRST_PAGES,
    max_page_size=PAGE_SIZE_MAX,
    transcript_in_outcome=True,
)


class VaaniAuth(HeaderAuth):
    """Vaani's authentication: the key in the ``X-API-Key`` header of every request."""

    def __init__(self, api_key: str) -> None:
        super().__init__("X-API-Key", api_key)


class VaaniProvider(HttpProvider):
    """The Vaani API as a :class:`~scheduler.providers.base.CallProvider`."""

    name = NAME
    label = "Vaani"
    key_env = "VAANI_API_KEY"
    default_base_url = DEFAULT_BASE_URL
    capabilities = CAPABILITIES
    parse_rate_info = parse_rate_info
    error_detail = error_detail

    def make_auth(self, api_key: str) -> httpx.Auth:
        return VaaniAuth(api_key)

    # ------------------------------------------------------------------ the interface

    async def place_call(self, request: DialRequest) -> PlacedCall:
        """Place ``request`` with trigger-call (Vaani takes no client reference)."""
        result = await self.trigger_call(
            agent_id=request.agent_id,
            contact_number=request.phone_e164,
            name=request.name,
            metadata=request.metadata,
            voice=request.voice,
            outbound_number=request.caller_id,
            extra=request.options or None,
        )
        return PlacedCall(call_id=result.call_id, raw=result.raw)

    async def list_calls(self, *, page: int, page_size: int) -> CallPage:
        """One page of the call history, newest first."""
        return (await self.call_history(page=page, page_size=page_size)).to_page()

    async def find_calls(self, query: CallQuery, *, max_pages: int = 10) -> list[CallRecord]:
        """Pages the history newest first until it reaches calls older than
        ``query.earliest`` (or its end); returns the matching records oldest first."""

        async def page(n: int) -> CallPage:
            return (await self.call_history(page=n, page_size=PAGE_SIZE_MAX)).to_page()

        return await find_newest_first(page, query, max_pages=max_pages)

    async def outcome(self, call_id: str) -> CallOutcome:
        """The call's details (the transcript comes with them)."""
        return (await self.call_details(call_id)).to_outcome()

    # ------------------------------------------------------------------ Vaani's endpoints

    async def health(self) -> dict[str, Any]:
        """``GET /api/health``: ``{"status": "healthy", ...}``. Does not prove the key."""
        data = await self._core.call("GET", "/api/health", kind="poll")
        if not isinstance(data, dict):
            raise self._core.protocol(
                "GET", "/api/health", "health answered something not an object"
            )
        return data

    async def trigger_call(
        self,
        *,
        agent_id: str,
        contact_number: str,
        name: str,
        metadata: Mapping[str, Any] | None = None,
        voice: str | None = None,
        outbound_number: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> TriggerResult:
        """``POST /api/trigger-call/``: place one phone call; resent only if certainly unplaced.

        ``extra`` keys (``sip_trunk_id``, ``test_mode``, ``dnd_check_skipped``, ...) are merged
        into the body. Raises :class:`AnswerLostError` (incl. :class:`AmbiguousServerError`)
        when the call may have been placed, :class:`RateLimitedError` when a 429 asks to wait
        longer than the policy allows, and :class:`ProtocolError` when a success answer has no
        call id (the call was most likely placed: reconcile it like a lost answer).
        """
        body: dict[str, Any] = {
            "agent_id": agent_id,
            "medium": "telephony",
            "contact_number": contact_number,
            "name": name,
            "metadata": dict(metadata or {}),
        }
        if voice:
            body["voice"] = voice
        if outbound_number is not None:
            body["outbound_number"] = outbound_number
        if extra:
            body.update(extra)
        data = await self._core.call("POST", TRIGGER_PATH, kind="dispatch", json=body)
        return self._core.parse("POST", TRIGGER_PATH, parse_trigger, data)

    async def call_history(self, page: int = 1, page_size: int = 50) -> HistoryPage:
        """``GET /api/call-history``: one page, newest first (page 1-based, size 1..200)."""
        page = max(1, int(page))
        size = clamp_page_size(page_size)
        path = "/api/call-history"
        params = {"page": page, "page_size": size}
        data = await self._core.call("GET", path, kind="poll", params=params)
        return self._core.parse(
            "GET", path, lambda d: parse_history(d, page=page, page_size=size), data
        )

    async def call_details(self, call_id: str) -> CallDetails:
        """``GET /api/call_details/{call_id}``: outcome, summary, extracted entities."""
        path = f"/api/call_details/{_segment(call_id)}"
        data = await self._core.call("GET", path, kind="poll")
        return self._core.parse("GET", path, lambda d: parse_details(d, call_id=call_id), data)

    async def transcript(self, call_id: str) -> Any:
        """``GET /api/transcript/{call_id}``: the transcript as the API sends it."""
        path = f"/api/transcript/{_segment(call_id)}"
        return parse_transcript(await self._core.call("GET", path, kind="poll"))

    @asynccontextmanager
    async def stream_recording(
        self, call_id: str, *, offset: int = 0
    ) -> AsyncIterator[RecordingStream]:
        """``GET /api/stream/{call_id}``: the call's audio (ogg), streamed; from byte
        ``offset`` with ``Range: bytes=offset-`` (a :class:`RecordingSource`, for
        ``campaign recordings``). A 404 (no such call, or no audio) is a NotFoundError."""
        path = f"/api/stream/{_segment(call_id)}"
        headers = {"Accept": "audio/ogg, audio/*;q=0.9, */*;q=0.1"}
        if offset > 0:
            headers["Range"] = f"bytes={int(offset)}-"
        async with self._core.stream(path, kind="poll", headers=headers) as response:
            try:
                start, total = served_range(response.status_code, response.headers)
            except ValueError as exc:
                raise self._core.protocol("GET", path, str(exc)) from None
            yield RecordingStream(
                offset=start,
                total=total,
                content_type=response.headers.get("content-type"),
                chunks=self._core.chunks(response, path),
            )

    # ------------------------------------------------------------------ lifecycle


def _segment(call_id: str) -> str:
    if not isinstance(call_id, str) or not call_id:
        raise ValueError("call_id must be a non-empty string")
    return quote(call_id, safe="")
