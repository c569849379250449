"""The sandbox's front-ends: one per provider wire, all over the one simulated call engine.

A :class:`FrontEnd` says how one platform's API looks on the wire: where its API paths live,
how a request names its key, what an error body and the rate-limit headers look like, and the
Starlette routes that serve it. The ``Gate`` (statistics, auth, rate limit, faults) and the
engine (``SandboxState``: accounts, simulated calls, ground truth under ``/sandbox/*``) are
shared, so every front-end has the same faults, limits and ground truth.

``vaani-campaigns sandbox --provider NAME`` picks one; :data:`FRONTS` maps each name to the
module that defines its ``FRONT``, imported only when chosen.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from scheduler.sandbox.limits import Decision
    from scheduler.sandbox.state import SandboxState

Scope = dict[str, Any]
Header = tuple[bytes, bytes]


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of request header ``name`` (lower-case bytes), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def detail_error(status: int, code: str, message: str) -> dict[str, Any]:
    """Vaani's error body: ``{"detail": message}`` (``code`` is not on its wire)."""
    return {"detail": message}


def seconds_headers(decision: Decision) -> list[Header]:
    """``X-RateLimit-Limit/Remaining``, ``-Reset`` in seconds from now, and ``Retry-After``."""
    return decision.headers()


def retry_after(seconds: float) -> list[Header]:
    """The header of an injected 429: ``Retry-After`` in whole seconds."""
    return [(b"retry-after", str(max(1, math.ceil(seconds))).encode())]


def endpoint_after(prefix: str) -> Callable[[str], str]:
    """A statistics bucket namer: the first path segment after ``prefix``."""
    cut = len(prefix)

    def name(path: str) -> str:
        return path[cut:].split("/", 1)[0] or "other"

    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class FrontEnd:
    """One provider's wire over the shared engine."""

    name: str
    #: paths under this prefix are the API: counted, authenticated, rate-limited, faulted
    api_prefix: str
    #: API paths that need no key and are never limited or faulted (statistics bucket "health")
    health_paths: frozenset[str]
    #: the Starlette routes of this wire (the ``/sandbox/*`` ground truth is added for all)
    routes: Callable[[], Sequence[BaseRoute]]
    #: the API key a request presents (header, bearer token, cookie), or None
    credential: Callable[[Scope], str | None]
    #: the JSON body of an error in this wire's shape: (status, machine code, message)
    error_body: Callable[[int, str, str], dict[str, Any]]
    #: the rate-limit headers of every limited answer
    rate_headers: Callable[[Decision], list[Header]] = seconds_headers
    #: the headers of an injected 429 (on top of ``rate_headers``)
    retry_headers: Callable[[float], list[Header]] = retry_after
    #: a 429 body with the wait (seconds) added, for wires that say it in the body
    #: (Voisnap's ``retry_after``); None: the body is ``error_body``'s as it is
    retry_body: Callable[[dict[str, Any], float], dict[str, Any]] | None = None
    #: the statistics bucket of an API path
    endpoint_name: Callable[[str], str] | None = None
    #: started with the server and cancelled at shutdown (e.g. a webhook sender)
    background: Callable[[SandboxState], Coroutine[Any, Any, None]] | None = None

    def rate_limited(self, message: str, wait_s: float) -> dict[str, Any]:
        """The body of a 429 asking to wait ``wait_s`` seconds."""
        body = self.error_body(429, "rate_limit_exceeded", message)
        return self.retry_body(body, wait_s) if self.retry_body is not None else body

    def bucket(self, path: str) -> str:
        if path in self.health_paths:
            return "health"
        namer = self.endpoint_name or endpoint_after(self.api_prefix)
        return namer(path)


#: provider name -> module whose ``FRONT`` is that provider's front-end
FRONTS: dict[str, str] = {
    "vaani": "scheduler.sandbox.app",
    "voisnap": "scheduler.sandbox.front_voisnap",
    "vaniagent": "scheduler.sandbox.front_vaniagent",
    "vaani-ai": "scheduler.sandbox.front_vaani_ai",
}


def front_end(name: str) -> FrontEnd:
    """The front-end of provider ``name``; ValueError naming the known ones otherwise."""
    module = FRONTS.get(name)
    if module is None:
        known = ", ".join(sorted(FRONTS))
        raise ValueError(f"--provider: unknown provider {name!r}: expected one of {known}")
    front: FrontEnd = importlib.import_module(module).FRONT
    return front
