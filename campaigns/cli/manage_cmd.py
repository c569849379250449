"""``vaani-campaigns campaign import|edit|requeue|archive|delete``: a campaign after creation.

Thin shells over :mod:`campaigns.services.manage` and :mod:`campaigns.services.imports`:
read the flags, print what happened. ``import`` takes the very options of ``campaign create``
for the file (the same ``click.Option`` objects, so the two never drift apart). A running
daemon sees every change at its next tick, no restart needed.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from campaigns.cli.common import AppContext, pass_app, print_json
from campaigns.cli.create_cmd import (
    _min_retry_delay,
    create,
    print_import_details,
    with_progress,
)
from campaigns.parsing import format_duration
from campaigns.services.imports import import_contacts
from campaigns.services.manage import (
    CampaignEdit,
    archive_campaign,
    delete_campaign,
    edit_campaign,
    requeue_contacts,
)
from campaigns.webhooks import SECRET_ENV
from campaigns.wording import plural
from storage.campaigns_repo import get_campaign
from storage.manage import EDITABLE

#: The options of ``campaign create`` that ``campaign import`` takes too.
_FILE_OPTIONS = ("csv_path", "phone_column", "name_column", "region", "dnc_file", "rejects_path")


@pass_app
def _import(app: AppContext, campaign_id: int, as_json: bool, **file_options: Any) -> None:
    from campaigns.importer.importer import ImportOptions  # loads pandas

    csv_path: Path = file_options.pop("csv_path")
    rejects_path: Path | None = file_options["rejects_path"]
    options = ImportOptions(**file_options)  # the option names are its fields
    engine = app.engine()
    stats = with_progress(
        lambda report: import_contacts(engine, campaign_id, csv_path, options, progress=report),
        bar=sys.stderr.isatty() and not as_json,
    )
    campaign = get_campaign(engine, campaign_id)
    if as_json:
        print_json(stats.summary(campaign_id) | {"status": campaign.status})
        return
    click.echo(
        f"Campaign {campaign_id} ({campaign.name!r}, {campaign.status}): "
        f"{stats.imported} of {plural(stats.rows, 'contact')} added to call."
    )
    print_import_details(stats, rejects_path)


import_ = click.Command(
    "import",
    callback=_import,
    params=[
        click.Argument(["campaign_id"], type=int),
        *(p for name in _FILE_OPTIONS for p in create.params if p.name == name),
        click.Option(["--json", "as_json"], is_flag=True, help="Print the result as JSON."),
    ],
    help="Add the contacts of a CSV to a campaign: the same checks as `campaign create`, "
    "and numbers already in the campaign are duplicates. A completed campaign runs again.",
)


@click.command()
@click.argument("campaign_id", type=int)
@click.option("--window", metavar="HH:MM-HH:MM", help="Daily calling window (contact's time).")
@click.option("--days", help="Days of the week to call: mon-sat, mon,wed,fri, weekdays, all.")
@click.option("--start-at", metavar="ISO", help="Do not call before this instant; none removes it.")
@click.option("--end-at", metavar="ISO", help="Stop calling at this instant; none removes it.")
@click.option("--max-attempts", type=int, help="Calls per contact at most (calls made stand).")
@click.option("--retry-delay", help="Wait before re-dialling a no-answer: 30m, 2h, 1d.")
@click.option("--daily-cap", metavar="N", help="Calls per number per 24 hours; none removes it.")
@click.option("--caller-id", metavar="NUMBER", help="Outbound number shown to the callee.")
@click.option(
    "--timezone",
    metavar="ZONE",
    help="One IANA zone for every contact instead of their numbers' (read at each decision: "
    "nothing is recomputed); none removes it.",
)
@click.option("--retry", metavar="OUTCOME=DELAY,...", help="Per-outcome re-dial delays; none.")
@click.option("--retry-schedule", metavar="DELAY,...", help="Escalating re-dials; none.")
@click.option(
    "--redial-voicemail/--no-redial-voicemail", default=None, help="Call again after a voicemail."
)
@click.option("--skip-dates", metavar="DATES", help="Replace the dates without calls; none.")
@click.option(
    "--skip-dates-file",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Replace the dates without calls with this file's (one YYYY-MM-DD a line).",
)
@click.option("--holidays", metavar="CC[,CC]|auto", help="Public holidays to observe; none.")
@click.option("--max-callbacks", type=int, help="Callbacks a contact may ask for (0: none).")
@click.option("--callback-keys", metavar="KEY,KEY", help="Callback entity keys; default.")
@click.option("--voice", help="Voice override passed to trigger-call; none.")
@click.option(
    "--webhook-url", metavar="URL", help="Send signed events here (with the secret); none."
)
@click.option(
    "--webhook-secret",
    envvar=SECRET_ENV,
    metavar="SECRET",
    help=f"The secret that signs the events, with --webhook-url [env: {SECRET_ENV}]; only a "
    "fingerprint is stored.",
)
@click.option(
    "--breaker",
    metavar="PERCENT%/CALLS",
    help="Circuit breaker: pause when more than PERCENT % of the last CALLS calls failed.",
)
@click.option("--no-breaker", is_flag=True, default=None, help="Turn the circuit breaker off.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_app
def edit(
    app: AppContext,
    campaign_id: int,
    window: str | None,
    days: str | None,
    start_at: str | None,
    end_at: str | None,
    max_attempts: int | None,
    retry_delay: str | None,
    daily_cap: str | None,
    caller_id: str | None,
    breaker: str | None,
    no_breaker: bool | None,
    as_json: bool,
    **more: Any,
) -> None:
    """Change a campaign's settings, checked like `campaign create` checks them.

    A running daemon uses them from its next tick; calls already made stand. The settings
    that can be removed take none; the secret of --webhook-url is taken as create takes it.
    """
    change = CampaignEdit(
        window=window,
        days=days,
        start_at=start_at,
        end_at=end_at,
        max_attempts=max_attempts,
        retry_delay=retry_delay,
        daily_cap=daily_cap,
        caller_id=caller_id,
        breaker=breaker,
        no_breaker=no_breaker or None,
        **more,  # the options of the block after --caller-id: CampaignEdit's field names
    )
    done = edit_campaign(app.engine(), campaign_id, change, min_retry_delay=_min_retry_delay())
    before, after = done.before, done.after
    shown = {
        col: (_shown(col, getattr(before, col)), _shown(col, getattr(after, col)))
        for col in EDITABLE
    }
    changed = {col: pair for col, pair in shown.items() if pair[0] != pair[1]}  # {} is None
    if as_json:
        print_json({"campaign_id": campaign_id, "changed": changed})
        return
    if not changed:
        click.echo(f"Campaign {campaign_id} ({after.name!r}): nothing changed.")
        return
    click.echo(f"Campaign {campaign_id} ({after.name!r}) changed:")
    for col, (old, new) in changed.items():
        click.echo(f"  {col}: {old} -> {new}")
    click.echo("A running daemon uses the new settings from its next tick.")
    if after.webhook_secret_fp and "webhook_secret_fp" in changed:  # events wait for it
        click.echo(
            f"Events go out from a daemon with the same secret ({SECRET_ENV} or "
            "run --webhook-secret); others hold them."
        )


def _shown(column: str, value: Any) -> str:
    """A setting as it can be typed back: ``no_answer=2h,busy=15m``, ``30m,2h,1d`` (the
    webhook secret as its fingerprint, which is all that is stored)."""
    if column == "retry_delays":
        pairs = sorted((value or {}).items())
        return ",".join(f"{k}={format_duration(timedelta(seconds=v))}" for k, v in pairs) or "None"
    if column == "retry_schedule" and value:
        return ",".join(format_duration(timedelta(seconds=v)) for v in value)
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "None"
    return str(value)


@click.command()
@click.argument("campaign_id", type=int)
@click.option(
    "--state",
    "states",
    default="exhausted",
    show_default=True,
    help="Closed contacts to call again, comma-separated: exhausted, expired, cancelled, "
    "done; no_outcome adds those whose last call never reported.",
)
@click.option("--outcome", "outcomes", help="Only those whose last outcome is one of these.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_app
def requeue(
    app: AppContext, campaign_id: int, states: str, outcomes: str | None, as_json: bool
) -> None:
    """Give closed contacts fresh attempts; their earlier calls stay in the report.

    A completed campaign runs again.
    """
    done = requeue_contacts(app.engine(), campaign_id, states=states, outcomes=outcomes)
    c = done.campaign
    if as_json:
        print_json(
            {
                "campaign_id": c.id,
                "requeued": done.requeued,
                "status": c.status,
                "previous_status": done.previous_status,
            }
        )
        return
    status = (
        f"now {c.status} (was {done.previous_status})"
        if c.status != done.previous_status
        else c.status
    )
    click.echo(
        f"Campaign {c.id} ({c.name!r}, {status}): {plural(done.requeued, 'contact')} requeued "
        f"with {plural(c.max_attempts, 'fresh attempt')} each."
    )
    if done.requeued and c.end_at is not None and c.end_at <= datetime.now(UTC):
        click.echo(
            f"Note: the campaign ended at {c.end_at:%Y-%m-%d %H:%M} UTC, so they will expire "
            f"at the next tick; move the end with: vaani-campaigns campaign edit {c.id} "
            "--end-at ISO (or none)"
        )


@click.command()
@click.argument("campaign_id", type=int)
@pass_app
def archive(app: AppContext, campaign_id: int) -> None:
    """Hide a finished campaign from `campaign list` (--all shows it); nothing is deleted."""
    c = archive_campaign(app.engine(), campaign_id)
    click.echo(
        f"Campaign {c.id} ({c.name!r}) is archived: `campaign list --all` shows it; "
        "its report is kept."
    )


@click.command()
@click.argument("campaign_id", type=int)
@click.option("--yes", is_flag=True, help="Confirm: delete it for good.")
@pass_app
def delete(app: AppContext, campaign_id: int, yes: bool) -> None:
    """Delete a campaign with its contacts, call attempts and events; refused while calls
    are live."""
    gone = delete_campaign(app.engine(), campaign_id, confirmed=yes)
    click.echo(
        f"Deleted campaign {campaign_id} ({gone.campaign.name!r}): "
        f"{plural(gone.contacts, 'contact')}, {plural(gone.attempts, 'call attempt')}, "
        f"{plural(gone.events, 'event')}."
    )
