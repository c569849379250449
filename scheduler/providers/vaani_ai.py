"""vaani.ai behind the provider interface (``seeds/003``): outbound calls and call logs.

* place a call: ``POST /calls/outbound_call`` ``{agent_phone_number, phone_number_to_dial,
  dynamic_variables}``. vaani.ai knows an agent by its phone number, which is also the number
  the callee sees: it is the campaign's ``--caller-id``, mandatory for this provider (checked at
  ``campaign create``; a campaign without one is paused at dial time, nothing consumed). The
  campaign's ``--agent-id`` is ours only: it is not sent. ``dynamic_variables`` carry the
  contact's name as ``customer_name`` (the seed's example), the row's metadata, and our attempt
  reference (:data:`~scheduler.providers.vaani_ai_wire.CLIENT_REF_KEY`), which the call log
  echoes back: reconcile matches by it.
* read outcomes: ``GET /calls/logs?page&page_size&call_type=phone`` (newest first, an
  assumption the sandbox serves: the seed does not say the order), ``GET /calls/{id}``.
  ``find_calls`` also narrows the listing with ``start_date`` (the day before the oldest call
  needed, so a server reading the date in another time zone loses nothing).
  ``GET /calls/export-csv`` takes the same filters; polling does not need it.
* auth: "JWT cookie or API key". A key shaped like a JWT (three base64url parts, ``eyJ...``)
  goes in the documented ``Cookie: access_token=...``; any other key in ``X-API-Key`` (the seed
  does not name the API-key header: an assumption).
* errors: 400 "Invalid phone number format" is a ValidationError (that contact is invalid);
  404 "Agent not found" on outbound_call becomes a ForbiddenError naming the agent's number
  (the campaign pauses); 401 "Invalid or missing token" an AuthenticationError; 429 waits.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx

from scheduler.errors import ForbiddenError, NotFoundError, ProviderError
from scheduler.logs import REDACTED
from scheduler.providers.base import (
    CallOutcome,
    CallPage,
    CallQuery,
    CallRecord,
    Capabilities,
    DialRequest,
    Listing,
    PlacedCall,
)
from scheduler.providers.client import HttpProvider
from scheduler.providers.vaani_ai_wire import (
    CLIENT_REF_KEY,
    PAGE_SIZE_MAX,
    clamp_page_size,
    parse_logs,
    parse_outcome,
    parse_placed,
)
from scheduler.providers.vaani_wire import error_detail, parse_rate_info

NAME = "vaani-ai"
LABEL = "vaani.ai"
KEY_ENV = "VAANI_AI_API_KEY"
DEFAULT_BASE_URL = "https://api.vaani.ai"
PLACE_PATH = "/calls/outbound_call"
LOGS_PATH = "/calls/logs"
#: the seed's ``call_type`` filter values are "phone" and "web": outbound calls are phone calls
CALL_TYPE = "phone"
CAPABILITIES = Capabilities(
    pushes_events=False,
    idempotency_key=False,
    client_reference=True,
    listing=Listing.NEWEST_FIRST_PAGES,
    max_page_size=PAGE_SIZE_MAX,
    transcript_in_outcome=True,
)
_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


class VaaniAIAuth(httpx.Auth):
    """A JWT in the ``access_token`` cookie, any other key in ``X-API-Key``."""

    def __init__(self, api_key: str) -> None:
        self._key = api_key
        self.is_jwt = bool(_JWT.match(api_key))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign ``request`` (httpx calls this once per request)."""
        if self.is_jwt:
            request.headers["Cookie"] = f"access_token={self._key}"
        else:
            request.headers["X-API-Key"] = self._key
        yield request

    def __repr__(self) -> str:
        return f"VaaniAIAuth(api_key='{REDACTED}')"


