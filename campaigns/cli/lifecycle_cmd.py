"""``vaani-campaigns campaign list|start|pause|resume|stop|cancel``.

``list`` prints a table of campaigns with their progress (``--json`` for scripts). The other
commands move one campaign through its lifecycle (the use cases are in
``campaigns.services.lifecycle``; this module reads flags and prints). A running daemon
notices the change at its next tick, no restart needed. An unknown id or a step the
campaign's status does not allow exits 1 with one line saying why and what to do instead:
the service's error, printed by the root handler.
"""

from __future__ import annotations

from typing import Any

import click

from campaigns.cli.common import AppContext, output_console, pass_app, print_json
from campaigns.services.lifecycle import (
    Action,
    CampaignProgress,
    Transitioned,
    list_campaigns,
    transition,
)
from campaigns.wording import plural
from storage.states import CampaignStatus


def _campaign_json(item: CampaignProgress) -> dict[str, Any]:
    c, progress = item.campaign, item.progress
    return {
        "id": c.id,
        "name": c.name,
        "agent_id": c.agent_id,
        "status": c.status,
        "status_reason": c.status_reason,
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        "archived_at": c.archived_at.isoformat() if c.archived_at else None,
        **progress.summary(),
        "counts": progress.counts,
    }


@click.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in CampaignStatus]),
    help="Only campaigns in this status (repeatable).",
)
@click.option("--all", "show_all", is_flag=True, help="Archived campaigns too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_app
def list_(app: AppContext, statuses: tuple[str, ...], show_all: bool, as_json: bool) -> None:
    """List campaigns with their status and progress (archived ones with --all)."""
    campaigns = list_campaigns(app.engine(), statuses=statuses or None, archived=show_all)
    if as_json:
        print_json([_campaign_json(c) for c in campaigns])
        return
    if not campaigns:
        click.echo(
            "No campaigns"
            + (" in that status." if statuses else " yet.")
            + " Create one with: vaani-campaigns campaign create NAME --csv FILE --agent-id ID"
        )
        return
    _print_table(campaigns)


def _print_table(campaigns: list[CampaignProgress]) -> None:
    from rich.table import Table

    console = output_console()  # piped: no terminal width to fit, never wrap or cut cells
    with_reason = any(item.campaign.status_reason for item in campaigns)
    table = Table(show_edge=False, header_style="bold")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Status", no_wrap=True)
    for header in ("Contacts", "Waiting", "In flight", "Done"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("Created (UTC)", no_wrap=True)
    if with_reason:
        table.add_column("Reason", overflow="fold")
    for item in campaigns:
        c, s = item.campaign, item.progress.summary()
        row = [
            str(c.id),
            c.name,
            c.status + (" (archived)" if c.archived_at else ""),
            *(str(s[k]) for k in ("total", "waiting", "in_flight", "done")),
            c.created_at.strftime("%Y-%m-%d %H:%M"),
        ]
        if with_reason:
            row.append(c.status_reason or "")
        table.add_row(*row)
    console.print(table)


def _describe(done: Transitioned) -> str:
    result, s = done.result, done.progress
    c = result.campaign
    head = f"Campaign {c.id} ({c.name!r}) is now {c.status} (was {result.previous_status})."
    flight = (
        f" {plural(s.in_flight, 'call')} in flight will still report back." if s.in_flight else ""
    )
    if done.action == "start":
        return (
            f"{head} {plural(s.waiting, 'contact')} waiting; a running daemon "
            "(vaani-campaigns run) starts dialling within one tick."
        )
    if done.action == "pause":
        return f"{head} No new calls will be placed.{flight}"
    if done.action == "resume":
        return (
            f"{head} {plural(s.waiting, 'contact')} waiting; nobody already called is re-dialled."
        )
    # stop / cancel
    return (
        f"{head} {plural(result.contacts_cancelled, 'waiting contact')} cancelled; "
        f"nothing more will be dialled.{flight}"
    )


def _lifecycle_command(action: Action, help_text: str, *, reason: bool) -> click.Command:
    @pass_app
    def command(
        app: AppContext, campaign_id: int, as_json: bool, reason: str | None = None
    ) -> None:
        done = transition(app.engine(), action, campaign_id, reason=reason)
        if as_json:
            result = done.result
            print_json(
                {
                    "campaign_id": result.campaign.id,
                    "status": result.campaign.status,
                    "previous_status": result.previous_status,
                    "contacts_cancelled": result.contacts_cancelled,
                    "counts": done.progress.counts,
                }
            )
        else:
            click.echo(_describe(done))

    command.__doc__ = help_text
    params = [
        click.Argument(["campaign_id"], type=int),
        click.Option(["--json", "as_json"], is_flag=True, help="Print JSON for scripts."),
    ]
    if reason:
        params.append(
            click.Option(["--reason"], metavar="TEXT", help="Why; kept with the campaign.")
        )
    return click.Command(action, callback=command, params=params, help=help_text)


start = _lifecycle_command(
    "start",
    "Start a draft campaign: a running daemon begins dialling it.",
    reason=False,
)
pause = _lifecycle_command(
    "pause",
    "Pause a running campaign: no new calls; calls in flight still report back.",
    reason=True,
)
resume = _lifecycle_command(
    "resume",
    "Resume a paused campaign. Nobody already called is re-dialled.",
    reason=False,
)
stop = _lifecycle_command(
    "stop",
    "Stop a campaign: waiting contacts are cancelled, calls in flight finish.",
    reason=True,
)
cancel = _lifecycle_command(
    "cancel",
    "Cancel a campaign: nothing more is dialled; waiting contacts are cancelled.",
    reason=True,
)

LIFECYCLE_COMMANDS: tuple[click.Command, ...] = (list_, start, pause, resume, stop, cancel)
