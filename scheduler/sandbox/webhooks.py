"""The sandbox's webhook sender: a front-end's call events, POSTed as calls end.

A front-end that pushes events (VaniAgent's: ``call.completed`` / ``call.failed``) sets its
``background`` to :func:`sender` of its event function (call -> (event type, data)): started
with the server, the sender watches the calls placed through the sandbox and, when each one
ends (its simulated ``end`` time), POSTs one event to ``--webhook-url``, signed like VaniAgent
signs (``X-Vaniagent-Signature`` = hex HMAC-SHA256 of the raw body with ``--webhook-secret``).
Without ``--webhook-url`` it sends nothing.

The envelope is the seed's (``seeds/001``)::

    {"event": "<event type>", "timestamp": "<the call's end>", "data": {...}}

and ``data`` is the front-end's own (``front_vaniagent.event_data``: the fields and values of
``GET /v1/calls/{id}``), so that a call reads the same pushed or polled; the status mapping
and the other fields are documented there, once.

Faults of their own, from ``--faults`` (one draw per event, exclusive, RNG seeded by ``--seed``):
``webhook_drop`` (never sent), ``webhook_dup`` (sent twice), ``webhook_delay`` (sent
:data:`DELAY_S` late) and ``webhook_reorder`` (held back until the next event has been sent, or
:data:`REORDER_HOLD_S` at most). Delivery: a connection error or a 5xx answer is retried
(:data:`RETRIES` times, backing off 0.5, 1, 2 s) as a real provider might; a 4xx is not.
``/sandbox/stats`` counts it all under ``webhooks``.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import random
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from scheduler.providers.vaniagent_events import signature
from scheduler.sandbox.sim import Call, iso_utc
from scheduler.sandbox.state import SandboxState

#: seconds a ``webhook_delay`` event is held back
DELAY_S = 2.0
#: seconds a ``webhook_reorder`` event waits at most for the next event
REORDER_HOLD_S = 1.0
#: re-deliveries after a connection error or a 5xx
RETRIES = 3
#: seconds between two looks at the calls that ended
TICK_S = 0.02
#: deliveries in flight at most
MAX_INFLIGHT = 32


#: what a front-end pushes for an ended call: (event type, the event's ``data``)
EventFn = Callable[[Call], tuple[str, dict[str, Any]]]


def event_body(event: EventFn, call: Call) -> dict[str, Any]:
    """The webhook event of an ended ``call``, in the seed's envelope."""
    kind, data = event(call)
    return {"event": kind, "timestamp": iso_utc(call.end), "data": data}


class WebhookSender:
    """Sends the events of one sandbox's calls as they end (one per sandbox)."""

    def __init__(
        self,
        state: SandboxState,
        url: str,
        secret: str,
        event: EventFn,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.state = state
        self.event = event
        self.url = url
        self._secret = secret
        self.client = client or httpx.AsyncClient(timeout=5.0)
        self.rng = random.Random(f"{state.seed}:webhooks")
        self._due: list[tuple[float, int, Call]] = []
        self._seen = 0
        self._placed: list[Call] | None = None
        self._held: list[bytes] = []
        self._held_at = 0.0
        self._slots = asyncio.Semaphore(MAX_INFLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def stats(self) -> Counter[str]:
        """The counts in ``/sandbox/stats`` (a reset replaces them: looked up each time)."""
        return self.state.stats.webhooks

    def __repr__(self) -> str:  # never the secret
        return f"WebhookSender(url={self.url!r})"

    async def run(self) -> None:
        """Send events until cancelled."""
        try:
            while True:
                self._watch()
                await self._send_ended(self.state.clock())
                await asyncio.sleep(TICK_S)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await self.client.aclose()

    def _watch(self) -> None:
        """Queue the calls placed since the last look, by end time (a reset starts over)."""
        placed = self.state.placed
        if placed is not self._placed or len(placed) < self._seen:
            self._placed, self._seen, self._due = placed, 0, []
        for call in placed[self._seen :]:
            heapq.heappush(self._due, (call.end, self._seen, call))
            self._seen += 1

    async def _send_ended(self, now: float) -> None:
        sent_any = False
        while self._due and self._due[0][0] <= now:
            _, _, call = heapq.heappop(self._due)
            body = json.dumps(event_body(self.event, call), separators=(",", ":")).encode()
            sent_any = self._dispatch(body) or sent_any
        if self._held and (sent_any or now - self._held_at >= REORDER_HOLD_S):
            held, self._held = self._held, []
            for body in held:
                self._spawn(body)

    def _dispatch(self, body: bytes) -> bool:
        """Apply this event's fault; True when it went out now (releasing held events)."""
        kind = self._fault()
        if kind != "ok":
            self.stats[kind] += 1
        if kind == "dropped":
            return False
        if kind == "delayed":
            self._spawn(body, delay=DELAY_S)
            return False
        if kind == "reordered":
            if not self._held:
                self._held_at = self.state.clock()
            self._held.append(body)
            return False
        self._spawn(body)
        if kind == "duplicated":
            self._spawn(body)
        return True

    def _fault(self) -> str:
        """This event's fault (its ``stats`` name), or "ok"."""
        u = self.rng.random()
        faults = self.state.config.faults
        for kind, p in (
            ("dropped", faults.webhook_drop),
            ("duplicated", faults.webhook_dup),
            ("delayed", faults.webhook_delay),
            ("reordered", faults.webhook_reorder),
        ):
            if u < p:
                return kind
            u -= p
        return "ok"

    def _spawn(self, body: bytes, *, delay: float = 0.0) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(body, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, body: bytes, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        headers = {
            "content-type": "application/json",
            "x-vaniagent-signature": signature(body, self._secret),
            "user-agent": "vaniagent-sandbox-webhooks",
        }
        async with self._slots:
            for attempt in range(RETRIES + 1):
                if attempt:
                    self.stats["retried"] += 1
                    await asyncio.sleep(0.5 * 2 ** (attempt - 1))
                self.stats["sent"] += 1
                try:
                    answer = await self.client.post(self.url, content=body, headers=headers)
                except httpx.HTTPError:
                    continue
                if answer.status_code < 300:
                    self.stats["delivered"] += 1
                    return
                if answer.status_code < 500:
                    self.stats["rejected"] += 1
                    return
            self.stats["failed"] += 1


def sender(event: EventFn) -> Callable[[SandboxState], Coroutine[Any, Any, None]]:
    """A front-end's ``background``: send ``event(call)`` for each call as it ends, while the
    sandbox runs (nothing without ``--webhook-url``)."""

    async def send_webhooks(state: SandboxState) -> None:
        config = state.config
        if not config.webhook_url:
            return
        await WebhookSender(state, config.webhook_url, config.webhook_secret or "", event).run()

    return send_webhooks
