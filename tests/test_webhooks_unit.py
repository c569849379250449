"""Signing and checking events (campaigns/webhooks.py), the retry schedule and the delivery
task's answers to receivers (scheduler/webhooks_out.py, over httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.errors import UserError
from campaigns.services.create import CampaignSpec, check_campaign
from campaigns.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    display_url,
    fingerprint,
    headers,
    sign,
    verify_signature,
)
from scheduler import dbexec
from scheduler.webhooks_out import WebhookSender, WebhookSettings, backoff
from storage import campaigns_repo, outbox
from storage import outbox_delivery as delivery
from storage.engine import Engine, make_engine
from storage.migrate import upgrade
from storage.models import utcnow
from tests.factories import indian_numbers, make_campaign, make_contacts

SECRET = "whsec-unit-7d1f"
NOW = 1_800_000_000.0


def test_signature_is_the_hmac_of_the_raw_body() -> None:
    # the well-known HMAC-SHA256 test value (Wikipedia, "HMAC")
    body = b"The quick brown fox jumps over the lazy dog"
    assert sign("key", body) == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_headers_carry_signature_event_id_and_timestamp() -> None:
    h = headers(SECRET, b'{"a":1}', "evt-1", now=NOW)
    assert h[SIGNATURE_HEADER] == sign(SECRET, b'{"a":1}')
    assert h[EVENT_ID_HEADER] == "evt-1"
    assert h[TIMESTAMP_HEADER] == str(int(NOW))
    assert h["Content-Type"] == "application/json"


@given(st.binary(max_size=200), st.integers(min_value=-300, max_value=300))
def test_a_signed_body_verifies_within_the_tolerance(body: bytes, skew: int) -> None:
    h = headers(SECRET, body, "e", now=NOW)
    assert verify_signature(SECRET, body, h[SIGNATURE_HEADER], h[TIMESTAMP_HEADER], now=NOW + skew)


@given(st.binary(min_size=1, max_size=200), st.integers(min_value=0, max_value=199))
def test_any_changed_byte_fails(body: bytes, i: int) -> None:
    h = headers(SECRET, body, "e", now=NOW)
    i %= len(body)
    tampered = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
    assert not verify_signature(SECRET, tampered, h[SIGNATURE_HEADER], h[TIMESTAMP_HEADER], now=NOW)


@given(st.text(max_size=40), st.text(max_size=15))
def test_garbage_headers_never_verify_nor_raise(header: str, timestamp: str) -> None:
    assert not verify_signature(SECRET, b"x", header, timestamp, now=NOW)


def test_old_timestamp_wrong_secret_and_missing_headers_fail() -> None:
    h = headers(SECRET, b"x", "e", now=NOW)
    sig, ts = h[SIGNATURE_HEADER], h[TIMESTAMP_HEADER]
    assert not verify_signature(SECRET, b"x", sig, ts, now=NOW + 301)
    assert not verify_signature("other", b"x", sig, ts, now=NOW)
    assert not verify_signature(SECRET, b"x", None, ts, now=NOW)
    assert not verify_signature(SECRET, b"x", sig, None, now=NOW)


def test_fingerprint_is_short_stable_and_not_the_secret() -> None:
    fp = fingerprint(SECRET)
    assert fp == fingerprint(SECRET) and fp.startswith("sha256:") and len(fp) == 19
    assert SECRET not in fp and fp != fingerprint(SECRET + "x")


def test_backoff_is_full_jitter_under_a_capped_exponential() -> None:
    rng = random.Random(7)
    for n in range(1, 30):
        ceiling = min(600.0, 2.0 * 2 ** (n - 1))
        waits = [backoff(n, base=2.0, cap=600.0, rng=rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # jitter covers the range, not just its bottom
    assert backoff(10_000, base=2.0, cap=600.0, rng=rng) <= 600.0


def test_display_url_drops_credentials_and_query() -> None:
    assert display_url("https://u:p@crm.example.com:8443/h?token=abc#x") == (
        "https://crm.example.com:8443/h"
    )


def test_create_checks_the_webhook_options_and_stores_a_fingerprint_only() -> None:
    base = {"name": "n", "agent_id": "a"}
    with pytest.raises(UserError, match="--webhook-secret"):
        check_campaign(CampaignSpec(**base, webhook_url="https://crm.example.com/h"))
    for bad in ("ftp://x/y", "crm.example.com/h", "http://h:99999/x", "https:///path"):
        with pytest.raises(UserError, match="--webhook-url: expected an http"):
            check_campaign(CampaignSpec(**base, webhook_url=bad, webhook_secret="s"))
    new = check_campaign(
        CampaignSpec(**base, webhook_url="https://crm.example.com/h", webhook_secret=SECRET)
    )
    assert new.webhook_secret_fp == fingerprint(SECRET)
    assert SECRET not in repr(new)
    spec = CampaignSpec(**base, webhook_url="https://crm.example.com/h", webhook_secret=SECRET)
    assert SECRET not in repr(spec)


# --------------------------------------------------------------------------- the sender


def _setup(tmp_path: Path, n: int) -> tuple[Engine, int]:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url)
    upgrade(engine)
    cid = make_campaign(
        engine, webhook_url="http://crm.test/hook", webhook_secret_fp=fingerprint(SECRET)
    )
    make_contacts(engine, cid, indian_numbers(n))
    campaigns_repo.cancel_campaign(engine, cid, reason="test")  # n contact.finished events
    return engine, cid


def _deliver(engine: Engine, handler: httpx.MockTransport, settings: WebhookSettings) -> None:
    async def go() -> None:
        sender = WebhookSender(engine, settings, daemon_id="d1", transport=handler)
        async with httpx.AsyncClient(transport=handler) as client:
            for _ in range(5):
                await sender.deliver_once(client)

    try:
        asyncio.run(go())
    finally:
        dbexec.shutdown()


def test_sender_signs_retries_5xx_and_kills_on_410(tmp_path: Path) -> None:
    engine, cid = _setup(tmp_path, 3)
    seen: list[httpx.Request] = []
    answers = iter([500, 200, 410, 200, 200, 200])

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers))

    settings = WebhookSettings(secret=SECRET, backoff_base=0.0001, backoff_cap=0.0001)
    _deliver(engine, httpx.MockTransport(handle), settings)
    for r in seen:
        assert verify_signature(
            SECRET, r.content, r.headers[SIGNATURE_HEADER], r.headers[TIMESTAMP_HEADER]
        )
        assert json.loads(r.content)["id"] == r.headers[EVENT_ID_HEADER]
    counts = outbox.outbox_counts(engine, cid)
    assert (counts.pending, counts.delivered, counts.dead) == (0, 2, 1)
    assert counts.last_dead_error == "HTTP 410"
    assert len(seen) == 4  # 3 events, one of them twice (the 500)


def test_sender_gives_up_after_the_retry_window(tmp_path: Path) -> None:
    engine, cid = _setup(tmp_path, 1)

    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    settings = WebhookSettings(
        secret=SECRET, give_up_after=timedelta(milliseconds=1), backoff_base=1.0
    )
    _deliver(engine, httpx.MockTransport(handle), settings)
    counts = outbox.outbox_counts(engine, cid)
    assert (counts.pending, counts.dead) == (0, 1)
    assert counts.last_dead_error == "ConnectError sending to http://crm.test/hook"


def test_sender_without_the_secret_holds_events_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine, cid = _setup(tmp_path, 2)

    def handle(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent without the campaign's secret")

    settings = WebhookSettings(secret="not-the-one", held_check_every=0.0)
    with caplog.at_level("WARNING", logger="vaani.webhooks"):
        _deliver(engine, httpx.MockTransport(handle), settings)
    held = [r for r in caplog.records if getattr(r, "event", "") == "webhook_held"]
    assert len(held) == 1 and "VAANI_WEBHOOK_SECRET" in held[0].getMessage()
    assert "not-the-one" not in caplog.text
    assert outbox.outbox_counts(engine, cid).pending == 2


def test_a_stopped_sender_gives_its_leases_back(tmp_path: Path) -> None:
    """Cancelled mid-POST (the daemon's shutdown), the sender releases the events it leased
    so that the next daemon sends them at once rather than when the lease runs out."""
    engine, cid = _setup(tmp_path, 2)

    async def go() -> None:
        started = asyncio.Event()

        async def handle(request: httpx.Request) -> httpx.Response:
            started.set()
            await asyncio.sleep(3600)  # a receiver that never answers
            raise AssertionError("unreachable")

        settings = WebhookSettings(secret=SECRET)
        sender = WebhookSender(
            engine, settings, daemon_id="d1", transport=httpx.MockTransport(handle)
        )
        task = asyncio.create_task(sender.run())
        await asyncio.wait_for(started.wait(), 10)
        leased = await dbexec.run(
            delivery.claim_due,
            engine,
            fingerprint=fingerprint(SECRET),
            daemon_id="d2",
            now=utcnow(),
            lease=timedelta(seconds=30),
        )
        assert leased == []  # d1 holds them while its POSTs are in flight
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(go())
    finally:
        dbexec.shutdown()
    again = delivery.claim_due(
        engine,
        fingerprint=fingerprint(SECRET),
        daemon_id="d2",
        now=utcnow(),
        lease=timedelta(seconds=30),
    )
    assert len(again) == 2 and outbox.outbox_counts(engine, cid).pending == 2
