"""VaniAgent behind the provider interface (``seeds/001``): calls through ``/v1/calls``.

Usage::

    async with VaniAgentProvider(api_key, gate=limiter) as agent:
        placed = await agent.place_call(DialRequest(agent_id="agent_abc123",
                                                    phone_e164="+14155550100", name="Ada",
                                                    caller_id="+14155550199",
                                                    client_ref="attempt-42"))
        outcome = await agent.outcome(placed.call_id)

Requests go through :class:`~scheduler.providers.http.HttpCore` (gate, retries, error
mapping) like Vaani's; the key travels as ``Authorization: Bearer`` only (:class:`BearerAuth`)
and is redacted from every message, log line and repr. What differs from Vaani:

* the call carries our attempt reference in its ``metadata`` (``_campaigns_ref``), which the
  listing echoes: :attr:`Capabilities.client_reference` is true and a lost answer is
  reconciled by that reference;
* the listing is ``limit``/``offset`` pages of at most 100, read newest first (an assumption
  about the real service, see :mod:`~scheduler.providers.vaniagent_wire`);
* ``insufficient_credits`` is an :class:`~scheduler.errors.InsufficientBalanceError` whatever
  its HTTP status, and an unknown agent (404 ``resource_not_found`` on ``agent_id`` when
  placing a call) a :class:`~scheduler.errors.ForbiddenError`: both pause dispatch instead of
  failing every contact;
* the plan limits requests per minute AND per hour: ``scheduler.ratelimit_windows`` paces the
  second window (the registry's ``rate_windows``);
* VaniAgent pushes ``call.completed`` / ``call.failed`` webhooks
  (:attr:`Capabilities.pushes_events`): the provider is also an
  :class:`~scheduler.providers.base.EventSource`, which ``run --listen`` serves
  (``scheduler.webhooks_in``); checking and reading the events is ``vaniagent_events``'s, and
  an event's outcome is read by the same ``vaniagent_wire`` rules as a polled call's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from scheduler.errors import (
    APIStatusError,
    ForbiddenError,
    InsufficientBalanceError,
    ProviderError,
)
from scheduler.providers import vaniagent_events
from scheduler.providers.base import (
    CallOutcome,
    CallPage,
    CallQuery,
    CallRecord,
    Capabilities,
    DialRequest,
    Listing,
    PlacedCall,
    PushedEvent,
)
from scheduler.providers.client import BearerAuth, HttpProvider
from scheduler.providers.listing import find_newest_first
from scheduler.providers.vaniagent_wire import (
    LIMIT_MAX,
    NAME_KEY,
    REF_KEY,
    clamp_limit,
    error_code,
    error_detail,
    parse_call,
    parse_list,
    parse_placed,
    parse_rate_info,
)

NAME = "vaniagent"
LABEL = "VaniAgent"
DEFAULT_BASE_URL = "https://api.vaniagent.com"
CALLS_PATH = "/v1/calls"
#: the Starter plan's limits (seeds/001): the default when the config names none
STARTER_WINDOWS = ("100/min", "1000/h")
CAPABILITIES = Capabilities(
    pushes_events=True,
    idempotency_key=False,
    client_reference=True,
    listing=Listing.NEWEST_FIRST_PAGES,
    max_page_size=LIMIT_MAX,
    transcript_in_outcome=True,
)


def _refined(exc: APIStatusError, *, placing: bool) -> APIStatusError:
    """The error VaniAgent's error code means, where it says more than the HTTP status."""
    code = error_code(exc.detail)
    cls: type[APIStatusError] | None = None
    if code == "insufficient_credits" and not isinstance(exc, InsufficientBalanceError):
        cls = InsufficientBalanceError
    elif placing and exc.status_code == 404 and "agent_id" in (exc.detail or ""):
        cls = ForbiddenError  # the agent is not this key's: pause, do not burn contacts
    if cls is None:
        return exc
    return cls(
        exc.message,
        status_code=exc.status_code or 0,
        method=exc.method,
        path=exc.path,
        detail=exc.detail,
        rate=exc.rate,
    )


class VaniAgentProvider(HttpProvider):
    """The VaniAgent API as a :class:`~scheduler.providers.base.CallProvider`."""

    name = NAME
    label = LABEL
    key_env = "VANIAGENT_API_KEY"
    default_base_url = DEFAULT_BASE_URL
    capabilities = CAPABILITIES
    parse_rate_info = parse_rate_info
    error_detail = error_detail

    def make_auth(self, api_key: str) -> httpx.Auth:
        return BearerAuth(api_key)

    async def _call(self, method: str, path: str, *, kind: str, **kwargs: Any) -> Any:
        """One logical request; errors name VaniAgent and say what its error code means."""
        try:
            return await self._core.call(method, path, kind=kind, **kwargs)
        except APIStatusError as exc:
            refined = _refined(exc, placing=method == "POST")
            refined.provider_label = LABEL
            if refined is exc:
                raise
            raise refined from None
        except ProviderError as exc:
            exc.provider_label = LABEL
            raise

    async def place_call(self, request: DialRequest) -> PlacedCall:
        """``POST /v1/calls``: the row's metadata carries our reference and the name."""
        metadata: dict[str, Any] = dict(request.metadata)
        metadata[NAME_KEY] = request.name
        if request.client_ref is not None:
            metadata[REF_KEY] = request.client_ref
        body: dict[str, Any] = {
            "agent_id": request.agent_id,
            "to_number": request.phone_e164,
            "metadata": metadata,
        }
        if request.caller_id is not None:
            body["from_number"] = request.caller_id
        body.update(request.options)
        data = await self._call("POST", CALLS_PATH, kind="dispatch", json=body)
        return self._core.parse("POST", CALLS_PATH, parse_placed, data)

    async def list_calls(self, *, page: int, page_size: int) -> CallPage:
        """``GET /v1/calls?limit&offset``: page ``page`` (1-based) of ``page_size`` (<= 100)."""
        page = max(1, int(page))
        limit = clamp_limit(page_size)
        params = {"limit": limit, "offset": (page - 1) * limit}
        data = await self._call("GET", CALLS_PATH, kind="poll", params=params)
        return self._core.parse(
            "GET", CALLS_PATH, lambda d: parse_list(d, page=page, limit=limit), data
        )

    async def find_calls(self, query: CallQuery, *, max_pages: int = 10) -> list[CallRecord]:
        """Pages newest first until calls older than ``query.earliest`` (or the end); the
        matching records oldest first."""

        async def page(n: int) -> CallPage:
            return await self.list_calls(page=n, page_size=LIMIT_MAX)

        return await find_newest_first(page, query, max_pages=max_pages)

    async def outcome(self, call_id: str) -> CallOutcome:
        """``GET /v1/calls/{id}``: status, duration, transcript, sentiment, URLs, summary."""
        if not isinstance(call_id, str) or not call_id:
            raise ValueError("call_id must be a non-empty string")
        path = f"{CALLS_PATH}/{quote(call_id, safe='')}"
        data = await self._call("GET", path, kind="poll")
        return self._core.parse("GET", path, lambda d: parse_call(d, call_id=call_id), data)

    def verify_event(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """Is ``body`` signed with ``secret`` (``X-Vaniagent-Signature``, HMAC-SHA256 hex)?"""
        return vaniagent_events.verify_event(headers, body, secret)

    def parse_event(self, body: bytes) -> PushedEvent:
        """The ``call.*`` event in a verified body (ProtocolError when it is not one)."""
        return vaniagent_events.parse_event(body)
