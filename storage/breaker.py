"""The circuit breaker: a campaign whose calls keep failing pauses itself, with the reason and
the last errors, instead of burning through its contact list.

The rule, per campaign (``campaign create/edit --breaker 50%/20``, ``--no-breaker``; on by
default with 50 % of 20): when at least N calls are in the window and **more than** X % of
them failed, the campaign becomes ``paused`` with ``status_reason`` "circuit breaker: 14 of
the last 20 calls failed (70% > 50%)" and the last errors (up to :data:`MAX_ERRORS`: call id,
status, error text) in ``breaker_errors``. Exactly X % does not trip; N - 1 calls never do.

What is a call, and what is a failed one:

* **the window** is the campaign's N most recently settled calls since its last resume
  (``breaker_since``; a resumed campaign starts a fresh window, or it would trip again at
  once): attempts ``finished`` with any outcome, and attempts ``not_placed``;
* **failed**: a call that reached the provider and ended ``failed`` (the provider's status
  failed / error / rejected / declined / an unknown status: :mod:`scheduler.outcomes`), and a
  trigger-call the API answered with a 5xx (after the client's retries) that reconciliation
  then found was never placed (``not_placed`` with a 5xx ``http_status``): the API failed
  it, not the contact. Left unanswered, such a campaign would loop: the contact is given its
  attempt back and dialled again, and the API fails it again;
* **not failed**: answered, no_answer, busy, voicemail (a person did not pick up: normal),
  no_outcome (the call was placed; only its report is missing), and a lost answer without an
  HTTP status reconciled as not placed (a timeout or a reset on our side of the wire, or the
  claims of a daemon that was killed before it sent them: not the provider's doing);
* **not in the window at all**: a 422 refusing the number (``rejected``: a bad row, not a
  broken campaign), 429s and requests that never left or were refused for the account
  (401-404): those are no attempt (``storage.settle``) and have their own handling.

The check runs in the transaction that settles the calls (:func:`storage.outcomes.
apply_outcomes_on`, :func:`storage.attempts.mark_not_placed`), once per campaign touched by
that batch, and reads only the last N settled attempts of the campaign through the index
``ix_attempts_settled`` (campaign, finished_at, id): never a scan of all attempts. The pause is
a compare-and-set on ``running``, so two daemons settling calls of one campaign at once trip
it once, and its ``campaign.paused`` event (for a campaign with a webhook) is written in the
same transaction. Calls already live are not hung up: their outcomes are still collected (and
do not trip a paused campaign again). ``campaign resume`` clears the errors and sets
``breaker_since`` (:mod:`storage.campaigns_repo`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, select, update

from storage import outbox
from storage.models import Attempt, Campaign
from storage.states import AttemptState, CampaignStatus, Outcome

#: The defaults: more than this % of the last DEFAULT_WINDOW calls failed trips the breaker.
DEFAULT_THRESHOLD = 50
DEFAULT_WINDOW = 20
#: The largest window accepted (the check reads that many rows per campaign per batch).
MAX_WINDOW = 1000
#: The errors kept with a tripped campaign, newest first.
MAX_ERRORS = 5
#: Characters of each error text kept.
ERROR_CHARS = 300
#: The attempt states that make a settled call (the window's rows).
SETTLED = (AttemptState.FINISHED.value, AttemptState.NOT_PLACED.value)

_ATTEMPTS = cast(Table, Attempt.__table__)
_CAMPAIGNS = cast(Table, Campaign.__table__)


@dataclass(frozen=True, kw_only=True)
class Trip:
    """A campaign the breaker paused: why, and the last errors (no secret is in them)."""

    campaign_id: int
    name: str
    failed: int
    window: int
    threshold: int
    reason: str
    errors: list[dict[str, Any]] = field(default_factory=list)


def failed_call(state: str, outcome: str | None, http_status: int | None = None) -> bool:
    """Does a settled attempt count as a failed call? (see the module docstring)"""
    if state == AttemptState.NOT_PLACED.value:
        return http_status is not None and http_status >= 500
    return outcome == Outcome.FAILED.value


def should_trip(failed: int, calls: int, *, threshold: int, window: int) -> bool:
    """The rule: a full window (``calls >= window``) with more than ``threshold`` % failed."""
    return calls >= window and failed * 100 > threshold * calls


def reason_text(failed: int, calls: int, threshold: int) -> str:
    """ "circuit breaker: 14 of the last 20 calls failed (70% > 50%)"."""
    pct = failed * 100 / calls
    shown = f"{pct:.0f}" if pct == int(pct) else f"{pct:.1f}"
    return f"circuit breaker: {failed} of the last {calls} calls failed ({shown}% > {threshold}%)"


def _error(row: Any) -> dict[str, Any]:
    if row.state == AttemptState.NOT_PLACED.value:
        status = "not placed" + (f" (HTTP {row.http_status})" if row.http_status else "")
    else:
        status = row.call_status or row.outcome or row.state
    return {
        "attempt_id": int(row.id),
        "call_id": row.call_id,
        "status": status,
        "error": (row.error or "")[:ERROR_CHARS] or None,
        "at": row.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ") if row.finished_at else None,
    }


def describe_error(error: Mapping[str, Any]) -> str:
    """One kept error in words: ``"call abc123: failed (carrier error)"``, ``"attempt 7: not
    placed (HTTP 503) (answer lost ...)"``."""
    who = f"call {error['call_id']}" if error.get("call_id") else f"attempt {error['attempt_id']}"
    text = f"{who}: {error.get('status') or '?'}"
    return text + (f" ({error['error']})" if error.get("error") else "")


