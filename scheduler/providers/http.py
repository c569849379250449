"""The HTTP core every provider client is built on: one request, gated, retried, mapped.

A provider supplies what differs (its ``httpx.Auth``, its rate-limit header parser, its error
body reader, its label); :class:`HttpCore` does the rest the same way for all of them. Every
HTTP attempt first waits for ``gate.acquire(kind)`` and then reports what it learned with
``gate.observe(kind, status, rate)``. httpx errors are converted here, in
:func:`map_transport_error` and :func:`error_for_status`, into the tree of
:mod:`scheduler.errors`; retries are decided in :mod:`scheduler.retry`. The API key is redacted
from every message and log line (:mod:`scheduler.logs` holds the one redaction filter), and
logged lines go to ``vaani.client``, under the namespace ``--log-json`` configures.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

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
    ProviderError,
    RateLimitedError,
    RateLimitInfo,
    ServerError,
    ValidationError,
)
from scheduler.logs import redact, redact_secret
from scheduler.providers.config import ProviderConfig
from scheduler.providers.wire_common import WireError, decode_json
from scheduler.retry import RetryPolicy, Sleep, build_retrying

log = logging.getLogger("vaani.client")
T = TypeVar("T")


class RequestGate(Protocol):
    """The rate limiter's face towards the client (implemented in the scheduler)."""

    async def acquire(self, kind: str) -> None:
        """Wait for a slot; ``kind`` is "dispatch" (place a call, has priority) or "poll"."""
        ...

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        """After every HTTP attempt; ``status`` is None when no response arrived."""
        ...


class OpenGate:
    """The gate used when none is given: never waits, learns nothing."""

    async def acquire(self, kind: str) -> None:
        """Return at once."""
        return None

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        """Ignore what happened."""
        return None


