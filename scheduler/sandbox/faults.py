"""Fault injection: which fault (if any) hits a request, and how a "lost" answer is lost.

One uniform draw per API request (from an RNG seeded with ``--seed``) picks at most one fault:

* ``429``: refused as rate limited (``Retry-After: 1``), nothing done;
* ``5xx``: refused with a 500 or 503, nothing done (a POST is NOT placed);
* ``lost``: the request IS processed (a trigger-call places and records the call), then the
  client gets either a dropped connection (no response bytes at all) or a 502, half and half;
* ``slow``: processed normally, the response held back ``--slow-seconds``.

Apart from those, one draw per placed call (its own RNG): ``call_failed`` ends the call
``failed`` whatever its drawn outcome (``scheduler.sandbox.state``), as a broken carrier or
agent would; the ``sandbox_outcome`` metadata hook still forces its status.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from scheduler.sandbox.config import FaultRates

ASGISend = Any


def roll(rates: FaultRates, rng: random.Random) -> str | None:
    """The fault for one request, or None."""
    u = rng.random()
    for kind, p in (
        ("429", rates.rate_429),
        ("5xx", rates.rate_5xx),
        ("lost", rates.lost),
        ("slow", rates.slow),
    ):
        if u < p:
            return kind
        u -= p
    return None


class HeldResponse:
    """An ASGI ``send`` that keeps the response instead of sending it (for lost/slow)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int | None:
        for m in self.messages:
            if m["type"] == "http.response.start":
                return int(m["status"])
        return None

    async def replay(self, send: ASGISend) -> None:
        for m in self.messages:
            await send(m)


async def drop_connection(send: ASGISend) -> bool:
    """Close the client's connection without sending a byte. False if the server can't.

    uvicorn's ASGI ``send`` is a bound method of the request cycle, which holds the transport;
    closing it is exactly what a crashed proxy does. After the close uvicorn marks the cycle
    disconnected and sends nothing more.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "close"):
        return False
    transport.close()
    for _ in range(3):  # let connection_lost run, so uvicorn knows the client is gone
        await asyncio.sleep(0)
    return True


async def truncated_response(send: ASGISend) -> None:
    """Fallback drop: promise a body, send part of it, and close (uvicorn closes on error)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"call_id": ', "more_body": True})
    raise ConnectionAbortedError("sandbox fault: connection dropped")
