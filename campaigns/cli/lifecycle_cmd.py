"""``vaani-campaigns campaign list|start|pause|resume|stop|cancel``.

``list`` prints a table of campaigns with their progress (``--json`` for scripts). The other
commands move one campaign through its lifecycle (see ``storage.campaigns_repo``); a running
daemon notices the change at its next tick, no restart needed. An unknown id or a step the
campaign's status does not allow exits 1 with one line saying why and what to do instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from campaigns.cli.common import AppContext, pass_app, print_json
from campaigns.errors import UserError
from storage import campaigns_repo as repo
from storage.errors import NotFound, StorageError
from storage.states import CampaignStatus

WAITING = ("pending", "retry_wait")
IN_FLIGHT = ("dialing", "awaiting_outcome")


def _summary(counts: dict[str, int]) -> dict[str, int]:
    return {
        "total": sum(counts.values()),
        "waiting": sum(counts[s] for s in WAITING),
        "in_flight": sum(counts[s] for s in IN_FLIGHT),
        "done": counts["done"],
    }


def _campaign_json(c: repo.CampaignRecord, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "agent_id": c.agent_id,
        "status": c.status,
        "status_reason": c.status_reason,
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        **_summary(counts),
        "counts": counts,
    }


@click.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in CampaignStatus]),
    help="Only campaigns in this status (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_app
def list_(app: AppContext, statuses: tuple[str, ...], as_json: bool) -> None:
    """List campaigns with their status and progress."""
    engine = app.engine()
    campaigns = repo.list_campaigns(engine, statuses=statuses or None)
    counts = repo.counts_by_campaign(engine)
    if as_json:
        print_json([_campaign_json(c, counts[c.id]) for c in campaigns])
        return
    if not campaigns:
        click.echo(
            "No campaigns"
            + (" in that status." if statuses else " yet.")
            + " Create one with: vaani-campaigns campaign create NAME --csv FILE --agent-id ID"
        )
        return
    _print_table(campaigns, counts)


def _print_table(campaigns: list[repo.CampaignRecord], counts: dict[int, dict[str, int]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped: no terminal width to fit, never wrap or cut cells
        console = Console(width=1000)
    with_reason = any(c.status_reason for c in campaigns)
    table = Table(show_edge=False, header_style="bold")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Status", no_wrap=True)
    for header in ("Contacts", "Waiting", "In flight", "Done"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("Created (UTC)", no_wrap=True)
    if with_reason:
        table.add_column("Reason", overflow="fold")
    for c in campaigns:
        s = _summary(counts[c.id])
        row = [
            str(c.id),
            c.name,
            c.status,
            *(str(s[k]) for k in ("total", "waiting", "in_flight", "done")),
            c.created_at.strftime("%Y-%m-%d %H:%M"),
        ]
        if with_reason:
            row.append(c.status_reason or "")
        table.add_row(*row)
    console.print(table)


def _describe(action: str, result: repo.TransitionResult, counts: dict[str, int]) -> str:
    c = result.campaign
    s = _summary(counts)
    head = f"Campaign {c.id} ({c.name!r}) is now {c.status} (was {result.previous_status})."
    flight = (
        f" {s['in_flight']} call(s) in flight will still report back." if s["in_flight"] else ""
    )
    if action == "start":
        return (
            f"{head} {s['waiting']} contact(s) waiting; a running daemon "
            "(vaani-campaigns run) starts dialling within one tick."
        )
    if action == "pause":
        return f"{head} No new calls will be placed.{flight}"
    if action == "resume":
        return f"{head} {s['waiting']} contact(s) waiting; nobody already called is re-dialled."
    # stop / cancel
    return (
        f"{head} {result.contacts_cancelled} waiting contact(s) cancelled; "
        f"nothing more will be dialled.{flight}"
    )


def _lifecycle_command(
    action: str, func: Callable[..., repo.TransitionResult], help_text: str, *, reason: bool
) -> click.Command:
    @pass_app
    def command(app: AppContext, campaign_id: int, as_json: bool, **kwargs: Any) -> None:
        engine = app.engine()
        try:
            result = func(engine, campaign_id, **kwargs)
        except NotFound as exc:
            raise UserError(f"{exc} (see: vaani-campaigns campaign list)") from exc
        except StorageError as exc:
            raise UserError(str(exc)) from exc
        counts = repo.counts_by_state(engine, campaign_id)
        if as_json:
            print_json(
                {
                    "campaign_id": result.campaign.id,
                    "status": result.campaign.status,
                    "previous_status": result.previous_status,
                    "contacts_cancelled": result.contacts_cancelled,
                    "counts": counts,
                }
            )
        else:
            click.echo(_describe(action, result, counts))

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
    repo.start_campaign,
    "Start a draft campaign: a running daemon begins dialling it.",
    reason=False,
)
pause = _lifecycle_command(
    "pause",
    repo.pause_campaign,
    "Pause a running campaign: no new calls; calls in flight still report back.",
    reason=True,
)
resume = _lifecycle_command(
    "resume",
    repo.resume_campaign,
    "Resume a paused campaign. Nobody already called is re-dialled.",
    reason=False,
)
stop = _lifecycle_command(
    "stop",
    repo.stop_campaign,
    "Stop a campaign: waiting contacts are cancelled, calls in flight finish.",
    reason=True,
)
cancel = _lifecycle_command(
    "cancel",
    repo.cancel_campaign,
    "Cancel a campaign: nothing more is dialled; waiting contacts are cancelled.",
    reason=True,
)

LIFECYCLE_COMMANDS: tuple[click.Command, ...] = (list_, start, pause, resume, stop, cancel)
