"""Bringing outcomes back: one poll of the call history, shared by every call awaiting one.

Each :meth:`OutcomePoller.poll_once`:

1. loads the live attempts (``accepted`` calls awaiting an outcome, ``unknown`` lost answers);
   with none, it makes no request at all;
2. pages ``GET /api/call-history`` newest first and stops as soon as every call it needs has
   been seen, or at the page whose oldest record is older than the oldest call still needed
   (its ``sent_at`` minus a clock-skew margin) -- never further (:mod:`scheduler.history`).
   Records that are not ours (other agents, inbound calls, background traffic) are simply not
   matched;
3. reconciles ``unknown`` attempts against those same records (:mod:`scheduler.reconcile`)
   before any outcome is applied, so the history is read once per poll;
4. for each of our calls the history shows final, fetches ``/api/call_details`` once for the
   summary and entity (concurrently), and applies all those outcomes in one transaction
   (:func:`storage.outcomes.apply_outcomes`).
   When details fail (404, 5xx) the call is retried next poll; after a few failed polls the
   outcome is applied from the history alone, never left hanging (the transaction is
   ``storage.outcomes``'s; what an outcome means is ``campaigns.dialing.OutcomeRules``'s);
5. calls past their outcome deadline that the history did not show final are looked up
   directly (at most once per ``lookup_every``), and past twice the deadline finished as
   ``no_outcome``.

The cost is one details request per finished call plus history pages shared by all the calls
finishing in a poll interval (``benchmarks/bench_polling.py`` measures it).

The module is over the 400-line guideline (about 480): the owner filter, the slot freeing,
the background details fetches and the webhook sweep all act on one poll's state; they should
move into their own modules next (noted in issue 9).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from campaigns.dialing import OutcomeRules, PolicyCache, cancelled_by_campaign
from scheduler import dbexec
from scheduler.breaker import report_trip
from scheduler.errors import AccountError, ProviderError
from scheduler.fetches import BackgroundFetches
from scheduler.history import HistoryReader, OutcomeAPI, PollStats
from scheduler.outcomes import classify, outcome_result
from scheduler.pipeline import Pipeline
from scheduler.providers.base import CallOutcome, CallRecord
from scheduler.reconcile import (
    DEFAULT_GRACE,
    DEFAULT_SKEW,
    HistoryCoverage,
    UnknownAttempt,
    match_unknown,
    phone_key,
)
from scheduler.sweep import SweepGate
from storage.attempts import (
    LiveAttempt,
    free_slots,
    linked_call_ids,
    load_live,
    mark_not_placed,
    mark_reconciled,
)
from storage.breaker import Trip
from storage.engine import Engine
from storage.models import utcnow
from storage.outcomes import Applied, CallResult, apply_outcome, apply_outcomes
from storage.states import AttemptState, Outcome

log = logging.getLogger("vaani.poller")

#: Polls with failing details after which the outcome is applied from the history alone.
MAX_DETAILS_FAILURES = 3
#: Outcomes applied per transaction at most.
APPLY_BATCH = 200
#: A history read that took longer than this is followed by a fresh load of the accepted calls.
STALE_AFTER = timedelta(seconds=1)


class OutcomePoller:
    """Reads outcomes back from the API for every live attempt. One per daemon."""

    def __init__(
        self,
        engine: Engine,
        client: OutcomeAPI,
        *,
        page_size: int = 100,
        outcome_deadline: timedelta,
        clock: Callable[[], datetime] = utcnow,
        skew: timedelta = DEFAULT_SKEW,
        grace: timedelta = DEFAULT_GRACE,
        lookup_every: timedelta = timedelta(seconds=60),
        max_pages: int = 50,
        details_concurrency: int = 16,
        policies: PolicyCache | None = None,
    ) -> None:
        if outcome_deadline <= timedelta(0):
            raise ValueError("the outcome deadline must be positive")
        self.engine = engine
        self.client = client
        self.outcome_deadline = outcome_deadline
        self.clock = clock
        self.skew = skew
        self.grace = grace
        self.lookup_every = lookup_every
        self._history = HistoryReader(page_size=page_size, max_pages=max_pages, skew=skew)
        self.details_concurrency = details_concurrency
        self._details_slots = asyncio.Semaphore(details_concurrency)  # renewed per poll
        #: sizes the details fetches in flight by Little's law (scheduler.pipeline) when set;
        #: ``details_concurrency`` is then the least
        self.pipeline: Pipeline | None = None
        #: details fetched across polls (the daemon's choice; None: within each poll)
        self.background: BackgroundFetches[tuple[LiveAttempt, CallResult]] | None = None
        #: the daemon whose live calls this poller reads (None: every daemon's); the daemon
        #: adopts the calls of daemons that stopped (``storage.owners``)
        self.owner: str | None = None
        self._rules = OutcomeRules(policies)  # the daemon shares its cache with the dispatcher
        self._details_failures: dict[int, int] = {}
        self._last_lookup: dict[int, datetime] = {}
        #: set by ``run --listen`` for a provider that pushes outcomes: polls that it says
        #: are not due make no request (polling is then a slow sweep, ``scheduler.sweep``)
        self.sweep: SweepGate | None = None
        #: told each circuit breaker trip this poller's outcomes caused (storage.breaker)
        self.on_trip: Callable[[Trip], None] = report_trip

    # ----------------------------------------------------------------- one poll

    async def poll_once(self) -> PollStats:
        """One round: read the history once, reconcile, apply outcomes, chase overdue calls.

        Raises :class:`~scheduler.errors.AccountError` (401/402/403) for the daemon to pause;
        other request failures end this poll early and the next one picks up where it left.
        """
        stats = PollStats()
        if self.sweep is not None and not self.sweep.due():
            return stats
        # the calls of other providers are read by the daemons that drive those providers
        live, busy = await dbexec.run(
            load_live, self.engine, provider=self.client.name, owner=self.owner
        )
        stats.live = len(live)
        if not live:
            self._details_failures.clear()
            self._last_lookup.clear()
            if self.background is not None:
                self.background.prune(set())
            return stats
        now = self.clock()
        ids = {a.attempt_id for a in live}
        if self.background is not None:
            self.background.prune(ids)
        for memo in (self._details_failures, self._last_lookup):
            for gone in [k for k in memo if k not in ids]:
                del memo[gone]
        accepted = [a for a in live if a.state == AttemptState.ACCEPTED and a.call_id]
        unknown = [a for a in live if a.state == AttemptState.UNKNOWN]
        overdue = {
            a.attempt_id
            for a in accepted
            if a.outcome_deadline_at is not None and a.outcome_deadline_at <= now
        }
        tracked = [a for a in accepted if a.attempt_id not in overdue]
        records, coverage = await self._history.read(self.client, tracked, unknown, stats)
        if self.clock() - now > STALE_AFTER:
            # the read waited (behind dispatch, which goes first): calls accepted meanwhile
            # may be final in these records already. Only accepted ones are taken from the
            # fresh load: unknown attempts are judged against reads made after they were
            accepted = await self._fresh_accepted()
        freeing: list[int] = []  # attempts whose call cannot be live: their slot is freed
        if unknown:
            promoted, absent = await self._reconcile(unknown, records, coverage, busy, stats)
            accepted += promoted
            freeing += absent
        by_call = {a.call_id: a for a in accepted if a.call_id}
        finals: dict[str, tuple[LiveAttempt, CallRecord]] = {}
        for rec in records:
            if rec.call_id in by_call and rec.call_id not in finals and classify(rec.status):
                finals[rec.call_id] = (by_call[rec.call_id], rec)
        size = self.details_concurrency
        if self.pipeline is not None:
            size = max(size, self.pipeline.target())
        self._details_slots = asyncio.Semaphore(size)
        # a call seen ended frees its slot now, before its details are fetched
        freeing += [a.attempt_id for a, _rec in finals.values() if not a.slot_freed]
        if freeing:
            stats.slots_freed = await dbexec.run(free_slots, self.engine, freeing, now=now)
        if self.background is not None:
            await self._fetch_in_background(list(finals.values()), size, stats)
        else:
            await self._fetch_now(list(finals.values()), stats)
        for attempt in accepted:
            if attempt.attempt_id in overdue and attempt.call_id not in finals:
                await self._chase(attempt, now, stats)
        if stats.finished or stats.reconciled or stats.not_placed or stats.no_outcome:
            log.info(
                "poll",
                extra={
                    "event": "poll",
                    "live": stats.live,
                    "finished": stats.finished,
                    "reconciled": stats.reconciled,
                    "not_placed": stats.not_placed,
                    "no_outcome": stats.no_outcome,
                    "requests": stats.requests,
                },
            )
        return stats

    async def _fetch_now(
        self, finals: Sequence[tuple[LiveAttempt, CallRecord]], stats: PollStats
    ) -> None:
        """Fetch the details of ``finals`` and apply them before the poll returns."""
        done = await asyncio.gather(
            *(self._result_for(attempt, rec, stats) for attempt, rec in finals),
            return_exceptions=True,
        )
        ready = [r for r in done if isinstance(r, tuple)]
        for start in range(0, len(ready), APPLY_BATCH):
            await self._apply_many(ready[start : start + APPLY_BATCH], stats)
        errors = [e for e in done if isinstance(e, BaseException)]
        if errors:  # an AccountError (the daemon pauses) or a bug, once the rest is applied
            raise next((e for e in errors if isinstance(e, AccountError)), errors[0])

    async def _fetch_in_background(
        self, finals: Sequence[tuple[LiveAttempt, CallRecord]], limit: int, stats: PollStats
    ) -> None:
        """Submit the fetches of ``finals`` not yet under way (``limit`` running at once),
        then apply those finished since the last poll."""
        bg = self.background
        assert bg is not None
        bg.limit = limit
        for attempt, rec in finals:
            bg.submit(attempt.attempt_id, functools.partial(self._result_for, attempt, rec, stats))
        await self.apply_fetched(stats)

    async def apply_fetched(
        self, stats: PollStats | None = None, *, raise_errors: bool = True
    ) -> None:
        """Apply the outcomes whose details were fetched in the background since the last
        time (also at shutdown); raise the first fetch failure once they are applied (or
        keep it for the next poll, with ``raise_errors=False``)."""
        bg = self.background
        if bg is None:
            return
        stats = stats or PollStats()
        ready = bg.take()
        for start in range(0, len(ready), APPLY_BATCH):
            batch = ready[start : start + APPLY_BATCH]
            try:
                await self._apply_many(batch, stats)
            finally:
                bg.applied([a.attempt_id for a, _r in batch])
        exc = bg.error() if raise_errors else None
        if exc is not None:
            raise exc

    async def _fresh_accepted(self) -> list[LiveAttempt]:
        live, _busy = await dbexec.run(
            load_live, self.engine, provider=self.client.name, owner=self.owner
        )
        return [a for a in live if a.state == AttemptState.ACCEPTED and a.call_id]

    # ----------------------------------------------------------------- lost answers

    async def _reconcile(
        self,
        unknown: Sequence[LiveAttempt],
        records: Sequence[CallRecord],
        coverage: HistoryCoverage,
        busy: Sequence[str],
        stats: PollStats,
    ) -> tuple[list[LiveAttempt], list[int]]:
        """Decide the unknown attempts; return those that became accepted, and the ids of
        those absent from the history (still undecided, their slot may be freed)."""
        phones = {phone_key(a.phone_e164) for a in unknown}
        relevant = [r for r in records if phone_key(r.contact_number) in phones]
        ids = {r.call_id for r in relevant}
        # call ids are unique per provider, and every attempt here is this client's provider's
        linked = await dbexec.run(linked_call_ids, self.engine, self.client.name, ids)
        now = self.clock()
        verdicts = match_unknown(
            [
                UnknownAttempt(
                    attempt_id=a.attempt_id,
                    contact_id=a.contact_id,
                    phone_e164=a.phone_e164,
                    agent_id=a.agent_id,
                    created_at=a.created_at,
                    sent_at=a.sent_at,
                )
                for a in unknown
            ],
            relevant,
            linked=linked,
            coverage=coverage,
            now=now,
            skew=self.skew,
            grace=self.grace,
            busy_phones=busy,
        )
        by_id = {a.attempt_id: a for a in unknown}
        promoted: list[LiveAttempt] = []
        for attempt_id, rec in verdicts.matched.items():
            ok = await dbexec.run(
                mark_reconciled,
                self.engine,
                attempt_id,
                call_id=rec.call_id,
                call_started_at=rec.created_at,
                now=now,
                outcome_deadline=self.outcome_deadline,
            )
            if ok:
                stats.reconciled += 1
                promoted.append(
                    replace(
                        by_id[attempt_id],
                        state=AttemptState.ACCEPTED.value,
                        call_id=rec.call_id,
                        outcome_deadline_at=now + self.outcome_deadline,
                        slot_freed=False,  # mark_reconciled gave it its slot back
                    )
                )
                log.info(
                    "lost answer reconciled: the call was placed",
                    extra={"event": "reconciled", "attempt_id": attempt_id, "call_id": rec.call_id},
                )
        tripped: list[Trip] = []
        for attempt_id in verdicts.not_placed:
            reason = (
                "answer lost and no matching call in the history: not placed "
                "(the contact is due again)"
            )
            if await dbexec.run(
                mark_not_placed,
                self.engine,
                attempt_id,
                now=now,
                reason=reason,
                cancel_if=cancelled_by_campaign,
                tripped=tripped,
            ):
                stats.not_placed += 1
                log.info(
                    "lost answer reconciled: the call was not placed",
                    extra={"event": "not_placed", "attempt_id": attempt_id},
                )
        for trip in tripped:
            self.on_trip(trip)
        freed = {a.attempt_id for a in unknown if a.slot_freed}
        return promoted, [i for i in verdicts.absent if i not in freed]

    # ----------------------------------------------------------------- outcomes

    async def _details(self, call_id: str, stats: PollStats, *, lookup: bool) -> CallOutcome:
        async with self._details_slots:
            if lookup:
                stats.lookups += 1
            else:
                stats.details_requests += 1
            return await self.client.outcome(call_id)

    async def _result_for(
        self, attempt: LiveAttempt, rec: CallRecord, stats: PollStats
    ) -> tuple[LiveAttempt, CallResult] | None:
        """The history shows ``rec`` final: fetch details once; the result to apply, or None
        to try again next poll."""
        assert attempt.call_id is not None
        details: CallOutcome | None = None
        try:
            details = await self._details(attempt.call_id, stats, lookup=False)
        except AccountError:
            raise
        except ProviderError as exc:
            stats.details_failures += 1
            failures = self._details_failures.get(attempt.attempt_id, 0) + 1
            self._details_failures[attempt.attempt_id] = failures
            if failures < MAX_DETAILS_FAILURES:
                log.warning(
                    "call details failed; retrying next poll: %s",
                    exc,
                    extra={"event": "details_failed", "call_id": attempt.call_id},
                )
                return None
            log.warning(
                "call details failed %d times; outcome taken from the history alone",
                failures,
                extra={"event": "details_given_up", "call_id": attempt.call_id},
            )
        outcome = classify(rec.status)
        assert outcome is not None
        result = CallResult(
            outcome=outcome,
            call_status=rec.raw_status,
            duration_ms=rec.duration_ms
            if rec.duration_ms is not None
            else (details.duration_ms if details else None),
            summary=details.summary if details else None,
            entity=dict(details.entities) if details else None,
            raw=dict(rec.raw),
            call_started_at=rec.created_at,
            details_fetched=details is not None,
            error=None if details else "call details unavailable; outcome from the history",
            transcript=details.transcript if details else None,  # kept in call_transcripts
        )
        return attempt, result

    async def _apply_many(
        self, ready: Sequence[tuple[LiveAttempt, CallResult]], stats: PollStats
    ) -> None:
        """Apply several outcomes in one transaction (one commit per poll, not per call)."""
        applied = await dbexec.run(
            apply_outcomes,
            self.engine,
            [(a.attempt_id, r) for a, r in ready],
            now=self.clock(),
            rules=self._rules,
        )
        for (attempt, result), done in zip(ready, applied, strict=True):
            self._record(attempt, result, done, stats)

    async def _apply(self, attempt: LiveAttempt, result: CallResult, stats: PollStats) -> None:
        applied = await dbexec.run(
            apply_outcome,
            self.engine,
            attempt.attempt_id,
            result,
            now=self.clock(),
            rules=self._rules,
        )
        self._record(attempt, result, applied, stats)

    def _record(
        self, attempt: LiveAttempt, result: CallResult, applied: Applied | None, stats: PollStats
    ) -> None:
        self._details_failures.pop(attempt.attempt_id, None)
        self._last_lookup.pop(attempt.attempt_id, None)
        if applied is None:  # another daemon applied it first
            return
        if applied.tripped is not None:
            self.on_trip(applied.tripped)
        if result.outcome is Outcome.NO_OUTCOME:
            stats.no_outcome += 1
        else:
            stats.finished += 1
        log.info(
            "call finished",
            extra={
                "event": "outcome",
                "call_id": attempt.call_id,
                "contact_id": applied.contact_id,
                "outcome": result.outcome.value,
                "contact_state": applied.contact_state,
                "opted_out": applied.opted_out,
            },
        )

    async def _chase(self, attempt: LiveAttempt, now: datetime, stats: PollStats) -> None:
        """An overdue call: look it up directly; past twice the deadline, flag no_outcome."""
        assert attempt.call_id is not None and attempt.outcome_deadline_at is not None
        flag_at = attempt.outcome_deadline_at + self.outcome_deadline
        last = self._last_lookup.get(attempt.attempt_id)
        if last is not None and now - last < self.lookup_every and now < flag_at:
            return
        self._last_lookup[attempt.attempt_id] = now
        details: CallOutcome | None = None
        problem = "no status"
        try:
            details = await self._details(attempt.call_id, stats, lookup=True)
        except AccountError:
            raise
        except ProviderError as exc:
            problem = f"lookup failed: {exc}"
        result = outcome_result(details) if details is not None else None
        if result is not None:
            await self._apply(attempt, result, stats)
            return
        if now < flag_at:
            return
        if details is not None:
            problem = f"last status {details.raw_status or 'unknown'}"
        result = CallResult(
            outcome=Outcome.NO_OUTCOME,
            call_status=details.raw_status if details else None,
            raw={k: v for k, v in details.raw.items() if k != "transcript"} if details else None,
            details_fetched=details is not None,
            error=f"no outcome reported within {self.outcome_deadline * 2} ({problem})",
        )
        await self._apply(attempt, result, stats)
