"""``vaani-campaigns campaign create NAME --csv FILE --agent-id ID``: a campaign from a CSV.

Validates every option before reading the file, then imports in one transaction
(:func:`campaigns.importer.importer.create_campaign`): a failure leaves nothing behind.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from campaigns.cli.common import AppContext, pass_app, print_json
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
from storage.states import CampaignStatus

if TYPE_CHECKING:
    from campaigns.importer.importer import ImportOptions, ImportStats


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


def _campaign_values(
    *,
    name: str,
    agent_id: str,
    window: str,
    days: str,
    timezone: str | None,
    max_attempts: int,
    retry_delay: str,
    start_at: str | None,
    end_at: str | None,
    caller_id: str | None,
    voice: str | None,
    draft: bool,
) -> dict[str, Any]:
    """The campaign row, every option checked (UserError names the flag)."""
    if not name.strip():
        raise UserError("NAME: the campaign needs a name")
    if not agent_id.strip():
        raise UserError("--agent-id: give the Vaani agent that places the calls")
    try:
        start, end = parse_window(window)
    except ValueError as exc:
        raise UserError(f"--window: {exc}") from None
    try:
        day_set = parse_days(days)
    except ValueError as exc:
        raise UserError(f"--days: {exc}") from None
    try:
        delay = parse_duration(retry_delay)
    except ValueError as exc:
        raise UserError(f"--retry-delay: {exc}") from None
    if max_attempts < 1:
        raise UserError(f"--max-attempts: must be at least 1, not {max_attempts}")
    zone = _zone(timezone)
    begins = _instant(start_at, "--start-at", zone)
    ends = _instant(end_at, "--end-at", zone)
    if begins and ends and ends <= begins:
        raise UserError("--end-at: must be after --start-at")
    values: dict[str, Any] = {
        "name": name.strip(),
        "agent_id": agent_id.strip(),
        "status": str(CampaignStatus.DRAFT if draft else CampaignStatus.RUNNING),
        "window_start": format_clock(start),
        "window_end": format_clock(end),
        "days": format_days(day_set),
        "timezone": zone,
        "start_at": begins,
        "end_at": ends,
        "max_attempts": max_attempts,
        "retry_delay_s": int(delay.total_seconds()),
        "outbound_number": caller_id or None,
        "voice": voice or None,
    }
    CallingPolicy(  # the same checks the scheduler will make, now rather than at dial time
        window_start=start,
        window_end=end,
        days=day_set,
        timezone=zone,
        start_at=begins,
        end_at=ends,
        max_attempts=max_attempts,
    )
    return values


@click.command()
@click.argument("name")
@click.option(
    "--csv",
    "csv_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The contact list (CSV: comma, semicolon or tab; UTF-8, UTF-16 or Windows-1252).",
)
@click.option(
    "--agent-id",
    envvar="VAANI_AGENT_ID",
    show_envvar=True,
    required=True,
    help="The Vaani agent that places the calls.",
)
@click.option(
    "--phone-column",
    metavar="COLUMN",
    help="The column holding the numbers "
    "(default: found among phone, phone_number, mobile, contact_number, ...).",
)
@click.option(
    "--name-column",
    metavar="COLUMN",
    help="The column holding the name (default: found among name, full_name, customer_name, ...).",
)
@click.option(
    "--region",
    envvar="VAANI_REGION",
    show_envvar=True,
    metavar="CC",
    help="Country for numbers written without +country code, e.g. IN, US, GB.",
)
@click.option(
    "--timezone",
    metavar="ZONE",
    help="Use this IANA zone for every contact "
    "instead of the zones of their numbers (e.g. Asia/Kolkata).",
)
@click.option(
    "--window",
    default="09:00-20:00",
    show_default=True,
    metavar="HH:MM-HH:MM",
    help="Daily calling window in the contact's local time.",
)
@click.option(
    "--days",
    default="mon-sat",
    show_default=True,
    help="Days of the week to call: mon-sat, mon,wed,fri, weekdays, all.",
)
@click.option(
    "--max-attempts",
    default=3,
    show_default=True,
    type=int,
    help="Calls per contact at most (the first one included).",
)
@click.option(
    "--retry-delay",
    default="2h",
    show_default=True,
    help="Wait before re-dialling a no-answer: 30m, 2h, 1d.",
)
@click.option(
    "--start-at",
    metavar="ISO",
    help="Do not call before this instant (ISO 8601; without an offset: in --timezone, else UTC).",
)
@click.option(
    "--end-at",
    metavar="ISO",
    help="Stop calling at this instant; contacts still waiting become expired.",
)
@click.option(
    "--caller-id",
    "--outbound-number",
    "caller_id",
    envvar="VAANI_CALLER_ID",
    show_envvar=True,
    metavar="NUMBER",
    help="Outbound number shown to the callee.",
)
@click.option("--voice", help="Voice override passed to trigger-call.")
@click.option(
    "--dnc",
    "dnc_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Do-not-call list for this campaign (CSV with a phone column, or one "
    "number per line); matching contacts are suppressed.",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE.csv",
    help="Write rows that will not be called (row number, reason, values) here.",
)
@click.option(
    "--draft",
    is_flag=True,
    help="Create the campaign paused in draft; `campaign resume` starts it. Default: running.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def create(
    app: AppContext,
    name: str,
    csv_path: Path,
    agent_id: str,
    phone_column: str | None,
    name_column: str | None,
    region: str | None,
    timezone: str | None,
    window: str,
    days: str,
    max_attempts: int,
    retry_delay: str,
    start_at: str | None,
    end_at: str | None,
    caller_id: str | None,
    voice: str | None,
    dnc_file: Path | None,
    rejects_path: Path | None,
    draft: bool,
    as_json: bool,
) -> None:
    """Create a campaign from a contact CSV.

    Numbers are parsed with --region for those written without a country code and stored
    in E.164. Every column but the phone one becomes metadata for the agent's prompt
    (snake_case header -> value as written). Rows with missing or invalid numbers,
    duplicates, numbers on a do-not-call list and numbers whose time zone never meets the
    calling window are kept as not-to-be-called and counted; --rejects lists them.
    The import is all or nothing.
    """
    values = _campaign_values(
        name=name,
        agent_id=agent_id,
        window=window,
        days=days,
        timezone=timezone,
        max_attempts=max_attempts,
        retry_delay=retry_delay,
        start_at=start_at,
        end_at=end_at,
        caller_id=caller_id,
        voice=voice,
        draft=draft,
    )
    from campaigns.importer.importer import ImportOptions, create_campaign  # loads pandas

    options = ImportOptions(
        phone_column=phone_column,
        name_column=name_column,
        region=region,
        dnc_file=dnc_file,
        rejects_path=rejects_path,
    )
    engine = app.engine()
    if sys.stderr.isatty() and not as_json:
        campaign_id, stats = _with_progress(engine, csv_path, values, options)
    else:
        campaign_id, stats = create_campaign(engine, csv_path, values, options)
    if as_json:
        print_json(stats.summary(campaign_id))
        return
    _print_summary(campaign_id, values, stats, rejects_path)


def _with_progress(
    engine: Any, csv_path: Path, values: dict[str, Any], options: ImportOptions
) -> tuple[int, ImportStats]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from campaigns.importer.importer import create_campaign

    with Progress(
        TextColumn("Importing"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("import", total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return create_campaign(engine, csv_path, values, options, progress=report)


def _print_summary(
    campaign_id: int, values: dict[str, Any], stats: ImportStats, rejects_path: Path | None
) -> None:
    click.echo(
        f"Created campaign {campaign_id} {values['name']!r} ({values['status']}): "
        f"{stats.imported} of {stats.rows} contacts to call."
    )
    if stats.duplicates or stats.invalid or stats.suppressed:
        click.echo(
            f"Not called: {stats.duplicates} duplicates, {stats.invalid} invalid, "
            f"{stats.suppressed} on the do-not-call list."
        )
        for reason, n in sorted(stats.by_reason.items(), key=lambda kv: -kv[1]):
            click.echo(f"  {n:>8}  {reason}")
        if rejects_path is not None:
            click.echo(f"Rejected rows, with their row numbers and reasons: {rejects_path}")
        else:
            click.echo("Pass --rejects FILE.csv to list them with their row numbers.")
    if stats.blank:
        click.echo(f"Skipped {stats.blank} blank rows.")
    for bad in stats.dnc_rejected[:20]:
        click.echo(f"--dnc line {bad.line}: {bad.raw!r} is not a number ({bad.reason})", err=True)
    if len(stats.dnc_rejected) > 20:
        click.echo(f"--dnc: {len(stats.dnc_rejected) - 20} more unreadable lines", err=True)
    if values["status"] == CampaignStatus.DRAFT:
        click.echo(f"Start it with: vaani-campaigns campaign resume {campaign_id}")
