"""``vaani-campaigns campaign create NAME --csv FILE --agent-id ID``: a campaign from a CSV.

A thin shell over :func:`campaigns.services.create.create_from_csv`, which checks every
option before reading the file and imports it in one transaction: a failure leaves nothing
behind. This module only reads the flags and prints the outcome.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from campaigns.cli.common import AppContext, pass_app, print_json
from campaigns.services.create import (
    CampaignSpec,
    CreatedCampaign,
    check_campaign,
    create_from_csv,
    parse_min_retry_delay,
)
from campaigns.wording import plural
from scheduler.provider_names import DEFAULT_PROVIDER, PROVIDER_NAMES
from storage.states import CampaignStatus

if TYPE_CHECKING:
    from campaigns.importer.importer import ImportOptions, ImportStats
    from campaigns.importer.importer import Progress as ImportProgress
    from storage.engine import Engine

T = TypeVar("T")

#: Lowers the shortest --retry-delay accepted, for test rigs against the sandbox.
MIN_RETRY_DELAY_ENV = "VAANI_MIN_RETRY_DELAY"


def _min_retry_delay() -> timedelta:
    return parse_min_retry_delay(os.environ.get(MIN_RETRY_DELAY_ENV), source=MIN_RETRY_DELAY_ENV)


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
    required=True,
    help="The Vaani agent that places the calls [env: VAANI_AGENT_ID].",
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
    metavar="CC",
    help="Country for numbers written without +country code, e.g. IN, US, GB [env: VAANI_REGION].",
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
    help="Days of the week to call: mon-sat, mon,wed,fri, weekdays, weekend (sat,sun), all.",
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
    help="Wait before re-dialling a no-answer: 30m, 2h, 1d. At least 2m (carriers and "
    f"dialers such as VICIdial refuse less; [env: {MIN_RETRY_DELAY_ENV}] lowers the floor "
    "for tests against the sandbox).",
)
@click.option(
    "--retry",
    metavar="OUTCOME=DELAY,...",
    help="Per-outcome re-dial delays, e.g. no_answer=2h,busy=15m,failed=30m,voicemail=4h "
    "(outcomes: no_answer, busy, failed, voicemail, no_outcome). Unlisted ones wait "
    "--retry-delay (busy: 15m at most) or the --retry-schedule.",
)
@click.option(
    "--retry-schedule",
    metavar="DELAY,...",
    help="Escalating re-dials, e.g. 30m,2h,1d: the Nth re-dial waits the Nth delay, the last "
    "repeats; replaces --retry-delay (outcomes given in --retry keep theirs). "
    "--max-attempts still caps all calls of a contact.",
)
@click.option(
    "--redial-voicemail/--no-redial-voicemail",
    default=True,
    show_default=True,
    help="Call again after a voicemail.",
)
@click.option(
    "--skip-dates",
    metavar="DATES",
    help="No calls on these dates in the contact's local time, e.g. 2026-12-25,2027-01-01.",
)
@click.option(
    "--skip-dates-file",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Dates without calls, one YYYY-MM-DD a line (# comments allowed).",
)
@click.option(
    "--holidays",
    metavar="CC[,CC]|auto",
    help="No calls on public holidays of these countries (e.g. IN), each in the contact's own "
    "country (from the number): an IN holiday leaves US numbers alone. auto: every "
    "contact's own country.",
)
@click.option(
    "--max-callbacks",
    default=2,
    show_default=True,
    type=int,
    help='Callbacks a contact may ask for on a call ("call me back at 5pm"), re-dialled '
    "then in their zone, moved into the window; not counted in --max-attempts. 0: none.",
)
@click.option(
    "--callback-keys",
    metavar="KEY,KEY",
    help="Entity keys that carry a callback time (default: callback_at,call_back_at,"
    "callback_time).",
)
@click.option(
    "--breaker",
    metavar="PERCENT%/CALLS",
    help="Circuit breaker: pause the campaign when more than PERCENT % of its last CALLS "
    "calls failed (the call ended failed, or the API answered 5xx and placed none; "
    "no-answers, busy and voicemail are normal). Default: 50%/20.",
)
@click.option(
    "--no-breaker",
    is_flag=True,
    help="No circuit breaker: keep calling whatever fails.",
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
    metavar="NUMBER",
    help="Outbound number shown to the callee [env: VAANI_CALLER_ID].",
)
@click.option("--voice", help="Voice override passed to trigger-call.")
@click.option(
    "--provider",
    type=click.Choice(PROVIDER_NAMES),
    default=DEFAULT_PROVIDER,
    show_default=True,
    help="The voice-AI platform that places the calls; run needs its API key.",
)
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
    "--webhook-url",
    metavar="URL",
    help="POST signed events (contact.finished, contact.opted_out, campaign.completed, "
    "campaign.paused) to this URL; see README, Events to your CRM.",
)
@click.option(
    "--webhook-secret",
    envvar="VAANI_WEBHOOK_SECRET",
    metavar="SECRET",
    help="The secret that signs the events [env: VAANI_WEBHOOK_SECRET]. Only a fingerprint "
    "is stored: the daemon (`run`) needs the same secret to send them.",
)
@click.option(
    "--draft",
    is_flag=True,
    help="Create the campaign in draft; `campaign start` starts it. Default: running.",
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
    retry: str | None,
    retry_schedule: str | None,
    redial_voicemail: bool,
    skip_dates: str | None,
    skip_dates_file: Path | None,
    holidays: str | None,
    max_callbacks: int,
    callback_keys: str | None,
    breaker: str | None,
    no_breaker: bool,
    start_at: str | None,
    end_at: str | None,
    caller_id: str | None,
    voice: str | None,
    provider: str,
    dnc_file: Path | None,
    rejects_path: Path | None,
    webhook_url: str | None,
    webhook_secret: str | None,
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
    spec = CampaignSpec(
        name=name,
        agent_id=agent_id,
        window=window,
        days=days,
        timezone=timezone,
        max_attempts=max_attempts,
        retry_delay=retry_delay,
        max_callbacks=max_callbacks,
        callback_keys=callback_keys,
        start_at=start_at,
        end_at=end_at,
        caller_id=caller_id,
        voice=voice,
        draft=draft,
        provider=provider,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret if webhook_url else None,
        retry=retry,
        retry_schedule=retry_schedule,
        redial_voicemail=redial_voicemail,
        skip_dates=skip_dates,
        skip_dates_file=skip_dates_file,
        holidays=holidays,
        breaker=breaker,
        no_breaker=no_breaker,
    )
    minimum = _min_retry_delay()
    check_campaign(spec, min_retry_delay=minimum)  # a bad option opens no database
    from campaigns.importer.importer import ImportOptions  # loads pandas

    options = ImportOptions(
        phone_column=phone_column,
        name_column=name_column,
        region=region,
        dnc_file=dnc_file,
        rejects_path=rejects_path,
    )
    bar = sys.stderr.isatty() and not as_json
    created = _create(app.engine(create=True), csv_path, spec, options, minimum, bar=bar)
    if as_json:
        print_json(created.stats.summary(created.campaign_id))
        return
    _print_summary(created, rejects_path)


def _create(
    engine: Engine,
    csv_path: Path,
    spec: CampaignSpec,
    options: ImportOptions,
    minimum: timedelta,
    *,
    bar: bool,
) -> CreatedCampaign:
    """Run the use case, with a progress bar on a terminal."""
    return with_progress(
        lambda report: create_from_csv(
            engine, csv_path, spec, options, progress=report, min_retry_delay=minimum
        ),
        bar=bar,
    )


def with_progress(run: Callable[[ImportProgress | None], T], *, bar: bool) -> T:
    """``run(progress)``: with a progress bar of the import on a terminal (``bar``), else
    with None (also ``campaign import``)."""
    if not bar:
        return run(None)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("Importing"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("import", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return run(report)


def _print_summary(created: CreatedCampaign, rejects_path: Path | None) -> None:
    stats, campaign_id = created.stats, created.campaign_id
    click.echo(
        f"Created campaign {campaign_id} {created.name!r} ({created.status}): "
        f"{stats.imported} of {plural(stats.rows, 'contact')} to call."
    )
    print_import_details(stats, rejects_path)
    if created.status == CampaignStatus.DRAFT:
        click.echo(f"Start it with: vaani-campaigns campaign start {campaign_id}")


def print_import_details(stats: ImportStats, rejects_path: Path | None) -> None:
    """What became of the rows not called, the --dnc lines that could not be read, and hints
    (also ``campaign import``)."""
    if stats.duplicates or stats.invalid or stats.suppressed:
        click.echo(
            f"Not called: {plural(stats.duplicates, 'duplicate')}, {stats.invalid} invalid, "
            f"{stats.suppressed} on the do-not-call list."
        )
        for reason, n in sorted(stats.by_reason.items(), key=lambda kv: -kv[1]):
            click.echo(f"  {n:>8}  {reason}")
        if rejects_path is not None:
            click.echo(f"Rejected rows, with their row numbers and reasons: {rejects_path}")
        else:
            click.echo("Pass --rejects FILE.csv to list them with their row numbers.")
    if stats.blank:
        click.echo(f"Skipped {plural(stats.blank, 'blank row')}.")
    for bad in stats.dnc_rejected[:20]:
        click.echo(f"--dnc line {bad.line}: {bad.raw!r} is not a number ({bad.reason})", err=True)
    if len(stats.dnc_rejected) > 20:
        more = plural(len(stats.dnc_rejected) - 20, "more unreadable line")
        click.echo(f"--dnc: {more}", err=True)
    if stats.no_country_code:
        click.echo(
            f"{plural(stats.no_country_code, 'number has', 'numbers have')} no country code: "
            "pass --region (e.g. --region IN)"
        )
