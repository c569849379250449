"""What can go wrong when we talk to a voice-AI provider's API, as one exception tree.

Library errors (``httpx.*``) are converted where they enter our code
(``scheduler.providers.http``); nothing above a provider ever sees them. The tree hangs under
the product's root, ``CampaignsError``::

    ProviderError (= VaaniError)    root: every failure of a provider request      exit 3
    ├── ProviderConfigError         the key or base URL is unusable (refused at start) exit 1
    ├── NotSentError                the request certainly never reached the server (DNS,
    │                               connect error, connect timeout, pool timeout): safe to resend
    ├── AnswerLostError             the request was (or may have been) sent, the answer never
    │                               came back (read/write timeout, reset after sending, 5xx on
    │                               a POST): for trigger-call, the call MAY have been placed
    ├── ProtocolError               the server answered something we cannot read
    └── APIStatusError              the server answered with an error status
        ├── AuthenticationError     401  bad or missing key: stop dispatching everywhere
        ├── InsufficientBalanceError 402 wallet empty: pause, burn no contact
        ├── ForbiddenError          403  agent not owned by this key: pause the campaign
        ├── NotFoundError           404
        ├── ValidationError         422 (and other 4xx): this request is wrong, not placed
        ├── RateLimitedError        429  not placed; carries retry_after (seconds)
        └── ServerError             5xx on a GET (on a POST it is an AnswerLostError)

``VaaniError`` is the historical name of the root and stays an alias of it.
``AccountError`` groups 401/402/403: the ones that pause dispatch rather than fail a contact.
No message, repr or attribute of these exceptions ever contains the API key.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.errors import CampaignsError


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitInfo:
    """What a response told us about the rate limit (all optional: servers differ)."""

    limit: int | None = None  # X-RateLimit-Limit
    remaining: int | None = None  # X-RateLimit-Remaining
    reset_s: float | None = None  # X-RateLimit-Reset, as seconds from now
    retry_after_s: float | None = None  # Retry-After, as seconds from now

    @property
    def empty(self) -> bool:
        return (
            self.limit is None
            and self.remaining is None
            and self.reset_s is None
            and self.retry_after_s is None
        )


class ProviderError(CampaignsError):
    """A request to a provider's API failed."""

    exit_code = 3
    #: HTTP status when the server answered, else None.
    status_code: int | None = None

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method else ""
        return f"{where}{self.message}"

    def user_message(self) -> str:
        """The line the command line prints for this error."""
        return f"the {self.provider_label} API: {self}"

    #: Who answered, for :meth:`user_message` (set by the provider that raised it).
    provider_label = "Vaani"


#: The historical name of the root: every ``except VaaniError`` keeps catching all of them.
VaaniError = ProviderError


class ProviderConfigError(ProviderError, ValueError):
    """The provider's configuration (API key, base URL, ...) is unusable; nothing was sent.

    Raised when a provider client is built, so that the daemon refuses to start rather than
    failing every request. A ``ValueError`` too, as configuration errors were before.
    """

    exit_code = 1

    def user_message(self) -> str:
        return self.message


class NotSentError(ProviderError):
    """The request never reached the server; resending it cannot duplicate anything.

    ``reason`` says why as a person would ("connection refused", "host name not found",
    "connect timeout"), when the transport error told us.
    """

    def __init__(
        self, message: str, *, method: str = "", path: str = "", reason: str | None = None
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.reason = reason


class AnswerLostError(ProviderError):
    """The request may have reached the server but its answer was lost.

    For trigger-call this means the call may have been placed: never resend blindly,
    reconcile against the call history first.
    """


class ProtocolError(ProviderError):
    """The server's answer could not be understood (not JSON, missing call_id, ...)."""


class APIStatusError(ProviderError):
    """The server answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        method: str = "",
        path: str = "",
        detail: str | None = None,
        rate: RateLimitInfo | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status_code = status_code
        self.detail = detail
        self.rate = rate or RateLimitInfo()


class AccountError(APIStatusError):
    """A problem with the account or key (401/402/403): pause dispatch, consume nothing."""


class AuthenticationError(AccountError):
    """401: the API key is missing or invalid."""


class InsufficientBalanceError(AccountError):
    """402: the wallet balance is too low to place calls."""


class ForbiddenError(AccountError):
    """403: the key may not do this (e.g. the agent belongs to another account)."""


class NotFoundError(APIStatusError):
    """404: no such agent or call."""


class ValidationError(APIStatusError):
    """422 or another 4xx: this request is wrong; the call was certainly not placed."""


class RateLimitedError(APIStatusError):
    """429: too many requests; certainly not placed. ``retry_after`` is in seconds."""

    @property
    def retry_after(self) -> float | None:
        return self.rate.retry_after_s


class ServerError(APIStatusError):
    """5xx on a request that is safe to repeat (a GET)."""


class AmbiguousServerError(ServerError, AnswerLostError):
    """5xx on trigger-call: the server may have placed the call before failing."""
