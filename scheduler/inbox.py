"""Applying pushed events: the daemon side of the webhook inbox (``storage.inbox``).

:meth:`Inbox.receive` stores a verified event (the receiver answers 200 only after that) and
applies it at once when its call id is already on an attempt. An event that arrived before
dispatch recorded its call id (the POST's answer is still on its way, or was lost and is being
reconciled) stays pending; :meth:`Inbox.run_sweeps` applies pending events every
``sweep_every`` seconds, so it settles its call within that time of the call id landing.

An outcome is applied exactly as the poller applies one it looked up
(``scheduler.outcomes.outcome_result``, then ``storage.outcomes``' compare-and-set with
``campaigns.dialing.OutcomeRules``, here in the transaction that marks the events applied):
what an event means for the contact is the same rule.
Applying is idempotent: an event replayed, or one for an attempt the poller already settled,
changes nothing but its own ``applied_at``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from campaigns.dialing import OutcomeRules, PolicyCache
from scheduler import dbexec
from scheduler.breaker import report_trip
from scheduler.errors import ProtocolError
from scheduler.outcomes import outcome_result
from scheduler.providers.base import EventSource, PushedEvent
from scheduler.sweep import PushSweep
from storage.engine import Engine
from storage.inbox import ReadyEvent, apply_events, ready_events, store_event
from storage.models import utcnow
from storage.outcomes import CallResult
from storage.states import AttemptState

log = logging.getLogger("vaani.inbox")

#: seconds between two passes over the pending events
SWEEP_EVERY = 0.5


class Inbox:
    """Stores and applies the events of the providers ``run --listen`` receives events for."""

    def __init__(
        self,
        engine: Engine,
        sources: Mapping[str, EventSource],
        *,
        sweeps: Mapping[str, PushSweep] | None = None,
        clock: Callable[[], datetime] = utcnow,
        policies: PolicyCache | None = None,
    ) -> None:
        self.engine = engine
        self.sources = dict(sources)
        self.sweeps = dict(sweeps or {})
        self.clock = clock
        self._rules = OutcomeRules(policies)
        self.settled = 0  # calls settled by events, all providers

    async def receive(self, provider: str, event: PushedEvent) -> bool:
        """Keep ``event`` (False: already kept, a replay) and apply it if its call is known."""
        stored = await dbexec.run(
            store_event,
            self.engine,
            provider=provider,
            event_id=event.event_id,
            call_id=event.call_id,
            kind=event.kind,
            payload=event.raw,
            now=self.clock(),
            applied=event.outcome is None,
        )
        if stored and event.outcome is not None:
            try:
                await self.apply(provider, call_id=event.call_id)
            except Exception:  # kept: the sweep applies it (the sender need not resend)
                log.exception(
                    "applying an event failed; the sweep retries it",
                    extra={"event": "inbox_error", "provider": provider},
                )
        return stored

    def _result(self, provider: str, ready: ReadyEvent) -> CallResult | None:
        """What the stored event settles its attempt with, or None for nothing to do."""
        if ready.attempt_state != AttemptState.ACCEPTED.value:
            return None  # settled already (by the poller, or an earlier event)
        try:
            body = json.dumps(ready.event.payload).encode()
            pushed = self.sources[provider].parse_event(body)
        except (ProtocolError, KeyError, TypeError, ValueError) as exc:
            log.warning(
                "stored event unreadable, skipped: %s",
                exc,
                extra={"event": "inbox_unreadable", "inbox_id": ready.event.id},
            )
            return None
        return outcome_result(pushed.outcome) if pushed.outcome is not None else None

    async def apply(self, provider: str, *, call_id: str | None = None) -> int:
        """Apply the pending events of ``provider`` (of one call) whose call id is known;
        the number of calls they settled."""
        ready = await dbexec.run(ready_events, self.engine, provider, call_id=call_id)
        if not ready:
            return 0
        todo: list[tuple[ReadyEvent, CallResult]] = []
        for item in ready:
            result = self._result(provider, item)
            if result is not None:
                todo.append((item, result))
        applied = await dbexec.run(
            apply_events,
            self.engine,
            [r.event.id for r in ready],
            [(item.attempt_id, result) for item, result in todo],
            now=self.clock(),
            rules=self._rules,
        )
        settled = 0
        for (item, result), done in zip(todo, applied, strict=True):
            if done is None:
                continue
            if done.tripped is not None:
                report_trip(done.tripped, source="webhook")
            settled += 1
            log.info(
                "call finished",
                extra={
                    "event": "outcome",
                    "source": "webhook",
                    "call_id": item.event.call_id,
                    "contact_id": done.contact_id,
                    "outcome": result.outcome.value,
                    "contact_state": done.contact_state,
                    "opted_out": done.opted_out,
                },
            )
        self.settled += settled
        sweep = self.sweeps.get(provider)
        if sweep is not None and settled:
            sweep.settled(settled)
        return settled

    async def run_sweeps(self, every: float = SWEEP_EVERY) -> None:
        """Apply pending events of every provider each ``every`` seconds, until cancelled."""
        while True:
            for provider in self.sources:
                try:
                    await self.apply(provider)
                except Exception:  # the next pass tries again; the events are kept
                    log.exception("applying pending events failed", extra={"event": "inbox_error"})
            await asyncio.sleep(every)
