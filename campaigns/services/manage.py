"""Use cases: manage a campaign after its creation (edit, requeue, list contacts, archive,
delete), for the command line and the console alike.

An edit is checked by :func:`campaigns.services.create.check_campaign`, the very checks of
``campaign create``: the campaign's current settings with the changes laid over them make a
:class:`~campaigns.services.create.CampaignSpec`, and only the changed columns are written. A
retry delay that is not being changed is not held against today's floor (it was checked
when it was set). The storage steps are in :mod:`storage.manage`; here they get the words a
person needs (an unknown id names where to look, a refused step says what to do instead).

Edits that need a word of their own:

* ``--skip-dates`` / ``--skip-dates-file`` replace the dates (both given: their union, as at
  creation); ``none`` clears them, like ``--retry``, ``--retry-schedule``, ``--holidays``,
  ``--voice`` and ``--webhook-url`` (which removes the secret's fingerprint with it).
* ``--webhook-url`` takes the secret exactly as ``campaign create`` does (``--webhook-secret``
  or ``VAANI_WEBHOOK_SECRET``) and stores only its fingerprint; a secret without a URL is
  ignored, as at creation, so that an exported variable does not re-key every edit. To change
  the secret, give the URL again with the new secret.
* ``--timezone`` is the campaign-wide override the calling policy reads at every decision
  (:meth:`campaigns.calling.CallingPolicy.zones_for`); the contacts keep the zones of their
  numbers as imported, so nothing is recomputed. ``--timezone none`` is refused while some
  waiting contacts have no zone of their own (imported only thanks to the override): they
  could never be called again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from campaigns.calling import UNKNOWN_ZONE
from campaigns.errors import UserError
from campaigns.services.breaker import BreakerValues, check_breaker
from campaigns.services.create import MIN_RETRY_DELAY, CampaignSpec, check_campaign
from campaigns.services.redial import check_delay, check_redial
from storage import campaigns_repo, manage
from storage.campaigns_repo import CampaignRecord
from storage.contacts import MAX_PAGE, ContactRow, contact_page, waiting_zones
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
    timezone: str | None = None  # the campaign-wide zone override, or "none"
    retry: str | None = None  # "no_answer=2h,busy=15m", or "none"
    retry_schedule: str | None = None  # "30m,2h,1d", or "none"
    redial_voicemail: bool | None = None
    skip_dates: str | None = None  # replaces the dates; "none" clears them
    skip_dates_file: Path | None = None
    holidays: str | None = None  # "IN", "auto", or "none"
    max_callbacks: int | None = None
    callback_keys: str | None = None  # "a,b", or "default"
    voice: str | None = None  # or "none"
    webhook_url: str | None = None  # or "none" (removes the secret's fingerprint too)
    webhook_secret: str | None = None  # only with webhook_url; only its fingerprint is stored

    def __repr__(self) -> str:  # the webhook secret must never reach a log or a traceback
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        if shown["webhook_secret"]:
            shown["webhook_secret"] = "***"
        return "CampaignEdit(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    def is_empty(self) -> bool:
        return all(
            getattr(self, f.name) is None for f in fields(self) if f.name != "webhook_secret"
        )


def _campaign(engine: Engine, campaign_id: int) -> CampaignRecord:
    try:
        return campaigns_repo.get_campaign(engine, campaign_id)
    except NotFound as exc:
        raise NotFound(f"{exc} ({LIST_HINT})") from None


def _cleared(given: str | None) -> bool:
    return given is not None and given.strip().lower() in CLEAR


def _instant(given: str | None, current: datetime | None) -> str | None:
    return _text(given, current.isoformat() if current else None)


def _daily_cap(value: str) -> int | None:
    if _cleared(value):
        return None
    try:
        cap = int(value)
    except ValueError:
        cap = 0
    if cap < 1:
        raise UserError(f"--daily-cap: a number of calls of at least 1, or none, not {value!r}")
    return cap


def _text(given: str | None, current: str | None) -> str | None:
    """The setting as create would get it: the given text (None once cleared), else the
    stored value."""
    if given is None:
        return current
    return None if _cleared(given) else given


def _current_retry(c: CampaignRecord) -> str | None:
    """The stored per-outcome delays typed back (``no_answer=7200s``), for the checks."""
    return ",".join(f"{k}={v}s" for k, v in sorted((c.retry_delays or {}).items())) or None


def _spec(c: CampaignRecord, edit: CampaignEdit) -> CampaignSpec:
    """The campaign's current settings with the edit laid over them, as create takes them."""
    dates = None if edit.skip_dates_file is not None else ",".join(c.skip_dates or ()) or None
    keys = ",".join(c.callback_keys or ()) or None
    if edit.callback_keys is not None:  # "default": back to campaigns.callbacks.DEFAULT_KEYS
        keys = None if edit.callback_keys.strip().lower() == "default" else edit.callback_keys
    return CampaignSpec(
        name=c.name,
        agent_id=c.agent_id,
        window=edit.window or f"{c.window_start}-{c.window_end}",
        days=edit.days or c.days,
        timezone=_text(edit.timezone, c.timezone),
        max_attempts=c.max_attempts if edit.max_attempts is None else edit.max_attempts,
        retry_delay=edit.retry_delay or f"{c.retry_delay_s}s",
        start_at=_instant(edit.start_at, c.start_at),
        end_at=_instant(edit.end_at, c.end_at),
        caller_id=c.outbound_number if edit.caller_id is None else edit.caller_id,
        voice=_text(edit.voice, c.voice),
        provider=c.provider,
        # an unchanged webhook is not checked again: its secret is not at hand
        webhook_url=_text(edit.webhook_url, None),
        webhook_secret=edit.webhook_secret if edit.webhook_url is not None else None,
        retry=_text(edit.retry, _current_retry(c)),
        retry_schedule=_text(
            edit.retry_schedule, ",".join(f"{s}s" for s in c.retry_schedule or ()) or None
        ),
        redial_voicemail=(
            c.redial_voicemail if edit.redial_voicemail is None else edit.redial_voicemail
        ),
        skip_dates=_text(edit.skip_dates, dates),
        skip_dates_file=edit.skip_dates_file,
        holidays=_text(edit.holidays, c.holidays),
        max_callbacks=c.max_callbacks if edit.max_callbacks is None else edit.max_callbacks,
        callback_keys=keys,
    )