_WINDOW_COLUMNS = [
    _ATTEMPTS.c[k]
    for k in ("id", "state", "outcome", "call_id", "call_status", "http_status", "error")
] + [_ATTEMPTS.c.finished_at]
_SETTINGS = select(
    _CAMPAIGNS.c.id,
    _CAMPAIGNS.c.name,
    _CAMPAIGNS.c.status,
    _CAMPAIGNS.c.breaker_enabled,
    _CAMPAIGNS.c.breaker_threshold,
    _CAMPAIGNS.c.breaker_window,
    _CAMPAIGNS.c.breaker_since,
    _CAMPAIGNS.c.webhook_url,
)


def _window_query(campaign_id: int, since: datetime | None, n: int) -> Select[Any]:
    """The campaign's ``n`` most recently settled calls since ``since``, newest first: a
    backward range read of ``ix_attempts_settled``."""
    a = _ATTEMPTS.c
    settled_at = a.finished_at >= since if since is not None else a.finished_at.is_not(None)
    return (
        select(*_WINDOW_COLUMNS)
        .where(a.campaign_id == campaign_id, settled_at, a.state.in_(SETTLED))
        .order_by(a.finished_at.desc(), a.id.desc())
        .limit(n)
    )


def check(conn: Connection, campaign_ids: Iterable[int], *, now: datetime) -> list[Trip]:
    """Judge the windows of ``campaign_ids`` (the campaigns whose calls the caller's
    transaction just settled) and pause, in that transaction, those the rule trips."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return []
    out: list[Trip] = []
    for c in conn.execute(_SETTINGS.where(_CAMPAIGNS.c.id.in_(ids))).all():
        if not c.breaker_enabled or c.status != CampaignStatus.RUNNING.value:
            continue
        rows = conn.execute(_window_query(c.id, c.breaker_since, c.breaker_window)).all()
        failed = [r for r in rows if failed_call(r.state, r.outcome, r.http_status)]
        if not should_trip(
            len(failed), len(rows), threshold=c.breaker_threshold, window=c.breaker_window
        ):
            continue
        reason = reason_text(len(failed), len(rows), c.breaker_threshold)
        errors = [_error(r) for r in failed[:MAX_ERRORS]]
        moved = conn.execute(
            update(_CAMPAIGNS)
            .where(_CAMPAIGNS.c.id == c.id, _CAMPAIGNS.c.status == CampaignStatus.RUNNING.value)
            .values(
                status=CampaignStatus.PAUSED.value,
                status_reason=reason,
                breaker_errors=errors,
                updated_at=now,
            )
        ).rowcount
        if not moved:  # paused, stopped or tripped by another daemon meanwhile
            continue
        if c.webhook_url:
            data = {"name": c.name, "previous_status": c.status, "reason": reason}
            outbox.campaign_event(conn, c.id, outbox.CAMPAIGN_PAUSED, data, now=now)
        out.append(
            Trip(
                campaign_id=c.id,
                name=c.name,
                failed=len(failed),
                window=len(rows),
                threshold=c.breaker_threshold,
                reason=reason,
                errors=errors,
            )
        )
    return out
