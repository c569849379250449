"""Delivering the outbox (``storage/outbox_delivery.py``) to the user's CRM: the daemon's webhook task.

One asyncio task per daemon loops: lease the due events (the oldest undelivered one of each
contact, so delivery stays in order per contact), POST each with its signature headers
(``campaigns/webhooks.py``), and record the answer:

* 2xx: delivered;
* 410 Gone: dead at once (the receiver says the endpoint is gone for good);
* anything else (other 4xx, 5xx, timeouts, refused connections): retried after an
  exponential backoff with full jitter (``uniform(0, min(cap, base * 2**n))``), until
  ``give_up_after`` (24 h) from the event's creation, then dead. Dead events show in
  ``campaign show``.

At least once: the row is marked after the answer, so a SIGKILL between the two re-sends it
(under the same event id) once its lease runs out. The lease outlives the request timeout, so
another daemon never takes a row whose POST may still be in flight.

A campaign's events go out only with the secret whose fingerprint the campaign stores; when
this daemon has none or another, they are held (and said once per campaign, naming the
environment variable, never a secret).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from campaigns.webhooks import SECRET_ENV, display_url, fingerprint, headers
from scheduler import dbexec
from scheduler.providers.http import make_http_client
from storage import outbox_delivery
from storage.engine import Engine
from storage.models import utcnow

log = logging.getLogger("vaani.webhooks")


@dataclass(frozen=True, kw_only=True, repr=False)
class WebhookSettings:
    """How events are delivered. ``secret`` None: this daemon delivers none (they wait)."""

    secret: str | None = None
    timeout: float = 10.0  # seconds per POST
    give_up_after: timedelta = timedelta(hours=24)
    backoff_base: float = 2.0  # seconds
    backoff_cap: float = 600.0  # seconds
    batch: int = 16  # events leased and sent at once
    idle: float = 0.5  # seconds between looks at an empty outbox
    held_check_every: float = 10.0

    def __post_init__(self) -> None:
        if not self.timeout > 0 or not self.give_up_after.total_seconds() > 0:
            raise ValueError("the webhook timeout and give-up delay must be positive")

    def __repr__(self) -> str:  # never the secret
        return f"WebhookSettings(timeout={self.timeout}, give_up_after={self.give_up_after})"

    @property
    def lease(self) -> timedelta:
        """Long enough that a POST still in flight is never taken by another daemon."""
        return timedelta(seconds=2 * self.timeout + 5)

    @property
    def fingerprint(self) -> str | None:
        return fingerprint(self.secret) if self.secret else None


def backoff(attempts: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed delivery: full jitter over an
    exponential ceiling, ``uniform(0, min(cap, base * 2 ** (attempts - 1)))``."""
    ceiling = min(cap, base * 2 ** min(max(attempts - 1, 0), 60))
    return (rng or random).uniform(0, ceiling)


def next_try(
    event: outbox_delivery.Delivery, status: int | None, now: datetime, settings: WebhookSettings
) -> datetime | None:
    """When to try ``event`` again after a failure (None: dead)."""
    if status == 410:
        return None
    wait = backoff(event.attempts + 1, base=settings.backoff_base, cap=settings.backoff_cap)
    at = now + timedelta(seconds=wait)
    if at - event.created_at > settings.give_up_after:
        return None
    return at


class WebhookSender:
    """The delivery loop of one daemon (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        settings: WebhookSettings,
        *,
        daemon_id: str,
        clock: Callable[[], datetime] = utcnow,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.daemon_id = daemon_id
        self.clock = clock
        self._transport = transport
        self._warned: set[int] = set()
        self._last_held_check = -1e9

    async def drained(self) -> bool:
        """Nothing left that this daemon could deliver. Held events do not count, but are
        said (once per campaign) before ``--until-done`` leaves them in the outbox."""
        await self._warn_held()
        fp = self.settings.fingerprint
        return await dbexec.run(outbox_delivery.pending_count, self.engine, fp) == 0

    async def run(self) -> None:
        """Deliver until cancelled; then give back this daemon's leases."""
        s = self.settings
        client = make_http_client(
            "", timeout=s.timeout, transport=self._transport, max_connections=s.batch
        )
        try:
            async with client:
                while True:
                    try:
                        sent = await self.deliver_once(client)
                    except Exception:
                        log.exception("webhook delivery failed", extra={"event": "webhook_error"})
                        sent = 0
                    if not sent:
                        await asyncio.sleep(s.idle)
        finally:  # stopped (cancelled): leased events go back now, not when leases run out
            await dbexec.run(outbox_delivery.release_leases, self.engine, self.daemon_id)

    async def deliver_once(self, client: httpx.AsyncClient) -> int:
        """Lease and send one batch; the number of events sent (0: nothing was due)."""
        s = self.settings
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_held_check >= s.held_check_every:
            self._last_held_check = loop.time()
            await self._warn_held()
        fp = s.fingerprint
        if fp is None:
            return 0
        batch = await dbexec.run(
            outbox_delivery.claim_due,
            self.engine,
            fingerprint=fp,
            daemon_id=self.daemon_id,
            now=self.clock(),
            lease=s.lease,
            limit=s.batch,
        )
        await asyncio.gather(*(self._send(client, d) for d in batch))
        return len(batch)

    async def _send(self, client: httpx.AsyncClient, d: outbox_delivery.Delivery) -> None:
        assert self.settings.secret is not None
        body = d.payload.encode()
        status: int | None = None
        try:
            resp = await client.post(
                d.url, content=body, headers=headers(self.settings.secret, body, d.event_id)
            )
            status = resp.status_code
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except httpx.HTTPError as exc:  # converted here: a short reason, never a secret
            error = f"{type(exc).__name__} sending to {display_url(d.url)}"
        now = self.clock()
        if error is None:
            await dbexec.run(outbox_delivery.mark_delivered, self.engine, d.id, now=now)
            return
        retry_at = next_try(d, status, now, self.settings)
        await dbexec.run(
            outbox_delivery.mark_failed, self.engine, d.id, now=now, error=error, retry_at=retry_at
        )
        log.log(
            logging.WARNING if retry_at is None else logging.INFO,
            "webhook event dead" if retry_at is None else "webhook delivery failed; retrying",
            extra={
                "event": "webhook_dead" if retry_at is None else "webhook_retry",
                "event_id": d.event_id,
                "campaign_id": d.campaign_id,
                "error": error,
            },
        )

    async def _warn_held(self) -> None:
        held = await dbexec.run(
            outbox_delivery.held_campaigns, self.engine, self.settings.fingerprint
        )
        for cid in held:
            if cid in self._warned:
                continue
            self._warned.add(cid)
            have = "a different webhook secret" if self.settings.secret else "no webhook secret"
            log.warning(
                f"campaign {cid} has webhook events waiting, but this daemon has {have}: "
                f"set {SECRET_ENV} (or run --webhook-secret, or webhook-secret in the [run] "
                "table of the config file) to the secret given to `campaign create`",
                extra={"event": "webhook_held", "campaign_id": cid},
            )