def _check_floor(edit: CampaignEdit, minimum: timedelta) -> None:
    """Hold the delays being changed (only those) to today's floor; the unchanged ones were
    checked when they were set."""
    if edit.retry_delay is not None:
        check_delay(edit.retry_delay, "--retry-delay", minimum)
    check_redial(
        None if _cleared(edit.retry) else edit.retry,
        None if _cleared(edit.retry_schedule) else edit.retry_schedule,
        True,  # the voicemail rule is the whole spec's check
        minimum,
    )


def _check_zone_removal(engine: Engine, c: CampaignRecord) -> None:
    """``--timezone none`` would leave contacts imported only thanks to the override without
    any zone: refuse while some of them still wait."""
    stranded = sum(
        n
        for zones, n in waiting_zones(engine, c.id).items()
        if not zones or zones.strip() in ("", UNKNOWN_ZONE)
    )
    if stranded:
        raise UserError(
            f"--timezone: {stranded} waiting contacts have no time zone of their own (they "
            f"were imported under --timezone {c.timezone}) and could never be called without "
            "it: give another zone instead of none"
        )


#: The settings of an edit and the columns each one writes (``None``: leave them).
_COLUMNS = {
    "timezone": ("timezone",),
    "max_attempts": ("max_attempts",),
    "retry_delay": ("retry_delay_s",),
    "retry": ("retry_delays",),
    "retry_schedule": ("retry_schedule",),
    "redial_voicemail": ("redial_voicemail",),
    "skip_dates": ("skip_dates",),
    "skip_dates_file": ("skip_dates",),
    "holidays": ("holidays",),
    "max_callbacks": ("max_callbacks",),
    "callback_keys": ("callback_keys",),
    "window": ("window_start", "window_end"),
    "days": ("days",),
    "start_at": ("start_at",),
    "end_at": ("end_at",),
    "caller_id": ("outbound_number",),
    "voice": ("voice",),
    "webhook_url": ("webhook_url", "webhook_secret_fp"),
}


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
            "--retry-delay, --retry, --retry-schedule, --skip-dates, --holidays, "
            "--daily-cap, --caller-id, --breaker or another setting (see campaign edit --help)"
        )
    c = _campaign(engine, campaign_id)
    new = check_campaign(_spec(c, edit), min_retry_delay=timedelta(0))
    _check_floor(edit, min_retry_delay)
    if _cleared(edit.timezone) and c.timezone:
        _check_zone_removal(engine, c)
    values: dict[str, Any] = {
        column: getattr(new, column)
        for setting, columns in _COLUMNS.items()
        if getattr(edit, setting) is not None
        for column in columns
    }
    if "retry_delays" in values:
        values["retry_delays"] = values["retry_delays"] or {}  # the column holds {} for none
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
