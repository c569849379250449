"""Is the provider's API reachable? One loud, bounded warning while it is not.

A request that never left this machine (connection refused, DNS failure, connect timeout:
:class:`~scheduler.errors.NotSentError`) is reported with :meth:`Reachability.not_sent`;
any request that made a connection (whatever its answer) with :meth:`Reachability.reached`.
From the first never-sent request, the warning ``cannot reach URL: connection refused`` is
logged at once and then at most every ``warn_every`` seconds while nothing gets through, and
``API reachable again`` once something does. :meth:`Reachability.down_for` is how long
nothing but never-sent requests were seen: ``run --until-done`` gives up (exit 3) when it
passes ``DaemonSettings.unreachable_exit_after``.

The URL shown is the base URL without user info, query or fragment; the reason comes from a
message the HTTP core already redacted, and the ``vaani`` log handler redacts the key again
(:mod:`scheduler.logs`): the API key never appears.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from scheduler.errors import NotSentError, RateLimitInfo
from scheduler.providers.http import RequestGate

log = logging.getLogger("vaani.daemon")

def display_url(url: str) -> str:
    """``url`` as it may be shown: scheme, host, port and path only (no user info)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the API"
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if not parts.scheme or not host:
        return "the API"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def not_sent_reason(exc: NotSentError) -> str:
    """A short reason for a never-sent request ("connection refused"), else its message."""
    return exc.reason or exc.message


class Reachability:
    """Tracks whether requests get through; logs the warning and the recovery (one per daemon)."""

    def __init__(
        self,
        url: str,
        *,
        warn_every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = display_url(url) if "://" in url else url
        self.warn_every = warn_every
        self._clock = clock
        self._down_since: float | None = None
        self._warned_at: float | None = None
        #: The last warning logged (None while reachable), for the exit message.
        self.last_warning: str | None = None

    def not_sent(self, exc: NotSentError) -> None:
        """A request never left: warn now, or again once ``warn_every`` has passed."""
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        if self._warned_at is None or now - self._warned_at >= self.warn_every:
            self._warned_at = now
            msg = f"cannot reach {self.url}: {not_sent_reason(exc)}"
            self.last_warning = msg
            log.warning(msg, extra={"event": "api_unreachable", "url": self.url})

    def reached(self) -> None:
        """A request made a connection: the API is reachable (say so if it was not)."""
        if self._down_since is not None and self._warned_at is not None:
            log.warning(
                "API reachable again: %s",
                self.url,
                extra={"event": "api_reachable", "url": self.url},
            )
        self._down_since = None
        self._warned_at = None
        self.last_warning = None

    def down_for(self) -> float:
        """Seconds since the first never-sent request with none getting through since; 0.0
        while the API is reachable."""
        if self._down_since is None:
            return 0.0
        return self._clock() - self._down_since


class ReachabilityGate:
    """A :class:`~scheduler.providers.http.RequestGate` that also tells ``reach`` whenever a
    response arrived (any status: the API was reached), then defers to ``gate``."""

    def __init__(self, gate: RequestGate, reach: Reachability) -> None:
        self._gate = gate
        self._reach = reach

    async def acquire(self, kind: str) -> None:
        """Wait for the wrapped gate's slot."""
        await self._gate.acquire(kind)

    def observe(self, kind: str, status: int | None, rate: RateLimitInfo) -> None:
        """Pass the attempt on; a status means a response, so the API is reachable."""
        self._gate.observe(kind, status, rate)
        if status is not None:
            self._reach.reached()
