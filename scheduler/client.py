"""The async client of the Vaani External API: the only place that speaks HTTP to Vaani.

Wire-identical to the official ``vaani-sdk`` 0.3.1 for the five endpoints the scheduler needs
(health, trigger-call, call-history, call details, transcript), but unlike it the client keeps
the rate-limit headers and tells *not sent* (safe to resend) from *answer lost* (the call may
have been placed). Usage::

    async with VaaniClient(api_key, gate=limiter) as client:
        result = await client.trigger_call(agent_id="sales", contact_number="+14155550100",
                                           name="Ada", metadata={"order": "A-17"})
        page = await client.call_history(page=1, page_size=100)

Every HTTP attempt first waits for ``gate.acquire(kind)`` and then reports what it learned
with ``gate.observe(kind, status, rate)``. httpx errors are converted here, in
:func:`map_transport_error` and :func:`error_for_status`, into the tree of
:mod:`scheduler.errors`; retries are decided in :mod:`scheduler.retry`. The API key is sent in
the ``X-API-Key`` header only and is redacted from every message, log line and repr.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx

from scheduler.errors import (
    AmbiguousServerError,
    AnswerLostError,
    APIStatusError,
    AuthenticationError,
    ForbiddenError,
    InsufficientBalanceError,
    NotFoundError,
    NotSentError,
    ProtocolError,
    RateLimitedError,
    RateLimitInfo,
    ServerError,
    VaaniError,
    ValidationError,
)
from scheduler.retry import RetryPolicy, Sleep, build_retrying
from scheduler.wire import (
    CallDetails,
    CallRecord,
    HistoryPage,
    TriggerResult,
    WireError,
    clamp_page_size,
    decode_json,
    error_detail,
    parse_details,
    parse_history,
    parse_rate_info,
    parse_transcript,
    parse_trigger,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "CallDetails",
    "CallRecord",
    "HistoryPage",
    "RequestGate",
    "RetryPolicy",
    "TriggerResult",
    "VaaniClient",
    "error_for_status",
    "make_http_client",
    "map_transport_error",
]

DEFAULT_BASE_URL = "https://api.vaanivoice.ai"
TRIGGER_PATH = "/api/trigger-call/"
REDACTED = "***"
DEFAULT_RETRY = RetryPolicy()

log = logging.getLogger("scheduler.client")
T = TypeVar("T")


class RequestGate(Protocol):
    """The rate limiter's face towards the client (implemented in the scheduler)."""

    async def acquire(self, kind: str) -> None:
        """Wait for a slot; ``kind`` is "dispatch" (trigger-call, has priority) or "poll"."""
        ...

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        """After every HTTP attempt; ``status`` is None when no response arrived."""
        ...


def _redact(text: str, key: str) -> str:
    """``text`` with ``key`` (as is, or URL-quoted as in a path) replaced by ``***``."""
    for form in {key, quote(key, safe="")}:
        if form in text:
            text = text.replace(form, REDACTED)
    return text


class _KeyRedactor(logging.Filter):
    """Removes our API keys from httpx's own log lines (it logs each request's URL).

    Installed once on the ``httpx`` and ``httpcore`` loggers; a key could reach a URL only
    through a call id or base URL that contains it, but the invariant is "never in a log".
    """

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()
        self.installed = False

    def add(self, key: str) -> None:
        self.keys.add(key)
        if not self.installed:
            for name in ("httpx", "httpcore"):
                logging.getLogger(name).addFilter(self)
            self.installed = True

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = message
        for key in self.keys:
            clean = _redact(clean, key)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_LOG_REDACTOR = _KeyRedactor()


class _OpenGate:
    """The gate used when none is given: never waits, learns nothing."""

    async def acquire(self, kind: str) -> None:
        return None

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        return None


