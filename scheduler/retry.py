"""Per-request retries of the provider clients: which errors are temporary, how long to wait.

All tenacity settings live here, built from one frozen :class:`RetryPolicy`. Only a named set
of temporary errors is retried:

============================  ===============  =========================================
error                         trigger-call     GETs (history, details, transcript, health)
============================  ===============  =========================================
NotSentError (connect, DNS)   retried          retried
RateLimitedError (429)        retried [1]      retried [1]
AnswerLostError (timeouts)    NEVER            retried
ServerError (5xx)             NEVER [2]        retried
anything else                 raised           raised
============================  ===============  =========================================

[1] only when ``Retry-After`` is at most ``max_retry_after_s``; a longer wait is not slept
inside a request: :class:`RateLimitedError` is raised at once and the caller requeues.
[2] a 5xx on trigger-call is an :class:`AmbiguousServerError`: the call may have been placed.

The wait is the server's ``Retry-After`` when a 429 carries one (or its ``X-RateLimit-Reset``
when it says nothing is left), else exponential backoff with full jitter, capped. Attempts
stop after ``max_attempts`` or before a wait would pass ``max_total_s``; the last error is
then raised as itself (never tenacity's ``RetryError``).

Re-dialling a contact who did not answer is a different thing: that is the calling policy in
``campaigns/``, not this module.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from scheduler.errors import AnswerLostError, NotSentError, RateLimitedError, ServerError

log = logging.getLogger("vaani.client")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How hard one request tries before its error is raised to the caller.

    ``RetryPolicy(max_attempts=1)`` turns retries off.
    """

    max_attempts: int = 5  # per request, including the first
    max_total_s: float = 60.0  # no wait that would end after this much time since the first try
    backoff_base_s: float = 0.5  # the first backoff window; doubles per attempt
    backoff_max_s: float = 30.0  # the widest backoff window
    max_retry_after_s: float = 120.0  # a 429 asking to wait longer raises RateLimitedError at once

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        for name in ("max_total_s", "backoff_base_s", "backoff_max_s", "max_retry_after_s"):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise ValueError(f"{name} must be a number >= 0, not {value!r}")


def is_temporary(exc: BaseException, *, idempotent: bool, policy: RetryPolicy) -> bool:
    """Whether ``exc`` is worth another attempt of the same request.

    ``idempotent`` is False for trigger-call: it is repeated only when the call was certainly
    not placed.
    """
    if isinstance(exc, RateLimitedError):
        wait = exc.retry_after
        return wait is None or wait <= policy.max_retry_after_s
    if isinstance(exc, NotSentError):
        return True
    if not idempotent:
        return False
    return isinstance(exc, ServerError | AnswerLostError)


class wait_retry_after(wait_base):
    """Wait what a 429 asks for; otherwise fall back to another wait (jittered backoff)."""

    def __init__(self, fallback: wait_base, *, cap_s: float) -> None:
        self.fallback = fallback
        self.cap_s = cap_s

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(exc, RateLimitedError):
            if exc.retry_after is not None:
                return min(exc.retry_after, self.cap_s)
            rate = exc.rate
            if rate.remaining == 0 and rate.reset_s is not None and rate.reset_s <= self.cap_s:
                return rate.reset_s
        return float(self.fallback(retry_state))


def _log_retry(retry_state: RetryCallState) -> None:
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    sleep = retry_state.next_action.sleep if retry_state.next_action else 0.0
    log.debug(
        "retrying after %s (attempt %d) in %.2f s: %s",
        type(exc).__name__,
        retry_state.attempt_number,
        sleep,
        exc,
    )


@functools.lru_cache(maxsize=64)
def _strategies(
    policy: RetryPolicy, idempotent: bool
) -> tuple[retry_if_exception, wait_retry_after, stop_base]:
    """The stateless tenacity pieces for a policy, built once (requests are frequent)."""
    return (
        retry_if_exception(lambda exc: is_temporary(exc, idempotent=idempotent, policy=policy)),
        wait_retry_after(
            wait_random_exponential(multiplier=policy.backoff_base_s, max=policy.backoff_max_s),
            cap_s=policy.max_retry_after_s,
        ),
        stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.max_total_s),
    )


def build_retrying(
    policy: RetryPolicy, *, idempotent: bool, sleep: Sleep = asyncio.sleep
) -> AsyncRetrying:
    """The tenacity controller for one request (a fresh one per request: it holds state)."""
    retry, wait, stop = _strategies(policy, idempotent)
    return AsyncRetrying(
        retry=retry,
        wait=wait,
        stop=stop,
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )
