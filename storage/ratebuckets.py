"""A rate limit shared by every daemon on one PostgreSQL database (issue 9).

A plan limits an API key, not a daemon: three daemons each pacing at the full rate send three
times too much and collect 429s. Each (provider, key fingerprint) -- the SHA-256 of the key,
never the key -- has one row in ``rate_buckets`` holding the theoretical arrival time
(``tat``, seconds on the database's clock) of a GCRA. :func:`take` reserves ``n`` requests in
one ``UPDATE ... RETURNING``: the row lock orders concurrent takers, and each gets its own
stretch of the shared timeline, ``n / rate`` seconds long, to spend at that pace
(``scheduler.sharedgate``). The database's clock is the only clock involved, so hosts whose
clocks disagree still share one timeline.

SQLite is single-host: daemons on one SQLite file share no limiter (:func:`supported`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

from storage.models import RateBucket

_NOW = "EXTRACT(EPOCH FROM clock_timestamp())"
_TAKE = text(
    f"""
    UPDATE rate_buckets
       SET tat = GREATEST(tat, {_NOW} - :burst) + :n / :rate
     WHERE provider = :provider AND key_fp = :key_fp
    RETURNING tat - {_NOW}
    """
)


@dataclass(frozen=True, kw_only=True)
class Batch:
    """``n`` requests to send, spread evenly from ``start`` to ``end`` seconds from now."""

    n: int
    start: float
    end: float


def supported(engine: Engine) -> bool:
    """Can daemons on this database share a limiter? (PostgreSQL only.)"""
    return engine.dialect.name == "postgresql"


def ensure_bucket(engine: Engine, *, provider: str, key_fp: str) -> None:
    """Create the row of ``(provider, key_fp)`` if missing (idempotent, race-free)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO rate_buckets (provider, key_fp, tat) VALUES (:p, :k, 0) "
                "ON CONFLICT DO NOTHING"
            ),
            {"p": provider, "k": key_fp},
        )


def take(
    engine: Engine, *, provider: str, key_fp: str, n: int, rate: float, burst_s: float
) -> Batch:
    """Reserve ``n`` requests at ``rate`` per second on the shared timeline; an idle bucket
    lends up to ``burst_s`` seconds' worth at once."""
    if n < 1 or not rate > 0:
        raise ValueError("take at least one request at a positive rate")
    with engine.begin() as conn:
        end = conn.execute(
            _TAKE,
            {"provider": provider, "key_fp": key_fp, "n": float(n), "rate": rate, "burst": burst_s},
        ).scalar_one_or_none()
    if end is None:
        raise LookupError(f"no rate bucket for provider {provider!r}; call ensure_bucket first")
    end = float(end)
    return Batch(n=n, start=end - n / rate, end=end)


__all__ = ["Batch", "RateBucket", "ensure_bucket", "supported", "take"]
