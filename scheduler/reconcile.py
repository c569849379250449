"""Reconciling attempts whose trigger-call answer was lost, against the call history.

A POST that timed out after sending, was reset, or got a 5xx may or may not have placed the
call (invariant 3: it is never blindly repeated). Its attempt is ``unknown``. The poller reads
the call history anyway; :func:`match_unknown` looks there for a call to the same number
(same agent when the record names one) created at or after the attempt (minus a clock-skew
margin) and not already linked to another attempt:

* found: the attempt becomes ``accepted`` with that call_id
  (:func:`storage.attempts.mark_reconciled`) and is then followed like any other call;
* not found in a history read back past the attempt's time: its call cannot be live, so it
  stops holding a slot of the concurrency cap (``Verdicts.absent``), but the contact stays
  blocked;
* not found, once the history has been read back past the attempt's time and a grace period
  after sending has passed: the call was never placed. The attempt becomes ``not_placed`` and
  the contact is due again at once, its attempt count given back
  (:func:`storage.attempts.mark_not_placed`).

Claims of daemons that died mid-dispatch (:func:`storage.attempts.reconcile_stale_claims`)
become ``unknown`` the same way, so that they are reconciled rather than re-dialled blindly.

The matching is a pure function of values, so it is tested without a database or a server.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scheduler.providers.base import DEFAULT_SKEW, CallQuery, CallRecord, attempt_ref, phone_key

#: How long after sending we wait for a lost call to show up before declaring it not placed.
DEFAULT_GRACE = timedelta(seconds=60)
#: How long after sending a lost call missing from the history stops holding a slot (the
#: history may lag the call's creation a little; a call found later takes its slot back).
DEFAULT_SETTLE = timedelta(seconds=2)


@dataclass(frozen=True, kw_only=True)
class UnknownAttempt:
    """An attempt whose POST answer was lost, with what matching needs."""

    attempt_id: int
    contact_id: int
    phone_e164: str
    agent_id: str | None
    created_at: datetime  # reserved at: the call cannot be older than this
    sent_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class HistoryCoverage:
    """How much of the call history a poll has read: back to ``oldest`` (the oldest
    ``created_at`` seen), and whether it reached the very end."""

    oldest: datetime | None
    reached_end: bool

    def covers(self, since: datetime) -> bool:
        """Has every call created at or after ``since`` been read?"""
        return self.reached_end or (self.oldest is not None and self.oldest < since)


@dataclass
class Verdicts:
    """The result of matching: attempt id -> its call, and the attempts never placed."""

    matched: dict[int, CallRecord] = field(default_factory=dict)
    not_placed: list[int] = field(default_factory=list)
    undecided: list[int] = field(default_factory=list)
    #: undecided attempts not in a history read past their time (and ``settle`` after
    #: sending): their call cannot be live, so they free their slot; the contact stays
    #: blocked until the grace has passed (invariant 3)
    absent: list[int] = field(default_factory=list)


def match_unknown(
    attempts: Sequence[UnknownAttempt],
    records: Iterable[CallRecord],
    *,
    linked: Collection[str],
    coverage: HistoryCoverage,
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
    grace: timedelta = DEFAULT_GRACE,
    busy_phones: Collection[str] = (),
    settle: timedelta = DEFAULT_SETTLE,
) -> Verdicts:
    """Decide each unknown attempt from the history records read in this poll.

    ``linked`` holds call_ids already recorded on some attempt (they belong to another
    attempt). Attempts are matched oldest first, each to the oldest fitting record, so that
    two lost attempts to one number take two different calls. ``busy_phones`` are numbers
    with a trigger-call still in flight elsewhere: a call to such a number might be that
    one's, so those attempts wait for the next poll.
    """
    verdicts = Verdicts()
    taken = set(linked)
    pool = sorted(
        (r for r in records if r.call_id not in taken),
        key=lambda r: (r.created_at is None, r.created_at or now),
    )
    busy = {phone_key(p) for p in busy_phones}
    for attempt in sorted(attempts, key=lambda a: (a.created_at, a.attempt_id)):
        if phone_key(attempt.phone_e164) in busy:
            verdicts.undecided.append(attempt.attempt_id)
            continue
        query = CallQuery(
            phone_e164=attempt.phone_e164,
            since=attempt.created_at,
            agent_id=attempt.agent_id,
            # providers that echo our reference match by it; others by number and time
            client_ref=attempt_ref(attempt.attempt_id),
            skew=skew,
        )
        found = next((r for r in pool if r.call_id not in taken and query.matches(r)), None)
        if found is not None:
            taken.add(found.call_id)
            verdicts.matched[attempt.attempt_id] = found
            continue
        sent = attempt.sent_at or attempt.created_at
        covered = coverage.covers(attempt.created_at - skew)
        if covered and now >= sent + grace:
            verdicts.not_placed.append(attempt.attempt_id)
        else:
            verdicts.undecided.append(attempt.attempt_id)
            if covered and now >= sent + settle:
                verdicts.absent.append(attempt.attempt_id)
    return verdicts
