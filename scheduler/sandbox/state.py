"""Everything the sandbox remembers, in memory: accounts (one per API key), their call history,
the ground truth of placed calls, background traffic, and the request statistics.

History is an append-only list per account, in creation order, so a page newest first is one
slice read from the end: O(page_size), whatever the history's length. Background calls are
generated lazily: before any read or write, the calls that "arrived" since the last look (a
Poisson process of rate ``--background-calls``) are appended with their own past timestamps,
so the history stays ordered by time and no timer task is needed.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scheduler.sandbox.config import SandboxConfig
from scheduler.sandbox.limits import RateLimiter
from scheduler.sandbox.sim import Call, draw_outcome

_BG_AGENTS = ("bg-agent-sales", "bg-agent-support", "bg-agent-survey")


def fingerprint(api_key: str) -> str:
    """A stable, non-reversible name for a key: safe to show, log and store."""
    return "sha256:" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


@dataclass
class Account:
    """What one API key sees: its history (placed calls plus background traffic)."""

    fingerprint: str
    history: list[Call] = field(default_factory=list)
    by_id: dict[str, Call] = field(default_factory=dict)
    placed: int = 0

    def add(self, call: Call) -> None:
        self.history.append(call)
        self.by_id[call.call_id] = call

    def page(self, page: int, page_size: int) -> tuple[list[Call], int]:
        """Calls on ``page`` (1-based), newest first, and the total."""
        total = len(self.history)
        end = total - (page - 1) * page_size
        if end <= 0:
            return [], total
        chunk = self.history[max(0, end - page_size) : end]
        chunk.reverse()
        return chunk, total


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    responses_by_status: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    #: the webhook sender's counts (sent, delivered, dropped, duplicated, ...)
    webhooks: Counter[str] = field(default_factory=Counter)
    #: recordings served (GET /api/stream): full (200), partial (206), bytes
    recordings: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    concurrent: int = 0
    max_concurrent: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "responses_by_status": dict(self.responses_by_status),
            "rate_limited": self.rate_limited,
            "faults": {
                k: self.faults.get(k, 0) for k in ("429", "5xx", "lost", "slow", "call_failed")
            },
            "max_concurrent_requests": self.max_concurrent,
            "webhooks": dict(self.webhooks),
            "recordings": {k: self.recordings.get(k, 0) for k in ("full", "partial", "bytes")},
        }


class SandboxState:
    """The whole simulated service. Single-threaded (asyncio): no locks needed."""

    def __init__(self, config: SandboxConfig, clock: Any = time.time) -> None:
        self.config = config
        self.clock = clock
        self.seed = config.seed if config.seed is not None else int.from_bytes(os.urandom(8))
        self.keys = {k: fingerprint(k) for k in config.api_keys}
        self.limiter = RateLimiter(config.rate_limit) if config.rate_limit else None
        self.reset()

    def reset(self) -> None:
        """Forget every call and statistic (POST /sandbox/reset)."""
        self.accounts = {fp: Account(fp) for fp in self.keys.values()}
        self.placed: list[Call] = []
        self.per_number: Counter[str] = Counter()
        self.stats = Stats()
        self.fault_rng = random.Random(f"{self.seed}:faults")
        self.call_rng = random.Random(f"{self.seed}:call_faults")
        self.bg_rng = random.Random(f"{self.seed}:background")
        self.bg_count = 0
        self.started = self.clock()
        self.bg_next = self._next_bg(self.started)
        if self.limiter:
            self.limiter.reset()

    # ----------------------------------------------------------------- accounts and calls

    def account(self, api_key: str | None) -> Account | None:
        fp = self.keys.get(api_key) if api_key is not None else None
        return self.accounts[fp] if fp else None

    def place(
        self,
        account: Account,
        *,
        agent_id: str,
        contact_number: str,
        name: str,
        metadata: dict[str, Any],
    ) -> Call:
        """Record a call placed through trigger-call; it starts queued now."""
        now = self.clock()
        self.catch_up(now)
        n = self.per_number[contact_number]
        self.per_number[contact_number] += 1
        rng = random.Random(f"{self.seed}:{contact_number}:{n}")
        outcome = draw_outcome(rng, self.config.answer_rate)
        lo, hi = self.config.call_seconds
        total_s = rng.uniform(lo, hi)
        failing = self.config.faults.call_failed
        if failing and self.call_rng.random() < failing:  # --faults call_failed=P
            outcome = "failed"
            self.stats.faults["call_failed"] += 1
        outcome = metadata.get("sandbox_outcome") or outcome
        if metadata.get("sandbox_call_seconds") is not None:
            total_s = float(metadata["sandbox_call_seconds"])
        call = Call(
            call_id=self._new_id("outbound", now, rng, account),
            agent_id=agent_id,
            contact_number=contact_number,
            name=name,
            call_type="outbound",
            metadata=metadata,
            created=now,
            total_s=total_s,
            outcome=outcome,
            speed=self.config.speed,
            fingerprint=account.fingerprint,
        )
        account.add(call)
        account.placed += 1
        self.placed.append(call)
        return call

    def _new_id(self, prefix: str, t: float, rng: random.Random, account: Account) -> str:
        while True:
            call_id = f"{prefix}-{int(t)}-{rng.getrandbits(32):08x}"
            if call_id not in account.by_id:
                return call_id

    # ----------------------------------------------------------------- background traffic

    def _next_bg(self, after: float) -> float:
        rate = self.config.background_calls
        return after + self.bg_rng.expovariate(rate) if rate > 0 else float("inf")

    def catch_up(self, now: float | None = None) -> None:
        """Append the background calls that arrived up to ``now`` to every account."""
        now = self.clock() if now is None else now
        while self.bg_next <= now:
            t, rng = self.bg_next, self.bg_rng
            self.bg_count += 1
            inbound = rng.random() < 0.5
            lo, hi = self.config.call_seconds
            call = Call(
                call_id="",
                agent_id=rng.choice(_BG_AGENTS),
                contact_number=f"+1415555{rng.randrange(10000):04d}",
                name=f"Background contact {self.bg_count}",
                call_type="inbound" if inbound else "outbound",
                metadata={},
                created=t,
                total_s=rng.uniform(lo, hi),
                outcome=draw_outcome(rng, self.config.answer_rate),
                speed=self.config.speed,
            )
            for account in self.accounts.values():
                call.call_id = call.call_id or self._new_id(call.call_type, t, rng, account)
                account.add(call)
            self.bg_next = self._next_bg(t)

    # ----------------------------------------------------------------- ground truth

    def ground_truth(self, *, transcripts: bool = False) -> dict[str, Any]:
        """Every placed call as it is now; with ``transcripts``, what was said on each too."""
        now = self.clock()
        calls = [c.ground_truth(now) for c in self.placed]
        if transcripts:
            for call, truth in zip(self.placed, calls, strict=True):
                truth["transcript"] = call.details(now)["transcript"]
        return {"calls": calls}

    def stats_dict(self) -> dict[str, Any]:
        out = self.stats.as_dict()
        out["calls_placed"] = len(self.placed)
        out["background_calls"] = self.bg_count
        out["uptime_s"] = round(self.clock() - self.started, 3)
        return out
