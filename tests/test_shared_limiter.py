"""The rate limit shared by the daemons of a PostgreSQL database (storage.ratebuckets,
scheduler.sharedgate): real PostgreSQL, real clock, real threads for the database calls."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from scheduler import dbexec
from scheduler.errors import RateLimitInfo
from scheduler.ratelimit import RateLimiter
from scheduler.sharedgate import SharedGate, key_fingerprint, plan_gate
from storage import ratebuckets
from storage.engine import make_engine
from storage.models import RateBucket

KEY = "sk-shared-limiter-test-0123456789"


def test_sqlite_keeps_the_local_limiter(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    limiter = RateLimiter(10.0)
    assert plan_gate(engine, limiter, provider="vaani", api_key=KEY) is limiter
    engine.dispose()


def test_batches_are_consecutive_stretches_of_one_timeline(pg_url: str) -> None:
    engine = make_engine(pg_url)
    fp = key_fingerprint(KEY)
    ratebuckets.ensure_bucket(engine, provider="vaani", key_fp=fp)
    ratebuckets.ensure_bucket(engine, provider="vaani", key_fp=fp)  # idempotent
    a = ratebuckets.take(engine, provider="vaani", key_fp=fp, n=4, rate=40.0, burst_s=0.0)
    b = ratebuckets.take(engine, provider="vaani", key_fp=fp, n=4, rate=40.0, burst_s=0.0)
    assert a.end - a.start == pytest.approx(0.1)
    # b begins where a ended (minus the time between the two statements)
    assert b.start == pytest.approx(a.end, abs=0.05)
    with engine.connect() as conn:
        rows = conn.execute(select(RateBucket.provider, RateBucket.key_fp)).all()
    assert rows == [("vaani", fp)] and KEY not in fp  # the fingerprint, never the key
    with pytest.raises(LookupError, match="ensure_bucket"):
        ratebuckets.take(engine, provider="other", key_fp=fp, n=1, rate=1.0, burst_s=0.0)
    engine.dispose()


def test_three_daemons_on_one_key_together_keep_the_rate(pg_url: str) -> None:
    """Three gates (as three daemons would have), each with its own local limiter told the
    full 50/s, send 150 requests between them: together they take >= ~3 s, not ~1 s."""
    engine = make_engine(pg_url)
    rate, per_daemon = 50.0, 50

    async def scenario() -> tuple[float, list[float]]:
        gates = [plan_gate(engine, RateLimiter(rate), provider="vaani", api_key=KEY) for _ in "abc"]
        assert all(isinstance(g, SharedGate) for g in gates)
        sent: list[float] = []

        async def one(gate: SharedGate) -> None:
            await gate.acquire("dispatch")
            sent.append(time.monotonic())
            gate.observe("dispatch", 200, RateLimitInfo())

        t0 = time.monotonic()
        await asyncio.gather(*(one(g) for g in gates for _ in range(per_daemon)))  # type: ignore[arg-type]
        return time.monotonic() - t0, sorted(sent)

    try:
        elapsed, sent = asyncio.run(scenario())
    finally:
        dbexec.shutdown()
        engine.dispose()
    n = 3 * per_daemon
    # GCRA: the first burst (0.25 s worth) at once, then one every 1/rate
    assert elapsed >= (n - rate * 0.25) / rate * 0.95
    # and no second holds more than the rate plus that burst
    for i, t in enumerate(sent):
        in_window = sum(1 for u in sent[i:] if u < t + 1.0)
        assert in_window <= rate + rate * 0.25 + 2
