"""Use case: create a campaign from a contact CSV, every setting checked first.

The settings come as a person typed them (:class:`CampaignSpec`: ``window="09:00-20:00"``,
``retry_delay="2h"``, ISO 8601 instants), from the command line or a web form alike.
:func:`check_campaign` turns them into the campaign row's values or raises
:class:`~campaigns.errors.UserError` naming the option (``--window: ...``), before the file is
read; :func:`create_from_csv` then imports the file in one transaction
(:func:`campaigns.importer.importer.create_campaign`): a failure leaves nothing behind.

Lengths are checked here against the columns (``storage.models``), so an over-long name or
agent id gets the same clear message on SQLite (which would store it) and PostgreSQL (which
would refuse it with a raw SQL error). A retry delay below :data:`MIN_RETRY_DELAY` is refused:
dialling one person again within two minutes is what carriers and VICIdial treat as abuse.
Test rigs against the sandbox lower the floor with ``min_retry_delay``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from campaigns.callbacks import DEFAULT_KEYS, DEFAULT_MAX_CALLBACKS
from campaigns.errors import UserError
from campaigns.policy import (
    CallingPolicy,
    format_clock,
    format_days,
    parse_days,
    parse_duration,
    parse_window,
    parse_zone,
)
from campaigns.services.breaker import check_breaker
from campaigns.services.redial import check_blackout, check_delay, check_redial
from campaigns.webhooks import SECRET_ENV, fingerprint
from scheduler.provider_names import CALLER_ID_REQUIRED, PROVIDER_NAMES
from storage.engine import Engine
from storage.imports import NewCampaign
from storage.states import CampaignStatus

if TYPE_CHECKING:
    from campaigns.importer.importer import ImportOptions, ImportStats, Progress

#: The most callbacks a contact may ask for (``--max-callbacks``).
MAX_CALLBACKS = 20
#: The shortest retry delay a campaign may have (VICIdial refuses less).
MIN_RETRY_DELAY = timedelta(seconds=120)
#: Longest values, as the columns of ``storage.models.Campaign`` hold them.
MAX_LENGTHS = {"NAME": 200, "--agent-id": 200, "--caller-id": 32, "--voice": 100}


@dataclass(frozen=True, kw_only=True)
class CampaignSpec:
    """A new campaign's settings as a person gives them (the options of ``campaign create``)."""

    name: str
    agent_id: str
    window: str = "09:00-20:00"
    days: str = "mon-sat"
    timezone: str | None = None
    max_attempts: int = 3
    retry_delay: str = "2h"
    start_at: str | None = None
    end_at: str | None = None
    caller_id: str | None = None
    voice: str | None = None
    draft: bool = False
    #: the voice-AI platform that places the calls (``scheduler.provider_names``)
    provider: str = "vaani"
    webhook_url: str | None = None  # events out (campaigns/webhooks.py)
    webhook_secret: str | None = None  # only its fingerprint is stored
    #: re-dial policy (campaigns/services/redial.py): per-outcome delays, an escalating schedule
    retry: str | None = None  # "no_answer=2h,busy=15m"
    retry_schedule: str | None = None  # "30m,2h,1d"
    redial_voicemail: bool = True
    #: days without calls, in the contact's zone: dates, a file of dates, holiday countries
    skip_dates: str | None = None  # "2026-12-25,2027-01-01"
    skip_dates_file: Path | None = None
    holidays: str | None = None  # "IN", "IN,US" or "auto"
    max_callbacks: int = DEFAULT_MAX_CALLBACKS  # callbacks the contact asks for, per contact
    callback_keys: str | None = None  # comma-separated entity keys; None: DEFAULT_KEYS
    #: the circuit breaker (campaigns/services/breaker.py): "50%/20", or off
    breaker: str | None = None
    no_breaker: bool = False

    def __repr__(self) -> str:  # the webhook secret must never reach a log or a traceback
        shown = {f: getattr(self, f) for f in self.__dataclass_fields__}
        if shown["webhook_secret"]:
            shown["webhook_secret"] = "***"
        return "CampaignSpec(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


@dataclass(frozen=True, kw_only=True)
class CreatedCampaign:
    """What :func:`create_from_csv` did: the new campaign and what became of the rows."""

    campaign_id: int
    name: str
    status: str
    stats: ImportStats


def parse_min_retry_delay(value: str | None, *, source: str) -> timedelta:
    """The retry-delay floor a test rig asks for (``source`` names where it came from, e.g.
    an environment variable); :data:`MIN_RETRY_DELAY` when ``value`` is empty."""
    if not value:
        return MIN_RETRY_DELAY
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UserError(f"{source}: {exc}") from None


def _zone(value: str | None) -> str | None:
    if not value:
        return None
    try:
        parse_zone(value)
    except ValueError as exc:
        raise UserError(f"--timezone: {exc}") from None
    return value


