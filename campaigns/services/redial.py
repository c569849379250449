"""Checks of a campaign's re-dial policy and of the days it does not call, as a person types
them: ``--retry no_answer=2h,busy=15m``, ``--retry-schedule 30m,2h,1d``,
``--redial-voicemail/--no-redial-voicemail``, ``--skip-dates``, ``--skip-dates-file`` and
``--holidays``.

:func:`check_redial` and :func:`check_blackout` turn them into the campaign row's values
(:class:`RedialValues`, :class:`BlackoutValues`) or raise :class:`~campaigns.errors.UserError`
naming the option, so that ``campaign create`` (and any later edit of these settings) says the
same thing. Every delay, per outcome or per step, is held to the same floor as
``--retry-delay`` (``MIN_RETRY_DELAY``): re-dialling a person within minutes is what carriers
refuse, whichever option asked for it. The attempt budget stays one per contact
(``--max-attempts``): outcomes and schedule steps only decide how long to wait.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from campaigns.blackout import parse_countries, parse_dates, read_dates_file
from campaigns.calling import REDIAL_OUTCOMES
from campaigns.errors import UserError
from campaigns.parsing import parse_duration

#: A schedule longer than this is a typo more likely than a plan (the cap ends it anyway).
MAX_SCHEDULE_STEPS = 20


@dataclass(frozen=True, kw_only=True)
class RedialValues:
    """Re-dial settings as stored: per-outcome delays and the schedule in seconds."""

    retry_delays: dict[str, int] | None
    retry_schedule: list[int] | None
    redial_voicemail: bool


@dataclass(frozen=True, kw_only=True)
class BlackoutValues:
    """Days without calls as stored: ISO dates and ``"IN,US"`` / ``"auto"``."""

    skip_dates: list[str] | None
    holidays: str | None


def check_delay(text: str, flag: str, minimum: timedelta) -> timedelta:
    """A delay typed for ``flag``, at least ``minimum``; UserError names the flag."""
    try:
        delay = parse_duration(text)
    except ValueError as exc:
        raise UserError(f"{flag}: {exc}") from None
    if delay < minimum:
        raise UserError(
            f"{flag}: at least {int(minimum.total_seconds())} s, not {text!r} "
            "(re-dialling a person sooner is refused by carriers and dialers such as VICIdial)"
        )
    return delay


def parse_retry(text: str, minimum: timedelta) -> dict[str, int]:
    """``"no_answer=2h,busy=15m"`` -> ``{"no_answer": 7200, "busy": 900}``."""
    delays: dict[str, int] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        outcome, sep, value = (s.strip() for s in item.partition("="))
        outcome = outcome.lower().replace("-", "_")
        if not sep or not value:
            raise UserError(
                f"--retry: {item!r} is not OUTCOME=DELAY; expected e.g. "
                "no_answer=2h,busy=15m,failed=30m,voicemail=4h"
            )
        if outcome not in REDIAL_OUTCOMES:
            near = difflib.get_close_matches(outcome, REDIAL_OUTCOMES, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise UserError(
                f"--retry: unknown outcome {outcome!r}{hint}; "
                f"expected some of {', '.join(REDIAL_OUTCOMES)}"
            )
        if outcome in delays:
            raise UserError(f"--retry: {outcome} is given twice")
        delays[outcome] = int(check_delay(value, f"--retry {outcome}", minimum).total_seconds())
    if not delays:
        raise UserError("--retry: expected OUTCOME=DELAY pairs, e.g. no_answer=2h,busy=15m")
    return delays


def parse_schedule(text: str, minimum: timedelta) -> list[int]:
    """``"30m,2h,1d"`` -> ``[1800, 7200, 86400]``."""
    steps = [s.strip() for s in text.split(",") if s.strip()]
    if not steps:
        raise UserError("--retry-schedule: expected delays separated by commas, e.g. 30m,2h,1d")
    if len(steps) > MAX_SCHEDULE_STEPS:
        raise UserError(
            f"--retry-schedule: at most {MAX_SCHEDULE_STEPS} steps, not {len(steps)} "
            "(the last step repeats, and --max-attempts ends the re-dials)"
        )
    return [int(check_delay(s, "--retry-schedule", minimum).total_seconds()) for s in steps]


def check_redial(
    retry: str | None, schedule: str | None, redial_voicemail: bool, minimum: timedelta
) -> RedialValues:
    """The re-dial settings to store; UserError names the option."""
    delays = parse_retry(retry, minimum) if retry else None
    if delays and "voicemail" in delays and not redial_voicemail:
        raise UserError(
            "--retry: voicemail has a delay but --no-redial-voicemail says not to re-dial it; "
            "drop one of the two"
        )
    return RedialValues(
        retry_delays=delays,
        retry_schedule=parse_schedule(schedule, minimum) if schedule else None,
        redial_voicemail=redial_voicemail,
    )


def check_blackout(
    skip_dates: str | None, skip_dates_file: Path | None, holidays: str | None
) -> BlackoutValues:
    """The days without calls to store; UserError names the option (and the file's line)."""
    dates = set()
    if skip_dates:
        try:
            dates.update(parse_dates(skip_dates))
        except ValueError as exc:
            raise UserError(f"--skip-dates: {exc}") from None
    if skip_dates_file is not None:
        try:
            dates.update(read_dates_file(skip_dates_file))
        except ValueError as exc:
            raise UserError(f"--skip-dates-file: {exc}") from None
    countries = None
    if holidays:
        try:
            countries = parse_countries(holidays)
        except ValueError as exc:
            raise UserError(f"--holidays: {exc}") from None
    return BlackoutValues(
        skip_dates=[d.isoformat() for d in sorted(dates)] or None, holidays=countries
    )