class VaaniAIProvider(HttpProvider):
    """The vaani.ai API as a :class:`~scheduler.providers.base.CallProvider`."""

    name = NAME
    label = LABEL
    key_env = KEY_ENV
    default_base_url = DEFAULT_BASE_URL
    capabilities = CAPABILITIES
    parse_rate_info = parse_rate_info
    error_detail = error_detail

    def make_auth(self, api_key: str) -> httpx.Auth:
        return VaaniAIAuth(api_key)

    async def place_call(self, request: DialRequest) -> PlacedCall:
        """``POST /calls/outbound_call`` from the agent's number (the campaign's caller id)."""
        agent_number = request.caller_id
        if not agent_number:
            # refused before sending: the campaign pauses (ForbiddenError), no contact is used
            raise _labelled(
                ForbiddenError(
                    "vaani.ai places calls from the agent's phone number: set the campaign's "
                    "--caller-id to it",
                    status_code=400,
                    method="POST",
                    path=PLACE_PATH,
                )
            )
        variables: dict[str, Any] = {"customer_name": request.name, **request.metadata}
        if request.client_ref:
            variables[CLIENT_REF_KEY] = request.client_ref
        body: dict[str, Any] = {
            "agent_phone_number": agent_number,
            "phone_number_to_dial": request.phone_e164,
            "dynamic_variables": variables,
            **request.options,
        }
        try:
            data = await self._call("POST", PLACE_PATH, kind="dispatch", json=body)
        except NotFoundError as exc:  # "Agent not found": no agent has this number
            error = ForbiddenError(
                f"agent phone number {agent_number} is not registered with vaani.ai (404): "
                "check the campaign's --caller-id",
                status_code=404,
                method=exc.method,
                path=exc.path,
                detail=exc.detail,
                rate=exc.rate,
            )
            raise _labelled(error) from None
        call_id, raw = self._core.parse("POST", PLACE_PATH, parse_placed, data)
        return PlacedCall(call_id=call_id, raw=raw)

    async def call_logs(
        self, *, page: int = 1, page_size: int = 25, start_date: str | None = None
    ) -> CallPage:
        """``GET /calls/logs``: one page of phone calls, newest first."""
        page = max(1, int(page))
        size = clamp_page_size(page_size)
        params: dict[str, Any] = {"page": page, "page_size": size, "call_type": CALL_TYPE}
        if start_date:
            params["start_date"] = start_date
        data = await self._call("GET", LOGS_PATH, kind="poll", params=params)
        return self._core.parse(
            "GET", LOGS_PATH, lambda d: parse_logs(d, page=page, page_size=size), data
        )

    async def list_calls(self, *, page: int, page_size: int) -> CallPage:
        return await self.call_logs(page=page, page_size=page_size)

    async def find_calls(self, query: CallQuery, *, max_pages: int = 10) -> list[CallRecord]:
        """Logs since the day before ``query.earliest``, newest first until older ones;
        the matching ones oldest first."""
        since = (query.earliest - timedelta(days=1)).date().isoformat()
        found: list[CallRecord] = []
        for page_no in range(1, max_pages + 1):
            page = await self.call_logs(page=page_no, page_size=PAGE_SIZE_MAX, start_date=since)
            found += [r for r in page.records if query.matches(r)]
            older = any(
                r.created_at is not None and r.created_at < query.earliest for r in page.records
            )
            if older or page.is_last:
                break
        found.reverse()
        return found

    async def outcome(self, call_id: str) -> CallOutcome:
        """``GET /calls/{id}``: status, duration, summary, extracted data, transcript."""
        if not isinstance(call_id, str) or not call_id:
            raise ValueError("call_id must be a non-empty string")
        path = f"/calls/{quote(call_id, safe='')}"
        data = await self._call("GET", path, kind="poll")
        return self._core.parse("GET", path, lambda d: parse_outcome(d, call_id=call_id), data)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request through the core; its errors name vaani.ai in the CLI's line."""
        try:
            return await self._core.call(method, path, **kwargs)
        except ProviderError as exc:
            _labelled(exc)
            raise


def _labelled(exc: ProviderError) -> ProviderError:
    """``exc``, saying vaani.ai answered (``ProviderError.user_message``)."""
    exc.provider_label = LABEL
    return exc