def _instant(value: str | None, flag: str, zone: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"{flag}: {value!r} is not an ISO 8601 date or date-time "
            "(e.g. 2026-12-01T09:00 or 2026-12-01T09:00+05:30)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(zone) if zone else UTC)
    return dt


def _check_lengths(**values: str | None) -> None:
    for flag, value in values.items():
        limit = MAX_LENGTHS[flag]
        if value is not None and len(value) > limit:
            raise UserError(f"{flag}: at most {limit} characters, not {len(value)}")


def _webhook(url: str | None, secret: str | None) -> tuple[str | None, str | None]:
    """The webhook URL and the secret's fingerprint (never the secret) to store."""
    if not url:
        if secret:
            raise UserError("--webhook-secret: give --webhook-url too (where to send events)")
        return None, None
    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in 0-65535
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise UserError(
            "--webhook-url: expected an http:// or https:// URL with a host (and a valid "
            "port, if any), e.g. https://crm.example.com/hooks/vaani"
        )
    if not secret:
        raise UserError(
            "--webhook-secret: events are signed; give the secret your receiver checks "
            f"(the daemon needs the same one: {SECRET_ENV} or run --webhook-secret)"
        )
    return url.strip(), fingerprint(secret)


def check_campaign(
    spec: CampaignSpec, *, min_retry_delay: timedelta = MIN_RETRY_DELAY
) -> NewCampaign:
    """The campaign row's values, every setting checked (UserError names the option)."""
    name, agent_id = spec.name.strip(), spec.agent_id.strip()
    if not name:
        raise UserError("NAME: the campaign needs a name")
    if not agent_id:
        raise UserError("--agent-id: give the Vaani agent that places the calls")
    caller_id, voice = spec.caller_id or None, spec.voice or None
    _check_lengths(**{"NAME": name, "--agent-id": agent_id, "--caller-id": caller_id})
    _check_lengths(**{"--voice": voice})
    try:
        start, end = parse_window(spec.window)
    except ValueError as exc:
        raise UserError(f"--window: {exc}") from None
    try:
        day_set = parse_days(spec.days)
    except ValueError as exc:
        raise UserError(f"--days: {exc}") from None
    delay = check_delay(spec.retry_delay, "--retry-delay", min_retry_delay)
    redial = check_redial(spec.retry, spec.retry_schedule, spec.redial_voicemail, min_retry_delay)
    blackout = check_blackout(spec.skip_dates, spec.skip_dates_file, spec.holidays)
    fuse = check_breaker(spec.breaker, spec.no_breaker)
    if spec.max_attempts < 1:
        raise UserError(f"--max-attempts: must be at least 1, not {spec.max_attempts}")
    if spec.provider not in PROVIDER_NAMES:
        known = ", ".join(PROVIDER_NAMES)
        raise UserError(f"--provider: unknown provider {spec.provider!r}: expected one of {known}")
    if spec.provider in CALLER_ID_REQUIRED and not caller_id:
        raise UserError(
            f"--caller-id: {spec.provider} places calls from the agent's phone number: "
            "give it in E.164 (e.g. --caller-id +16505551234)"
        )
    webhook_url, webhook_fp = _webhook(spec.webhook_url, spec.webhook_secret)
    callback_keys = _callback_keys(spec.callback_keys)
    if not 0 <= spec.max_callbacks <= MAX_CALLBACKS:
        raise UserError(
            f"--max-callbacks: 0 (never call back) to {MAX_CALLBACKS}, not {spec.max_callbacks}"
        )
    zone = _zone(spec.timezone)
    begins = _instant(spec.start_at, "--start-at", zone)
    ends = _instant(spec.end_at, "--end-at", zone)
    if begins and ends and ends <= begins:
        raise UserError("--end-at: must be after --start-at")
    CallingPolicy(  # the same checks the scheduler will make, now rather than at dial time
        window_start=start,
        window_end=end,
        days=day_set,
        timezone=zone,
        start_at=begins,
        end_at=ends,
        max_attempts=spec.max_attempts,
    )
    return NewCampaign(
        name=name,
        agent_id=agent_id,
        status=str(CampaignStatus.DRAFT if spec.draft else CampaignStatus.RUNNING),
        window_start=format_clock(start),
        window_end=format_clock(end),
        days=format_days(day_set),
        timezone=zone,
        start_at=begins,
        end_at=ends,
        max_attempts=spec.max_attempts,
        retry_delay_s=int(delay.total_seconds()),
        retry_delays=redial.retry_delays,
        retry_schedule=redial.retry_schedule,
        redial_voicemail=redial.redial_voicemail,
        skip_dates=blackout.skip_dates,
        holidays=blackout.holidays,
        outbound_number=caller_id,
        voice=voice,
        provider=spec.provider,
        webhook_url=webhook_url,
        webhook_secret_fp=webhook_fp,
        max_callbacks=spec.max_callbacks,
        callback_keys=callback_keys,
        breaker_enabled=fuse.enabled,
        breaker_threshold=fuse.threshold,
        breaker_window=fuse.window,
    )


def _callback_keys(value: str | None) -> list[str] | None:
    """``--callback-keys a,b``: the entity keys that carry a callback time (None: defaults)."""
    if value is None:
        return None
    keys = [k.strip() for k in value.split(",") if k.strip()]
    if not keys or any(len(k) > 100 for k in keys):
        raise UserError(
            "--callback-keys: give comma-separated entity keys, e.g. "
            f"--callback-keys {','.join(DEFAULT_KEYS)}"
        )
    return keys


def create_from_csv(
    engine: Engine,
    csv_path: Path,
    spec: CampaignSpec,
    options: ImportOptions,
    *,
    progress: Progress | None = None,
    min_retry_delay: timedelta = MIN_RETRY_DELAY,
) -> CreatedCampaign:
    """Check ``spec``, then create the campaign and import ``csv_path`` into it, all or
    nothing. Raises :class:`UserError` for a bad setting or file (nothing is written then)."""
    new = check_campaign(spec, min_retry_delay=min_retry_delay)
    from campaigns.importer.importer import create_campaign  # loads pandas and numpy

    campaign_id, stats = create_campaign(engine, csv_path, new, options, progress=progress)
    status = new.status or str(CampaignStatus.DRAFT)  # check_campaign always sets it
    return CreatedCampaign(campaign_id=campaign_id, name=new.name, status=status, stats=stats)
