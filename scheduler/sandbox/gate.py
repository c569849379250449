"""The sandbox's front door: a plain ASGI layer around the routes that does, in this order,
statistics, auth (401), per-key rate limiting (429 + headers) and fault injection.

What differs between provider wires (where the API lives, how a key is presented, the shape of
an error body and of the rate-limit headers) comes from the :class:`FrontEnd`; the rest is
shared, so every front-end has the same faults, limits and statistics.

It is pure ASGI rather than a Starlette ``BaseHTTPMiddleware`` because it runs on every request
and must stay cheap, and because faults need the raw ``send`` (to hold back or drop a response).
A front-end's health paths need no key and are never limited or faulted; ``/sandbox/*`` (the
ground truth) passes straight through and is not counted, so the statistics describe API
traffic only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from scheduler.sandbox import faults
from scheduler.sandbox.fronts import FrontEnd
from scheduler.sandbox.limits import Decision
from scheduler.sandbox.state import SandboxState

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Any

_JSON = (b"content-type", b"application/json")


async def send_json(
    send: Any,
    status: int,
    body: dict[str, Any],
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", str(len(data)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": data})


class Gate:
    """ASGI wrapper: counts, authenticates, rate-limits and injects faults."""

    def __init__(self, app: ASGIApp, state: SandboxState, front: FrontEnd) -> None:
        self.app = app
        self.state = state
        self.front = front

    def _error(self, status: int, code: str, message: str) -> dict[str, Any]:
        return self.front.error_body(status, code, message)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.front.api_prefix):
            # the ground truth (/sandbox/*) is not part of the API: not counted, never faulted
            await self.app(scope, receive, send)
            return
        stats = self.state.stats
        path = scope["path"]
        endpoint = self.front.bucket(path)
        stats.requests[endpoint] += 1
        stats.concurrent += 1
        stats.max_concurrent = max(stats.max_concurrent, stats.concurrent)
        outcome: list[str] = []

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome.append(str(message["status"]))
            await send(message)

        try:
            if endpoint != "health":
                await self._api(scope, receive, counted, send, outcome)
            else:
                await self.app(scope, receive, counted)
        finally:
            stats.concurrent -= 1
            if outcome:
                stats.responses_by_status[outcome[0]] += 1

    async def _api(
        self, scope: Scope, receive: Any, send: Any, raw_send: Any, outcome: list[str]
    ) -> None:
        state = self.state
        account = state.account(self.front.credential(scope))
        if account is None:
            body = self._error(401, "invalid_api_key", "Invalid or missing API key")
            await send_json(send, 401, body)
            return
        limiter = state.limiter
        decision: Decision | None = limiter.check(account.fingerprint) if limiter else None
        headers = (
            self.front.rate_headers(decision) if decision and state.config.rate_headers else []
        )
        if limiter is not None and decision is not None and not decision.allowed:
            state.stats.rate_limited += 1
            detail = f"Rate limit exceeded ({limiter.rate} per API key)"
            body = self.front.rate_limited(detail, decision.retry_after_s)
            await send_json(send, 429, body, headers)
            return
        scope["sandbox.account"] = account
        fault = (
            faults.roll(state.config.faults, state.fault_rng) if state.config.faults.any else None
        )
        if fault is not None:
            state.stats.faults[fault] += 1
        if fault == "429":
            state.stats.rate_limited += 1
            extra = self.front.retry_headers(1.0) if state.config.rate_headers else []
            body = self.front.rate_limited("Rate limit exceeded (injected)", 1.0)
            await send_json(send, 429, body, headers + extra)
            return
        if fault == "5xx":
            status = 503 if state.fault_rng.random() < 0.5 else 500
            body = self._error(status, "server_error", "Internal server error (injected)")
            await send_json(send, status, body, headers)
            return

        async def with_headers(message: Message) -> None:
            if headers and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        if fault is None:
            await self.app(scope, receive, with_headers)
            return
        held = faults.HeldResponse()
        await self.app(scope, receive, held)
        call = scope.get("sandbox.call")
        if fault == "slow":
            if call is not None:
                call.response = "slow"
            await asyncio.sleep(state.config.slow_seconds)
            await held.replay(with_headers)
            return
        # lost: the work is done; the answer never reaches the client
        if state.fault_rng.random() < 0.5:
            if call is not None:
                call.response = "lost-drop"
            outcome.append("dropped")
            if not await faults.drop_connection(raw_send):
                await faults.truncated_response(raw_send)
            return
        if call is not None:
            call.response = "lost-502"
        await send_json(send, 502, self._error(502, "bad_gateway", "Bad gateway (injected)"))