def make_http_client(
    base_url: str,
    *,
    timeout: float | httpx.Timeout = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 50,
) -> httpx.AsyncClient:
    """The one place an ``httpx.AsyncClient`` is built; tests pass a ``MockTransport``."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        limits=limits,
        transport=transport,
        follow_redirects=False,
        headers={"User-Agent": "vaani-campaigns", "Accept": "application/json"},
    )


# --------------------------------------------------------------------------- error mapping

_NOT_SENT = (
    httpx.ConnectError,  # also DNS failures ("Name or service not known")
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


def map_transport_error(
    exc: httpx.HTTPError,
    *,
    method: str,
    path: str,
    redact: Callable[[str], str] = str,
) -> VaaniError:
    """An httpx error without a response, as NotSentError or AnswerLostError.

    Only errors raised before a byte of the request could reach the server count as not
    sent; everything else (read/write timeout, reset, protocol error after sending, unknown)
    is conservatively an AnswerLostError: a trigger-call may have been placed.
    """
    reason = redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if isinstance(exc, _NOT_SENT):
        return NotSentError(f"request not sent ({reason})", method=method, path=path)
    return AnswerLostError(f"sent, but the answer was lost ({reason})", method=method, path=path)


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    402: InsufficientBalanceError,
    403: ForbiddenError,
    404: NotFoundError,
    429: RateLimitedError,
}


def error_for_status(
    status: int,
    *,
    method: str,
    path: str,
    detail: str | None,
    rate: RateLimitInfo,
    placing_call: bool,
) -> APIStatusError:
    """The exception for an error status; ``placing_call`` marks trigger-call (5xx ambiguous)."""
    cls: type[APIStatusError]
    if status >= 500:
        cls = AmbiguousServerError if placing_call else ServerError
    else:
        cls = _STATUS_ERRORS.get(status, ValidationError)
    message = f"HTTP {status}"
    if detail:
        message += f": {detail}"
    if cls is RateLimitedError and rate.retry_after_s is not None:
        message += f" (retry after {rate.retry_after_s:g} s)"
    if cls is AmbiguousServerError:
        message += " (the call may have been placed)"
    return cls(message, status_code=status, method=method, path=path, detail=detail, rate=rate)


# --------------------------------------------------------------------------- the client


class VaaniClient:
    """Async client of the Vaani API with typed errors, rate feedback and safe retries."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        gate: RequestGate | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 50,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Validate the configuration and build the connection pool (no request is made).

        ``timeout`` is per attempt (a float sets every phase; pass ``httpx.Timeout`` to set a
        short read timeout, for example). ``gate`` paces and observes every attempt (the
        scheduler's rate limiter); ``transport`` replaces the network (tests); ``sleep`` is
        how retry waits are slept (tests record them).
        """
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("the Vaani API key is empty: set --api-key or VAANI_API_KEY")
        if any(c.isspace() for c in api_key) or not api_key.isprintable():
            raise ValueError("the Vaani API key contains whitespace or control characters")
        base = base_url.strip().rstrip("/")
        if not base.startswith(("http://", "https://")):
            shown = _redact(base, api_key)
            raise ValueError(f"the Vaani base URL must start with http:// or https://: {shown!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self._api_key = api_key
        _LOG_REDACTOR.add(api_key)
        self.base_url = base
        self.retry = retry
        self.gate: RequestGate = gate if gate is not None else _OpenGate()
        self._sleep = sleep
        self._http = make_http_client(
            base, timeout=timeout, transport=transport, max_connections=max_connections
        )
        #: The rate-limit headers of the latest response (empty until one arrives).
        self.last_rate = RateLimitInfo()

    def __repr__(self) -> str:
        return f"VaaniClient(base_url={self._redact(self.base_url)!r}, api_key='{REDACTED}')"

    async def __aenter__(self) -> VaaniClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # ------------------------------------------------------------------ endpoints

    async def health(self) -> dict[str, Any]:
        """``GET /api/health``: ``{"status": "healthy", ...}``. Does not prove the key."""
        data = await self._call("GET", "/api/health", kind="poll")
        if not isinstance(data, dict):
            raise self._protocol("GET", "/api/health", "health answered something not an object")
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
        data = await self._call("POST", TRIGGER_PATH, kind="dispatch", json=body)
        return self._parse("POST", TRIGGER_PATH, parse_trigger, data)

    async def call_history(self, page: int = 1, page_size: int = 50) -> HistoryPage:
        """``GET /api/call-history``: one page, newest first (page 1-based, size 1..200)."""
        page = max(1, int(page))
        size = clamp_page_size(page_size)
        path = "/api/call-history"
        data = await self._call("GET", path, kind="poll", params={"page": page, "page_size": size})
        return self._parse("GET", path, lambda d: parse_history(d, page=page, page_size=size), data)

    async def call_details(self, call_id: str) -> CallDetails:
        """``GET /api/call_details/{call_id}``: outcome, summary, extracted entities."""
        path = f"/api/call_details/{self._segment(call_id)}"
        data = await self._call("GET", path, kind="poll")
        return self._parse("GET", path, lambda d: parse_details(d, call_id=call_id), data)

    async def transcript(self, call_id: str) -> Any:
        """``GET /api/transcript/{call_id}``: the transcript as the API sends it."""
        path = f"/api/transcript/{self._segment(call_id)}"
        return parse_transcript(await self._call("GET", path, kind="poll"))

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _segment(call_id: str) -> str:
        if not isinstance(call_id, str) or not call_id:
            raise ValueError("call_id must be a non-empty string")
        return quote(call_id, safe="")

    def _redact(self, text: str) -> str:
        return _redact(text, self._api_key)

    def _protocol(self, method: str, path: str, message: str) -> ProtocolError:
        return ProtocolError(self._redact(message), method=method, path=self._redact(path))

    def _parse(self, method: str, path: str, parser: Callable[[Any], T], data: Any) -> T:
        try:
            return parser(data)
        except WireError as exc:
            raise self._protocol(method, path, str(exc)) from None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> Any:
        """One logical request: attempts under the retry policy; returns the decoded JSON."""
        retrying = build_retrying(self.retry, idempotent=method == "GET", sleep=self._sleep)
        return await retrying(self._attempt, method, path, kind, params, json)

    async def _attempt(
        self,
        method: str,
        path: str,
        kind: str,
        params: dict[str, Any] | None,
        json: dict[str, Any] | None,
    ) -> Any:
        """One HTTP attempt, gated, logged, and mapped into our exception tree."""
        shown = self._redact(path)
        await self.gate.acquire(kind)
        started = time.perf_counter()
        try:
            response = await self._http.request(
                method, path, params=params, json=json, headers={"X-API-Key": self._api_key}
            )
        except asyncio.CancelledError:  # the gate still learns the attempt is over
            self.gate.observe(kind, None, RateLimitInfo())
            raise
        except httpx.HTTPError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            log.debug("%s %s -> %s in %.1f ms", method, shown, type(exc).__name__, elapsed)
            self.gate.observe(kind, None, RateLimitInfo())
            raise map_transport_error(exc, method=method, path=shown, redact=self._redact) from exc
        elapsed = (time.perf_counter() - started) * 1000
        status = response.status_code
        log.debug("%s %s -> %d in %.1f ms", method, shown, status, elapsed)
        rate = parse_rate_info(response.headers)
        self.last_rate = rate
        self.gate.observe(kind, status, rate)
        if status >= 400:
            detail = error_detail(response.content)
            raise error_for_status(
                status,
                method=method,
                path=shown,
                detail=self._redact(detail) if detail else None,
                rate=rate,
                placing_call=method == "POST",
            )
        if status >= 300:
            where = response.headers.get("location", "?")
            raise self._protocol(method, path, f"unexpected HTTP {status} redirect to {where}")
        try:
            return decode_json(response.content)
        except WireError as exc:
            raise self._protocol(method, path, f"HTTP {status}: {exc}") from None
