"""Voisnap behind the provider interface: an async client of the Voisnap REST API.

The seed (``seeds/002``) gives only the Python SDK's surface, so the REST paths are
ASSUMPTIONS that mirror the SDK's resources; check them against the real service and override
them (``VOISNAP_PATHS``, see :func:`parse_paths`) without a code change:

==============  =========================================  ===================================
SDK call        assumed request                            used for
==============  =========================================  ===================================
outbound_calls  ``POST /v1/outbound-calls``                placing a call (``create``)
  .create       ``{agent_id, to_number, metadata, max_retries: 0}``
outbound_calls  ``GET /v1/outbound-calls?page&page_size``  the listing polls and reconciling
  .list         (assumed newest first, pages of <= 100)    read
conversations   ``GET /v1/conversations/{id}``             a call's status and duration
  .get
conversations   ``GET /v1/conversations/{id}/analysis``    summary, intent, sentiment,
  .analysis                                                extracted data
conversations   ``GET /v1/conversations/{id}/transcript``  :meth:`VoisnapProvider.transcript`
  .transcript                                              only (not part of an outcome)
==============  =========================================  ===================================

Auth: the API key (``vsnp_live_...``, ``vsnp_sb_...``) or a JWT access token, sent as
``Authorization: Bearer ...`` (the seed does not name the header: an assumption). We send
``max_retries: 0`` because our scheduler owns re-dials, and our client reference in
``metadata`` (the listing echoes it: reconciling matches by it). A finished call's outcome
costs one request (the conversation) for a call that did not connect, and two (conversation,
analysis) for one that did, unless the conversation embeds its analysis. Wire rules are in
:mod:`scheduler.providers.voisnap_wire`; requests go through
:class:`~scheduler.providers.http.HttpCore` (gate, retries, error mapping, key redaction).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import quote

import httpx

from scheduler.errors import ProviderConfigError
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
from scheduler.providers.client import BearerAuth, HttpProvider
from scheduler.providers.http import RequestGate
from scheduler.providers.voisnap_wire import (
    PAGE_SIZE_MAX,
    PAGE_SIZE_MIN,
    create_body,
    error_detail,
    error_rate,
    parse_analysis,
    parse_conversation,
    parse_created,
    parse_page,
    parse_rate_info,
    parse_transcript,
)
from scheduler.retry import RetryPolicy, Sleep

NAME = "voisnap"
LABEL = "Voisnap"
DEFAULT_BASE_URL = "https://api.voisnap.ai"
KEY_ENV = "VOISNAP_API_KEY"
PATHS_ENV = "VOISNAP_PATHS"
CAPABILITIES = Capabilities(
    pushes_events=False,
    idempotency_key=False,
    client_reference=True,
    listing=Listing.NEWEST_FIRST_PAGES,
    max_page_size=PAGE_SIZE_MAX,
    transcript_in_outcome=False,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class VoisnapPaths:
    """Where each resource is (``{id}`` is a conversation id); see the module docstring."""

    calls: str = "/v1/outbound-calls"
    conversation: str = "/v1/conversations/{id}"
    analysis: str = "/v1/conversations/{id}/analysis"
    transcript: str = "/v1/conversations/{id}/transcript"

    def __post_init__(self) -> None:
        for f in fields(self):
            path = getattr(self, f.name)
            templated = f.name != "calls"
            if not isinstance(path, str) or not path.startswith("/") or " " in path:
                raise ProviderConfigError(
                    f"{PATHS_ENV}: the {f.name} path must start with '/', got {path!r}"
                )
            if templated and path.count("{id}") != 1:
                raise ProviderConfigError(
                    f"{PATHS_ENV}: the {f.name} path must hold '{{id}}' once, got {path!r}"
                )

    def of(self, name: str, call_id: str) -> str:
        """The path ``name`` for conversation ``call_id`` (escaped as one segment)."""
        if not isinstance(call_id, str) or not call_id:
            raise ValueError("call_id must be a non-empty string")
        template: str = getattr(self, name)
        return template.replace("{id}", quote(call_id, safe=""))


def parse_paths(text: str | None) -> VoisnapPaths:
    """``"calls=/v2/calls,conversation=/v2/conversations/{id}"``: the defaults, with the named
    paths replaced; ProviderConfigError (one line, naming the variable) for a bad entry."""
    if not text or not text.strip():
        return VoisnapPaths()
    names = {f.name for f in fields(VoisnapPaths)}
    given: dict[str, str] = {}
    for item in text.split(","):
        name, sep, path = item.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise ProviderConfigError(
                f"{PATHS_ENV}: {item.strip()!r} is not NAME=/path with NAME one of "
                + ", ".join(sorted(names))
            )
        given[name] = path.strip()
    return replace(VoisnapPaths(), **given)


class VoisnapProvider(HttpProvider):
    """The Voisnap API as a :class:`~scheduler.providers.base.CallProvider`."""

    name = NAME
    label = LABEL
    key_env = KEY_ENV
    default_base_url = DEFAULT_BASE_URL
    capabilities = CAPABILITIES
    parse_rate_info = parse_rate_info
    error_detail = error_detail
    error_rate = error_rate

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        paths: VoisnapPaths | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        gate: RequestGate | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 50,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """The settings of :class:`~scheduler.providers.client.HttpProvider`; ``api_key`` is
        an API key or a JWT access token; ``paths`` default to the assumed ones."""
        self.paths = paths or VoisnapPaths()
        super().__init__(
            api_key,
            base_url,
            timeout=timeout,
            retry=retry,
            gate=gate,
            transport=transport,
            max_connections=max_connections,
            sleep=sleep,
        )

    def make_auth(self, api_key: str) -> httpx.Auth:
        return BearerAuth(api_key)

    async def place_call(self, request: DialRequest) -> PlacedCall:
        """``outbound_calls.create``; never resent unless certainly not sent. ``caller_id``
        and ``voice`` have no field in the create call (the agent has them) and are not sent."""
        body = create_body(
            agent_id=request.agent_id,
            to_number=request.phone_e164,
            name=request.name,
            metadata=request.metadata,
            client_ref=request.client_ref,
            options=request.options,
        )
        path = self.paths.calls
        data = await self._core.call("POST", path, kind="dispatch", json=body)
        call_id, raw = self._core.parse("POST", path, parse_created, data)
        return PlacedCall(call_id=call_id, raw=raw)

    async def list_calls(self, *, page: int, page_size: int) -> CallPage:
        """One page of ``outbound_calls.list``, newest first (page 1-based, size 1..100)."""
        page = max(1, int(page))
        size = max(PAGE_SIZE_MIN, min(PAGE_SIZE_MAX, int(page_size)))
        path = self.paths.calls
        params = {"page": page, "page_size": size}
        data = await self._core.call("GET", path, kind="poll", params=params)
        return self._core.parse(
            "GET", path, lambda d: parse_page(d, page=page, page_size=size), data
        )

    async def find_calls(self, query: CallQuery, *, max_pages: int = 10) -> list[CallRecord]:
        """Pages the listing newest first until calls older than ``query.earliest`` (or its
        end); the matching records oldest first (by client reference when it has one)."""
        found: list[CallRecord] = []
        for page_no in range(1, max_pages + 1):
            page = await self.list_calls(page=page_no, page_size=PAGE_SIZE_MAX)
            found += [r for r in page.records if query.matches(r)]
            older = any(
                r.created_at is not None and r.created_at < query.earliest for r in page.records
            )
            if older or page.is_last:
                break
        found.reverse()
        return found

    async def outcome(self, call_id: str) -> CallOutcome:
        """The conversation, and its analysis only when it connected and does not embed it."""
        path = self.paths.of("conversation", call_id)
        data = await self._core.call("GET", path, kind="poll")
        conv = self._core.parse("GET", path, lambda d: parse_conversation(d, call_id=call_id), data)
        if not conv.needs_analysis:
            return conv.to_outcome()
        path = self.paths.of("analysis", call_id)
        data = await self._core.call("GET", path, kind="poll")
        return conv.to_outcome(self._core.parse("GET", path, parse_analysis, data))

    async def transcript(self, call_id: str) -> list[Any]:
        """``conversations.transcript``: the turns."""
        path = self.paths.of("transcript", call_id)
        return parse_transcript(await self._core.call("GET", path, kind="poll"))


def build(api_key: str, base_url: str = DEFAULT_BASE_URL, **options: Any) -> VoisnapProvider:
    """The registry's builder: :class:`VoisnapProvider` with the paths of ``VOISNAP_PATHS``."""
    return VoisnapProvider(
        api_key, base_url, paths=parse_paths(os.environ.get(PATHS_ENV)), **options
    )