def make_http_client(
    base_url: str,
    *,
    timeout: float | httpx.Timeout = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 50,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """The one place an ``httpx.AsyncClient`` is built; tests pass a ``MockTransport``."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(
        base_url=base_url,
        auth=auth,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        limits=limits,
        transport=transport,
        follow_redirects=False,
        headers={"User-Agent": "vaani-campaigns", "Accept": "application/json"},
    )


_NOT_SENT = (
    httpx.ConnectError,  # also DNS failures ("Name or service not known")
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


def not_sent_reason(exc: BaseException) -> str | None:
    """Why a connection could not be made, from the OS error under an httpx error (httpx
    wraps it in "All connection attempts failed"), or None when none says."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, httpx.ConnectTimeout | httpx.PoolTimeout | TimeoutError):
            return "connect timeout"
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
        if isinstance(err, socket.gaierror):
            return "host name not found"
        if isinstance(err, OSError) and err.errno is not None and err.strerror:
            return err.strerror[:1].lower() + err.strerror[1:]
        todo += [err.__cause__, err.__context__]
    return None


def map_transport_error(
    exc: httpx.HTTPError,
    *,
    method: str,
    path: str,
    redact: Callable[[str], str] = str,
) -> ProviderError:
    """An httpx error without a response, as NotSentError or AnswerLostError.

    Only errors raised before a byte of the request could reach the server count as not
    sent; everything else (read/write timeout, reset, protocol error after sending, unknown)
    is conservatively an AnswerLostError: a call may have been placed.
    """
    reason = redact(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if isinstance(exc, _NOT_SENT):
        return NotSentError(
            f"request not sent ({reason})",
            method=method,
            path=path,
            reason=not_sent_reason(exc),
        )
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
    """The exception for an error status; ``placing_call`` marks a place-call (5xx ambiguous)."""
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


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def served_range(status: int, headers: Mapping[str, str]) -> tuple[int, int | None]:
    """Where a streamed body starts and the whole resource's size (None: not said), from a
    200 (``Content-Length``) or a 206 (``Content-Range: bytes N-M/T``). ValueError for a 206
    whose Content-Range cannot be read: its bytes could not be placed."""
    if status != 206:
        length = headers.get("content-length", "")
        return 0, int(length) if length.isdigit() else None
    m = _CONTENT_RANGE.fullmatch(headers.get("content-range", "").strip())
    if m is None:
        raise ValueError(f"206 with an unreadable Content-Range {headers.get('content-range')!r}")
    return int(m.group(1)), None if m.group(3) == "*" else int(m.group(3))


class HttpCore:
    """One provider's connection pool and request loop (see the module docstring)."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        auth: httpx.Auth,
        rate_info: Callable[[httpx.Headers], RateLimitInfo],
        error_detail: Callable[[bytes], str | None],
        error_rate: Callable[[RateLimitInfo, bytes], RateLimitInfo] | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy,
        gate: RequestGate | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 50,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Build the pool (no request is made); ``config`` is already validated.

        ``error_rate`` completes the rate-limit information of an error answer from its body,
        for wires that say how long to wait there (Voisnap's 429 ``retry_after``).
        """
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self._key = config.api_key
        redact_secret(config.api_key)
        self.base_url = config.base_url
        self.retry = retry
        self.gate: RequestGate = gate if gate is not None else OpenGate()
        self._rate_info = rate_info
        self._error_detail = error_detail
        self._error_rate = error_rate
        self._sleep = sleep
        self._http = make_http_client(
            config.base_url,
            timeout=timeout,
            transport=transport,
            max_connections=max_connections,
            auth=auth,
        )
        #: The rate-limit headers of the latest response (empty until one arrives).
        self.last_rate = RateLimitInfo()

    def redact(self, text: str) -> str:
        """``text`` without the key."""
        return redact(text, self._key)

    def protocol(self, method: str, path: str, message: str) -> ProtocolError:
        """A ProtocolError for this request, redacted."""
        return ProtocolError(self.redact(message), method=method, path=self.redact(path))

    def parse(self, method: str, path: str, parser: Callable[[Any], T], data: Any) -> T:
        """``parser(data)``, its WireError raised as a ProtocolError of this request."""
        try:
            return parser(data)
        except WireError as exc:
            raise self.protocol(method, path, str(exc)) from None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> Any:
        """One logical request: attempts under the retry policy; returns the decoded JSON.

        A POST is taken to place a call: never resent unless certainly not placed, and a
        5xx answer to it is ambiguous.
        """
        retrying = build_retrying(self.retry, idempotent=method == "GET", sleep=self._sleep)
        return await retrying(self._attempt, method, path, kind, params, json)

    @asynccontextmanager
    async def stream(
        self, path: str, *, kind: str, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """A GET whose body is read as it arrives (a call recording), with the same gate,
        retries and error mapping as :meth:`call` until the response head is in; read its
        body with :meth:`chunks` inside the block."""
        retrying = build_retrying(self.retry, idempotent=True, sleep=self._sleep)
        response: httpx.Response = await retrying(self._open_stream, path, kind, headers)
        try:
            yield response
        finally:
            await response.aclose()

    async def chunks(self, response: httpx.Response, path: str) -> AsyncIterator[bytes]:
        """The body of a :meth:`stream` response; a connection lost midway is an
        :class:`AnswerLostError` (redacted), like any answer that never fully came."""
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            shown = self.redact(path)
            raise map_transport_error(exc, method="GET", path=shown, redact=self.redact) from exc

    async def _open_stream(
        self, path: str, kind: str, headers: Mapping[str, str] | None
    ) -> httpx.Response:
        """One attempt of :meth:`stream`: the response head, the body still unread."""
        shown = self.redact(path)
        await self.gate.acquire(kind)
        try:
            request = self._http.build_request("GET", path, headers=headers)
            response = await self._http.send(request, stream=True)
        except asyncio.CancelledError:
            self.gate.observe(kind, None, RateLimitInfo())
            raise
        except httpx.HTTPError as exc:
            self.gate.observe(kind, None, RateLimitInfo())
            raise map_transport_error(exc, method="GET", path=shown, redact=self.redact) from exc
        status = response.status_code
        log.debug("GET %s -> %d (streamed)", shown, status)
        rate = self._rate_info(response.headers)
        if status < 300:
            self.last_rate = rate
            self.gate.observe(kind, status, rate)
            return response
        try:
            content = await response.aread()
        except httpx.HTTPError:
            content = b""
        finally:
            await response.aclose()
        if status >= 400 and self._error_rate is not None:
            rate = self._error_rate(rate, content)
        self.last_rate = rate
        self.gate.observe(kind, status, rate)
        if status >= 400:
            detail = self._error_detail(content)
            raise error_for_status(
                status,
                method="GET",
                path=shown,
                detail=self.redact(detail) if detail else None,
                rate=rate,
                placing_call=False,
            )
        where = response.headers.get("location", "?")
        raise self.protocol("GET", path, f"unexpected HTTP {status} redirect to {where}")

    async def _attempt(
        self,
        method: str,
        path: str,
        kind: str,
        params: Mapping[str, Any] | None,
        json: Mapping[str, Any] | None,
    ) -> Any:
        """One HTTP attempt, gated, logged, and mapped into our exception tree."""
        shown = self.redact(path)
        await self.gate.acquire(kind)
        started = time.perf_counter()
        try:
            response = await self._http.request(method, path, params=params, json=json)
        except asyncio.CancelledError:  # the gate still learns the attempt is over
            self.gate.observe(kind, None, RateLimitInfo())
            raise
        except httpx.HTTPError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            log.debug("%s %s -> %s in %.1f ms", method, shown, type(exc).__name__, elapsed)
            self.gate.observe(kind, None, RateLimitInfo())
            raise map_transport_error(exc, method=method, path=shown, redact=self.redact) from exc
        elapsed = (time.perf_counter() - started) * 1000
        status = response.status_code
        log.debug("%s %s -> %d in %.1f ms", method, shown, status, elapsed)
        rate = self._rate_info(response.headers)
        if status >= 400 and self._error_rate is not None:
            rate = self._error_rate(rate, response.content)
        self.last_rate = rate
        self.gate.observe(kind, status, rate)
        if status >= 400:
            detail = self._error_detail(response.content)
            raise error_for_status(
                status,
                method=method,
                path=shown,
                detail=self.redact(detail) if detail else None,
                rate=rate,
                placing_call=method == "POST",
            )
        if status >= 300:
            where = response.headers.get("location", "?")
            raise self.protocol(method, path, f"unexpected HTTP {status} redirect to {where}")
        try:
            return decode_json(response.content)
        except WireError as exc:
            raise self.protocol(method, path, f"HTTP {status}: {exc}") from None
