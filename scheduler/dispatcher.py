"""Dispatch: turn due contacts into trigger-calls, write-ahead, at the pace the limiter allows.

Each tick claims as many contacts as can be sent soon (``storage.claims.claim_due`` commits a
``reserved`` attempt for each before anything is sent), then sends each trigger-call as its own
task; the client's :class:`~scheduler.providers.http.RequestGate` (the rate limiter) paces the actual
requests. What the API answered settles the attempt:

=====================================  ==========================================================
call_id                                ``accepted``; the contact awaits its outcome
answer lost (timeout after send,       ``unknown``; reconciled against the call history before
reset, 5xx, unreadable 2xx)            the contact can ever be dialled again (invariant 3)
429 beyond the retry cap, never sent   not placed: the contact goes back to the queue, due later
401 / 402                              not placed; dispatch pauses everywhere (invariant 6)
403 / 404 (agent)                      not placed; the campaign pauses with the reason
422 (the number)                       not placed; the contact is closed ``invalid`` with reason
=====================================  ==========================================================

"Not placed, back to the queue" deletes the write-ahead attempt (``settle.record_not_placed``):
a request that placed no call (never sent, 429, 401-404) is no attempt, is not numbered, and
its reason is a log line. A 422 keeps its ``rejected`` row: it is why the contact is closed.
Never-sent requests and answers are reported to the daemon's
:class:`~scheduler.reachability.Reachability`, which warns while the API cannot be reached.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from campaigns.dialing import Decider, PolicyCache
from scheduler import dbexec
from scheduler.errors import (
    AccountError,
    AnswerLostError,
    APIStatusError,
    AuthenticationError,
    ForbiddenError,
    InsufficientBalanceError,
    NotFoundError,
    NotSentError,
    ProviderError,
    RateLimitedError,
    ValidationError,
)
from scheduler.pipeline import Pipeline
from scheduler.providers.base import CallProvider, DialRequest, attempt_ref
from scheduler.reachability import Reachability
from storage import claims, settle
from storage.campaigns_repo import CampaignRecord
from storage.claims import DialJob
from storage.engine import Engine
from storage.models import utcnow
from storage.settle import Accepted
from storage.states import ContactState

log = logging.getLogger("vaani.dispatch")


@dataclass(frozen=True, kw_only=True)
class DispatchSettings:
    """How hard dispatch pushes; validated when built."""

    max_live_calls: int = 20  # calls in flight or awaiting an outcome, all daemons together
    # trigger-calls this daemon has claimed but not yet settled, at most: the pipeline
    # (Little's law, scheduler.pipeline) sizes it below that from the rate and the latency
    max_inflight_posts: int = 256
    lease: timedelta = timedelta(minutes=5)
    outcome_deadline: timedelta = timedelta(minutes=15)
    daily_cap_per_number: int | None = 3  # rolling 24 h, across campaigns; None = no cap
    not_sent_backoff: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if self.max_live_calls < 1:
            raise ValueError("max_live_calls must be at least 1")
        if self.max_inflight_posts < 1:
            raise ValueError("max_inflight_posts must be at least 1")
        if self.daily_cap_per_number is not None and self.daily_cap_per_number < 1:
            raise ValueError("the per-number daily cap must be at least 1 (or None for no cap)")


@dataclass
class DispatchStats:
    claimed: int = 0
    accepted: int = 0
    unknown: int = 0
    not_placed: int = 0
    rejected: int = 0
    deferred: int = 0
    closed: dict[str, int] = field(default_factory=dict)


class Dispatcher:
    """Claims due contacts and sends their trigger-calls; one per daemon."""

    def __init__(
        self,
        engine: Engine,
        client: CallProvider,
        *,
        daemon_id: str,
        settings: DispatchSettings,
        on_account_error: Callable[[AccountError, DialJob], None],
        clock: Callable[[], datetime] = utcnow,
        policies: PolicyCache | None = None,
        reachability: Reachability | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self._engine = engine
        self._pipeline = pipeline
        self._reach = reachability if reachability is not None else Reachability("the API")
        self._client = client
        self._daemon_id = daemon_id
        self.settings = settings
        self._on_account_error = on_account_error
        self._clock = clock
        self._decide = Decider(settings.daily_cap_per_number, policies)
        self._inflight: set[asyncio.Task[None]] = set()
        self._accepted: list[tuple[Accepted, DialJob]] = []
        self.stats = DispatchStats()
        self.paused_reason: str | None = None
        self._paused_campaigns: set[int] = set()
        #: dispatch did not use the whole rate at its last tick because the concurrency cap
        #: held it back: the poller may spend the rest (scheduler.pollpace)
        self.spare_rate = True
        #: the last claim was held back by the concurrency cap (a slot may free any moment)
        self.capped = False
        #: the last claim found nothing due
        self.idle = False

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def pipeline_size(self) -> int:
        """Trigger-calls to keep in flight now (the pipeline's size, or the fixed bound)."""
        cap = self.settings.max_inflight_posts
        return cap if self._pipeline is None else min(cap, self._pipeline.target())

    def pause(self, reason: str) -> None:
        self.paused_reason = reason

    async def tick(self) -> int:
        """Claim what can be sent now and start sending it; returns how many were claimed."""
        await self.flush()
        if self.paused_reason is not None:
            self.spare_rate = True
            return 0
        budget = self.pipeline_size - len(self._inflight)
        if budget <= 0:
            self.spare_rate = False  # the pipeline is full: dispatch is bound by the rate
            return 0
        now = self._clock()
        res = await dbexec.run(
            claims.claim_due,
            self._engine,
            daemon_id=self._daemon_id,
            now=now,
            limit=budget,
            decide=self._decide,
            lease=self.settings.lease,
            max_live=self.settings.max_live_calls,
            providers=(self._client.name,),
        )
        self.spare_rate = res.capped
        self.idle = not res.jobs and not res.capped
        self.capped = res.capped
        self.stats.claimed += len(res.jobs)
        self.stats.deferred += res.deferred
        for k, v in res.closed.items():
            self.stats.closed[k] = self.stats.closed.get(k, 0) + v
        for job in res.jobs:
            task = asyncio.create_task(self._dial(job), name=f"dial-{job.attempt_id}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return len(res.jobs)

    async def drain(self, timeout: float) -> int:
        """Wait for in-flight trigger-calls; those still running after ``timeout`` are
        cancelled and recorded ``unknown`` (they may have been sent). Returns that count."""
        pending: set[asyncio.Task[None]] = set()
        if self._inflight:
            _done, pending = await asyncio.wait(set(self._inflight), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        await self.flush()
        return len(pending)

    async def _dial(self, job: DialJob) -> None:
        camp = job.campaign
        sent_at = self._clock()
        try:
            result = await self._client.place_call(
                dial_request(
                    camp,
                    phone_e164=job.phone_e164,
                    name=job.name,
                    metadata=job.metadata,
                    client_ref=attempt_ref(job.attempt_id),
                )
            )
        except asyncio.CancelledError:
            await asyncio.shield(self._settle_unknown(job, sent_at, "cancelled at shutdown", None))
            raise
        except NotSentError as exc:
            self._reach.not_sent(exc)
            await self._settle_error(job, sent_at, exc)
            return
        except ProviderError as exc:
            self._reach.reached()  # a connection was made: whatever failed, the API is reachable
            await self._settle_error(job, sent_at, exc)
            return
        except Exception as exc:  # a bug must not leave the attempt reserved: reconcile it
            log.exception("unexpected error sending attempt %s", job.attempt_id)
            await self._settle_unknown(job, sent_at, f"unexpected {type(exc).__name__}", None)
            return
        self._reach.reached()
        # settled in batches by flush(): one transaction per tick instead of one per call
        self._accepted.append(
            (
                Accepted(
                    attempt_id=job.attempt_id,
                    call_id=result.call_id,
                    sent_at=sent_at,
                    accepted_at=self._clock(),
                ),
                job,
            )
        )

    async def flush(self) -> None:
        """Record the call_ids received since the last flush (a crash before this leaves
        reserved attempts that the next start reconciles against the history)."""
        if not self._accepted:
            return
        batch, self._accepted = self._accepted, []
        settled = await dbexec.run(
            settle.record_accepted_many,
            self._engine,
            [item for item, _job in batch],
            outcome_deadline=self.settings.outcome_deadline,
        )
        for ok, (item, job) in zip(settled, batch, strict=True):
            self.stats.accepted += 1
            if not ok:  # our claim was judged stale meanwhile: the poller links the call
                log.warning(
                    "call placed after its claim was reconciled",
                    extra={"event": "late_accept", "call_id": item.call_id},
                )
                continue
            log.info(
                "call placed",
                extra={
                    "event": "call_placed",
                    "campaign_id": job.campaign.id,
                    "contact_id": job.contact_id,
                    "attempt": job.attempt_no,
                    "call_id": item.call_id,
                },
            )

    async def _settle_unknown(
        self, job: DialJob, sent_at: datetime, error: str, status: int | None
    ) -> None:
        await dbexec.run(
            settle.record_unknown,
            self._engine,
            job.attempt_id,
            sent_at=sent_at,
            now=self._clock(),
            error=error,
            http_status=status,
        )
        self.stats.unknown += 1
        log.warning(
            "answer lost; will reconcile against the call history",
            extra={"event": "answer_lost", "contact_id": job.contact_id, "error": error},
        )

    async def _not_placed(
        self, job: DialJob, exc: ProviderError, retry_in: timedelta | None
    ) -> None:
        """Certainly not placed: the write-ahead attempt is deleted (it is no attempt and
        takes no number) and the contact is due again ``retry_in`` from now."""
        now = self._clock()
        await dbexec.run(
            settle.record_not_placed,
            self._engine,
            job.attempt_id,
            now=now,
            retry_at=(now + retry_in) if retry_in else None,
        )
        self.stats.not_placed += 1
        log.debug(
            "call not placed; the contact is back in the queue: %s",
            exc,
            extra={"event": "not_placed", "contact_id": job.contact_id},
        )

    async def _settle_error(self, job: DialJob, sent_at: datetime, exc: ProviderError) -> None:
        status = exc.status_code
        if isinstance(exc, AnswerLostError):  # includes 5xx on the POST
            await self._settle_unknown(job, sent_at, str(exc), status)
        elif isinstance(exc, RateLimitedError):
            wait = exc.retry_after or self.settings.not_sent_backoff.total_seconds()
            await self._not_placed(job, exc, timedelta(seconds=wait))
        elif isinstance(exc, NotSentError):
            await self._not_placed(job, exc, self.settings.not_sent_backoff)
        elif isinstance(exc, AccountError):
            await self._not_placed(job, exc, None)
            self._on_account_error(exc, job)
        elif isinstance(exc, NotFoundError):
            # trigger-call 404: the agent does not exist; every contact would fail the same way
            await self._not_placed(job, exc, None)
            self._on_account_error(
                ForbiddenError(
                    f"agent {job.campaign.agent_id!r} not found (404)",
                    status_code=404,
                    method=exc.method,
                    path=exc.path,
                    detail=getattr(exc, "detail", None),
                ),
                job,
            )
        elif isinstance(exc, ValidationError | APIStatusError):
            reason = f"rejected by the API ({status}): {getattr(exc, 'detail', None) or exc}"
            await dbexec.run(
                settle.record_rejected,
                self._engine,
                job.attempt_id,
                now=self._clock(),
                contact_state=ContactState.INVALID,
                reason=reason,
                http_status=status,
            )
            self.stats.rejected += 1
            log.warning("call rejected", extra={"event": "call_rejected", "reason": reason})
        else:  # ProtocolError and anything else: the call may exist
            await self._settle_unknown(job, sent_at, str(exc), status)


def dial_request(
    camp: CampaignRecord,
    *,
    phone_e164: str,
    name: str,
    metadata: Mapping[str, Any],
    client_ref: str | None,
) -> DialRequest:
    """The request that places one of ``camp``'s calls: its agent, caller id, voice and
    options, to ``phone_e164`` with a contact's name and metadata. Written once for the
    dispatcher and ``campaign test-call``, so that a test call goes out exactly as the
    campaign's own calls do."""
    return DialRequest(
        agent_id=camp.agent_id,
        phone_e164=phone_e164,
        name=name,
        metadata=metadata,
        caller_id=camp.outbound_number,
        voice=camp.voice,
        options=camp.call_options or {},
        client_ref=client_ref,
    )


def account_error_scope(exc: AccountError) -> str:
    """``"daemon"`` for errors that stop every campaign (401, 402), ``"campaign"`` for the
    ones tied to one campaign's agent (403, 404)."""
    if isinstance(exc, AuthenticationError | InsufficientBalanceError):
        return "daemon"
    return "campaign"
