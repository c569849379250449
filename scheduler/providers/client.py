"""What every HTTP provider client shares, written once: its settings checked at construction,
the :class:`~scheduler.providers.http.HttpCore` (pool, gate, retries, error mapping), the
``auth``/``last_rate``/``rate_info`` part of :class:`~scheduler.providers.base.CallProvider`,
a repr without the key, and closing.

A provider subclasses :class:`HttpProvider`, names itself (``name``, ``label``, ``key_env``,
``capabilities``), says how its requests are signed (:meth:`HttpProvider.make_auth`) and how its
rate-limit headers and error bodies read, and implements the calls of its own wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Mapping
from types import TracebackType
from typing import ClassVar, Self

import httpx

from scheduler.errors import RateLimitInfo
from scheduler.logs import REDACTED
from scheduler.providers.base import Capabilities
from scheduler.providers.config import ProviderConfig
from scheduler.providers.http import HttpCore, RequestGate
from scheduler.retry import RetryPolicy, Sleep


class HeaderAuth(httpx.Auth):
    """The key in one request header (``template`` formats it), and never in a repr."""

    def __init__(self, header: str, api_key: str, template: str = "{}") -> None:
        self._header = header
        self._value = template.format(api_key)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign ``request`` (httpx calls this once per request)."""
        request.headers[self._header] = self._value
        yield request

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_key='{REDACTED}')"


class BearerAuth(HeaderAuth):
    """``Authorization: Bearer <key>`` (VaniAgent; Voisnap with an API key or a JWT)."""

    def __init__(self, api_key: str) -> None:
        super().__init__("Authorization", api_key, "Bearer {}")


class HttpProvider:
    """The base of the HTTP provider clients (see the module docstring)."""

    #: the registry name (``"vaani"``), stored on campaigns
    name: ClassVar[str]
    #: the provider as people name it, for messages (``"Vaani"``)
    label: ClassVar[str]
    #: where the key comes from, for messages (``"VAANI_API_KEY"``)
    key_env: ClassVar[str]
    #: where the real service is
    default_base_url: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: the rate-limit information in a response's headers
    parse_rate_info: ClassVar[Callable[[Mapping[str, str]], RateLimitInfo]]
    #: the message of an error body (never the key: HttpCore redacts it)
    error_detail: ClassVar[Callable[[bytes], str | None]]
    #: completes an error answer's rate-limit information from its body (None: headers only)
    error_rate: ClassVar[Callable[[RateLimitInfo, bytes], RateLimitInfo] | None] = None

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        gate: RequestGate | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 50,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Validate the configuration and build the connection pool (no request is made).
        Raises :class:`~scheduler.errors.ProviderConfigError` (a ``ValueError``) for a key
        no request could carry or a base URL that is not http(s). ``timeout`` is per attempt
        (a float sets every phase; pass ``httpx.Timeout`` to set a short read timeout, for
        example). ``gate`` paces and observes every attempt (the scheduler's rate limiter);
        ``transport`` replaces the network (tests); ``sleep`` is how retry waits are slept.
        """
        config = ProviderConfig(
            provider=self.name,
            api_key=api_key,
            base_url=base_url or self.default_base_url,
            label=self.label,
            key_env=self.key_env,
        )
        self._auth = self.make_auth(config.api_key)
        cls = type(self)
        self._core = HttpCore(
            config,
            auth=self._auth,
            rate_info=cls.parse_rate_info,
            error_detail=cls.error_detail,
            error_rate=cls.error_rate,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            gate=gate,
            transport=transport,
            max_connections=max_connections,
            sleep=sleep,
        )
        self.base_url = config.base_url

    def make_auth(self, api_key: str) -> httpx.Auth:
        """How this provider's requests carry the key."""
        raise NotImplementedError

    @property
    def auth(self) -> httpx.Auth:
        """The request signer (it holds the key; never logged)."""
        return self._auth

    @property
    def gate(self) -> RequestGate:
        """What paces every attempt."""
        return self._core.gate

    @property
    def retry(self) -> RetryPolicy:
        """The per-request retry policy."""
        return self._core.retry

    @property
    def last_rate(self) -> RateLimitInfo:
        """The rate-limit headers of the latest response (empty until one arrives)."""
        return self._core.last_rate

    def rate_info(self, headers: Mapping[str, str]) -> RateLimitInfo:
        """What this provider's rate-limit headers in ``headers`` say."""
        return type(self).parse_rate_info(headers)

    def __repr__(self) -> str:
        url = self._core.redact(self.base_url)
        return f"{type(self).__name__}(base_url={url!r}, api_key='{REDACTED}')"

    async def __aenter__(self) -> Self:
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
        await self._core.aclose()
