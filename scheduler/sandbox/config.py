"""The sandbox's settings: one frozen value object, built and validated from the CLI flags.

Every parser here raises ``ValueError`` with a message that names the flag and says what a
valid value looks like; the CLI turns that into a usage error (exit 2), never a traceback.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

DEFAULT_API_KEY = "sandbox-key"

#: Final statuses a call can end in (also the values accepted by the ``sandbox_outcome`` hook).
FINAL_STATUSES = ("completed", "no_answer", "busy", "failed", "voicemail")

FAULT_KINDS = ("429", "5xx", "lost", "slow")
#: faults of the webhook sender (one draw per event, separate from the per-request draw)
WEBHOOK_FAULT_KINDS = ("webhook_drop", "webhook_dup", "webhook_delay", "webhook_reorder")
#: faults of a placed call (one draw per call): ``call_failed`` ends it ``failed`` (a carrier
#: or agent that breaks every call; the ``sandbox_outcome`` hook still wins)
CALL_FAULT_KINDS = ("call_failed",)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``limit`` requests per ``period_s`` seconds, per API key (all endpoints together)."""

    limit: int
    period_s: float

    def __str__(self) -> str:
        unit = "s" if self.period_s == 1 else "min"
        return f"{self.limit}/{unit}"


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Probability per request of each injected fault (they are exclusive; sum <= 1), and per
    webhook event of each webhook fault (exclusive among themselves too; sum <= 1)."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    lost: float = 0.0
    slow: float = 0.0
    webhook_drop: float = 0.0
    webhook_dup: float = 0.0
    webhook_delay: float = 0.0
    webhook_reorder: float = 0.0
    call_failed: float = 0.0

    @property
    def any(self) -> bool:
        return (self.rate_429 + self.rate_5xx + self.lost + self.slow) > 0


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """Everything the sandbox needs to know; see ``vaani-campaigns sandbox --help``."""

    #: the provider wire to serve (``scheduler.sandbox.fronts.FRONTS``)
    provider: str = "vaani"
    host: str = "127.0.0.1"
    port: int = 0
    api_keys: tuple[str, ...] = (DEFAULT_API_KEY,)
    rate_limit: RateLimit | None = None
    rate_headers: bool = True
    speed: float = 1.0
    seed: int | None = None
    answer_rate: float = 0.7
    call_seconds: tuple[float, float] = (1.0, 4.0)
    faults: FaultRates = field(default_factory=FaultRates)
    #: where the front-end's webhook sender POSTs events (None: it sends none)
    webhook_url: str | None = None
    #: what the sender signs events with
    webhook_secret: str | None = field(default=None, repr=False)
    slow_seconds: float = 5.0
    background_calls: float = 0.0
    agents: frozenset[str] | None = None
    balance_calls: int | None = None
    ready_file: str | None = None

    def __post_init__(self) -> None:
        if not self.api_keys or any(not k for k in self.api_keys):
            raise ValueError("--api-key: at least one non-empty key is required")
        if not (self.speed > 0 and math.isfinite(self.speed)):
            raise ValueError(f"--speed must be a positive number, got {self.speed}")
        if not 0.0 <= self.answer_rate <= 1.0:
            raise ValueError(f"--answer-rate must be between 0 and 1, got {self.answer_rate}")
        if self.slow_seconds < 0:
            raise ValueError(f"--slow-seconds must be >= 0, got {self.slow_seconds}")
        if self.background_calls < 0:
            raise ValueError(f"--background-calls must be >= 0, got {self.background_calls}")
        if self.balance_calls is not None and self.balance_calls < 0:
            raise ValueError(f"--balance-calls must be >= 0, got {self.balance_calls}")
        from scheduler.sandbox.fronts import FRONTS

        if self.provider not in FRONTS:
            known = ", ".join(sorted(FRONTS))
            raise ValueError(
                f"--provider: unknown provider {self.provider!r}: expected one of {known}"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must be between 0 and 65535, got {self.port}")
        if self.webhook_url is not None and not self.webhook_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(f"--webhook-url must be an http(s) URL, got {self.webhook_url!r}")
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("--webhook-url needs --webhook-secret (events are signed with it)")

    def __repr__(self) -> str:  # never show the keys
        return (
            f"SandboxConfig(provider={self.provider!r}, host={self.host!r}, port={self.port}, api_keys=<{len(self.api_keys)}>, "
            f"rate_limit={self.rate_limit}, seed={self.seed}, speed={self.speed})"
        )


_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute)\s*$", re.IGNORECASE)


def parse_rate_limit(text: str) -> RateLimit:
    """``"10/s"`` -> RateLimit(10, 1.0); ``"600/min"`` -> RateLimit(600, 60.0)."""
    m = _RATE_RE.match(text)
    if not m or int(m.group(1)) < 1:
        raise ValueError(
            f"--rate-limit: expected N/s or N/min with N >= 1 (e.g. 10/s), got {text!r}"
        )
    period = 1.0 if m.group(2).lower().startswith("s") else 60.0
    return RateLimit(int(m.group(1)), period)


def parse_seconds_range(text: str) -> tuple[float, float]:
    """``"1-4"`` -> (1.0, 4.0); ``"2"`` -> (2.0, 2.0). Both ends > 0, MIN <= MAX."""
    parts = text.split("-")
    try:
        if len(parts) == 1:
            lo = hi = float(parts[0])
        elif len(parts) == 2:
            lo, hi = float(parts[0]), float(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"--call-seconds: expected MIN-MAX in seconds (e.g. 1-4), got {text!r}"
        ) from None
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ValueError(f"--call-seconds: need 0 < MIN <= MAX, got {text!r}")
    return lo, hi


def parse_faults(text: str) -> FaultRates:
    """``"429=0.05,5xx=0.02,lost=0.02,slow=0.01,webhook_drop=0.1"`` -> FaultRates; empty text
    means none."""
    values: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, raw = item.partition("=")
        kind = kind.strip().lower()
        known = FAULT_KINDS + WEBHOOK_FAULT_KINDS + CALL_FAULT_KINDS
        if not sep or kind not in known:
            raise ValueError(
                f"--faults: {item!r} is not KIND=PROBABILITY with KIND one of "
                f"{', '.join(known)} (e.g. 429=0.05,lost=0.02)"
            )
        try:
            p = float(raw)
        except ValueError:
            raise ValueError(f"--faults: probability for {kind} is not a number: {raw!r}") from None
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"--faults: probability for {kind} must be in [0, 1], got {p}")
        values[kind] = p
    for kinds, what in ((FAULT_KINDS, "request"), (WEBHOOK_FAULT_KINDS, "webhook")):
        if sum(values.get(k, 0.0) for k in kinds) > 1.0 + 1e-9:
            raise ValueError(f"--faults: {what} probabilities add up to more than 1: {text!r}")
    return FaultRates(
        rate_429=values.get("429", 0.0),
        rate_5xx=values.get("5xx", 0.0),
        lost=values.get("lost", 0.0),
        slow=values.get("slow", 0.0),
        **{k: values.get(k, 0.0) for k in WEBHOOK_FAULT_KINDS + CALL_FAULT_KINDS},
    )


def parse_agents(text: str) -> frozenset[str]:
    """``"A,B"`` -> {"A", "B"}: the only agent ids the key owns (403 for others)."""
    agents = frozenset(a.strip() for a in text.split(",") if a.strip())
    if not agents:
        raise ValueError("--agents: expected a comma-separated list of agent ids, got nothing")
    return agents
