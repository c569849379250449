"""The console's bearer token and the headers every answer carries.

Every route but ``GET /api/health`` and the page itself (which holds no data) needs
``Authorization: Bearer <token>``; a browser's ``EventSource`` cannot set headers, so
``/api/events`` alone also takes ``?token=``. Tokens are compared with
:func:`hmac.compare_digest` (constant time) and never logged or echoed: a wrong token gets
the same 401 as a missing one, before any handler runs, so it changes nothing. Because every
state-changing request needs the header, which a cross-site form or image cannot send, there
is no CSRF to defend against.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) so that streamed answers (the report, the
events) pass through untouched.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PUBLIC_PATHS = frozenset({"/api/health"})
QUERY_TOKEN_PATHS = frozenset({"/api/events"})
#: The page loads its own script and style only; nothing inline, nothing from elsewhere.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _query_token(scope: Scope) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison; ``None`` never matches."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class SecurityMiddleware:
    """Adds :data:`SECURITY_HEADERS` to every answer and refuses ``/api/*`` requests without
    the token (when there is one) with 401."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        if not self._allowed(scope):
            await _unauthorized(send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _allowed(self, scope: Scope) -> bool:
        path: str = scope.get("path", "")
        if self.token is None or not path.startswith("/api/") or path in PUBLIC_PATHS:
            return True
        given = _bearer(scope)
        if given is None and path in QUERY_TOKEN_PATHS:
            given = _query_token(scope)
        return token_matches(given, self.token)


async def _unauthorized(send: Any) -> None:
    body = json.dumps({"error": "missing or wrong token: send Authorization: Bearer <token>"})
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b"Bearer"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
