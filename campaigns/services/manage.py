"""Use cases: manage a campaign after its creation (edit, requeue, list contacts, archive,
delete), for the command line and the console alike.

An edit is checked by :func:`campaigns.services.create.check_campaign`, the very checks of
``campaign create``: the campaign's current settings with the changes laid over them make a
:class:`~campaigns.services.create.CampaignSpec`, and only the changed columns are written. A
retry delay that is not being changed is not held against today's floor (it was checked
when it was set). The storage steps are in :mod:`storage.manage`; here they get the words a
person needs (an unknown id names where to look, a refused step says what to do instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from campaigns.errors import UserError
from campaigns.services.breaker import BreakerValues, check_breaker
from campaigns.services.create import MIN_RETRY_DELAY, CampaignSpec, check_campaign
from storage import campaigns_repo, manage
from storage.campaigns_repo import CampaignRecord
from storage.contacts import MAX_PAGE, ContactRow, contact_page
from storage.engine import Engine
from storage.errors import NotFound
from storage.manage import REQUEUEABLE, Deleted, Edited, Requeued
from storage.states import ContactState, Outcome

LIST_HINT = "see: vaani-campaigns campaign list"
#: ``--end-at none`` / ``--daily-cap none``: remove the setting.
CLEAR = frozenset({"none", "off", ""})
#: A pseudo-state of ``requeue --state``: closed contacts whose last call never reported.
NO_OUTCOME = Outcome.NO_OUTCOME.value


@dataclass(frozen=True, kw_only=True)
class CampaignEdit:
    """The settings to change, as a person types them (None: leave as is)."""

    window: str | None = None
    days: str | None = None
    start_at: str | None = None  # ISO 8601, or "none" to remove
    end_at: str | None = None
    max_attempts: int | None = None
    retry_delay: str | None = None
    daily_cap: str | None = None  # calls per number per 24 h, or "none"
    caller_id: str | None = None
    breaker: str | None = None  # "50%/20" (campaigns/services/breaker.py)
    no_breaker: bool | None = None  # True: turn the circuit breaker off

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def _campaign(engine: Engine, campaign_id: int) -> CampaignRecord:
    try:
        return campaigns_repo.get_campaign(engine, campaign_id)
    except NotFound as exc:
        raise NotFound(f"{exc} ({LIST_HINT})") from None


def _instant(given: str | None, current: datetime | None) -> str | None:
    if given is None:
        return current.isoformat() if current else None
    return None if given.strip().lower() in CLEAR else given


def _daily_cap(value: str) -> int | None:
    if value.strip().lower() in CLEAR:
        return None
    try:
        cap = int(value)
    except ValueError:
        cap = 0
    if cap < 1:
        raise UserError(f"--daily-cap: a number of calls of at least 1, or none, not {value!r}")
    return cap


def edit_campaign(
    engine: Engine,
    campaign_id: int,
    edit: CampaignEdit,
    *,
    min_retry_delay: timedelta = MIN_RETRY_DELAY,
) -> Edited:
    """Change the campaign's settings; a running daemon uses them from its next tick.
    Raises :class:`UserError` naming the option, or :class:`NotFound`."""
    if edit.is_empty():
        raise UserError(
            "nothing to change: give --window, --days, --start-at, --end-at, --max-attempts, "
            "--retry-delay, --daily-cap, --caller-id, --breaker or --no-breaker"
        )
    c = _campaign(engine, campaign_id)
    spec = CampaignSpec(
        name=c.name,
        agent_id=c.agent_id,
        window=edit.window or f"{c.window_start}-{c.window_end}",
        days=edit.days or c.days,
        timezone=c.timezone,
        max_attempts=c.max_attempts if edit.max_attempts is None else edit.max_attempts,
        retry_delay=edit.retry_delay or f"{c.retry_delay_s}s",
        start_at=_instant(edit.start_at, c.start_at),
        end_at=_instant(edit.end_at, c.end_at),
        caller_id=c.outbound_number if edit.caller_id is None else edit.caller_id,
        voice=c.voice,
        provider=c.provider,
    )
    floor = min_retry_delay if edit.retry_delay is not None else timedelta(0)
    new = check_campaign(spec, min_retry_delay=floor)
    values: dict[str, Any] = {}
    if edit.window is not None:
        values |= {"window_start": new.window_start, "window_end": new.window_end}
    if edit.days is not None:
        values["days"] = new.days
    if edit.start_at is not None:
        values["start_at"] = new.start_at
    if edit.end_at is not None:
        values["end_at"] = new.end_at
    if edit.max_attempts is not None:
        values["max_attempts"] = new.max_attempts
    if edit.retry_delay is not None:
        values["retry_delay_s"] = new.retry_delay_s
    if edit.caller_id is not None:
        values["outbound_number"] = new.outbound_number
    if edit.daily_cap is not None:
        values["daily_cap_per_number"] = _daily_cap(edit.daily_cap)
    if edit.breaker is not None or edit.no_breaker:
        current = BreakerValues(
            enabled=c.breaker_enabled, threshold=c.breaker_threshold, window=c.breaker_window
        )
        fuse = check_breaker(edit.breaker, bool(edit.no_breaker), current=current)
        values |= {
            "breaker_enabled": fuse.enabled,
            "breaker_threshold": fuse.threshold,
            "breaker_window": fuse.window,
        }
    return manage.update_settings(engine, campaign_id, values)


def _split(text: str | None) -> list[str]:
    return [p.strip().lower() for p in (text or "").split(",") if p.strip()]


def _outcomes(text: str | None) -> list[str]:
    outcomes = _split(text)
    known = [o.value for o in Outcome]
    for o in outcomes:
        if o not in known:
            raise UserError(f"--outcome: unknown outcome {o!r}: expected {', '.join(known)}")
    return outcomes


def requeue_contacts(
    engine: Engine, campaign_id: int, *, states: str, outcomes: str | None = None
) -> Requeued:
    """Fresh attempts for the closed contacts in ``states`` (comma-separated; ``no_outcome``
    adds closed contacts whose last call never reported), filtered by their last
    ``outcomes``. A completed campaign runs again. Raises :class:`UserError` for a bad
    filter, :class:`NotFound`, or :class:`~storage.errors.InvalidTransition`."""
    wanted = _split(states)
    if not wanted:
        raise UserError("--state: give the states to requeue, e.g. --state exhausted,no_outcome")
    for s in wanted:
        if s not in REQUEUEABLE and s != NO_OUTCOME:
            raise UserError(
                f"--state: {s!r} cannot be requeued: expected {', '.join(REQUEUEABLE)} "
                f"or {NO_OUTCOME} (never invalid or suppressed contacts)"
            )
    chosen = _outcomes(outcomes)
    _campaign(engine, campaign_id)
    return manage.requeue(
        engine,
        campaign_id,
        states=[s for s in wanted if s != NO_OUTCOME],
        outcomes=chosen,
        no_outcome=NO_OUTCOME in wanted,
    )


def iter_contacts(
    engine: Engine, campaign_id: int, *, states: str | None = None, outcomes: str | None = None
) -> Iterator[ContactRow]:
    """The campaign's contacts in import order, filtered by state and last outcome, read page
    by page (keyset: no OFFSET, memory stays flat on a million contacts)."""
    chosen_states = _split(states)
    known = [s.value for s in ContactState]
    for s in chosen_states:
        if s not in known:
            raise UserError(f"--state: unknown state {s!r}: expected {', '.join(known)}")
    chosen_outcomes = _outcomes(outcomes)
    _campaign(engine, campaign_id)
    cursor: int | None = 0
    while cursor is not None:
        page = contact_page(
            engine,
            campaign_id,
            states=chosen_states,
            outcomes=chosen_outcomes,
            cursor=cursor,
            limit=MAX_PAGE,
        )
        yield from page.contacts
        cursor = page.next_cursor


def archive_campaign(engine: Engine, campaign_id: int) -> CampaignRecord:
    """Hide a final campaign from ``campaign list`` (``--all`` shows it)."""
    _campaign(engine, campaign_id)
    return manage.archive(engine, campaign_id)


def delete_campaign(engine: Engine, campaign_id: int, *, confirmed: bool) -> Deleted:
    """Delete the campaign and everything of it. Without ``confirmed``, raises
    :class:`UserError` saying what would go and how to confirm; deletes nothing."""
    campaign, contacts, attempts = manage.count_rows(engine, _campaign(engine, campaign_id).id)
    if not confirmed:
        raise UserError(
            f"campaign delete {campaign_id} removes {campaign.name!r} with its {contacts} "
            f"contacts and {attempts} call attempts for good: add --yes to confirm "
            f"(or keep them and hide it: vaani-campaigns campaign archive {campaign_id})"
        )
    return manage.delete(engine, campaign_id)
