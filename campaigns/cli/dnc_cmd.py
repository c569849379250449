"""``vaani-campaigns dnc add|import|list|remove``: the global do-not-call list.

Numbers on the list are never dialled from any campaign: contacts still waiting in running
campaigns are marked ``suppressed`` at once, and the dispatcher checks the list again right
before each call. Numbers are given in any usual format and stored in E.164 (``--region``
for those written without a country code).
"""

from __future__ import annotations

from pathlib import Path

import click

from campaigns.cli.common import AppContext, output_console, pass_app, print_json
from campaigns.services import dnc as service
from campaigns.wording import plural

_region_option = click.option(
    "--region",
    envvar="VAANI_REGION",
    metavar="CC",
    help="Country for numbers written without +country code, e.g. IN [env: VAANI_REGION].",
)


@click.group()
def dnc() -> None:
    """The do-not-call list: numbers never to be called from any campaign."""


@dnc.command("add")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--reason", help="Why (kept with the entry, e.g. 'asked on call 2026-11-02').")
@_region_option
@pass_app
def add_cmd(
    app: AppContext, numbers: tuple[str, ...], reason: str | None, region: str | None
) -> None:
    """Add NUMBERS to the list."""
    service.parse_numbers(numbers, region)  # an unreadable number opens no database
    change = service.add_numbers(app.engine(), numbers, reason=reason, region=region)
    click.echo(
        f"Added {plural(change.added, 'number')} to the do-not-call list "
        f"({len(numbers) - change.added} already on it); "
        f"{plural(change.suppressed_contacts, 'waiting contact')} suppressed."
    )


@dnc.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--reason", help="Why (kept with every entry).")
@_region_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def import_cmd(
    app: AppContext, file: Path, reason: str | None, region: str | None, as_json: bool
) -> None:
    """Add every number of FILE (a CSV with a phone column, or one number per line)."""
    done = service.import_file(app.engine(), file, reason=reason, region=region)
    if as_json:
        print_json(
            {
                "numbers": done.numbers,
                "added": done.change.added,
                "suppressed_contacts": done.change.suppressed_contacts,
                "rejected": [
                    {"line": r.line, "value": r.raw, "reason": r.reason} for r in done.rejected
                ],
            }
        )
        return
    click.echo(
        f"{file}: {plural(done.numbers, 'number')}, {done.change.added} new on the "
        f"do-not-call list; {plural(done.change.suppressed_contacts, 'waiting contact')} "
        "suppressed."
    )
    for r in done.rejected:
        click.echo(f"  line {r.line}: {r.raw!r}: {r.reason}", err=True)


@dnc.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@pass_app
def list_cmd(app: AppContext, as_json: bool) -> None:
    """Show the global do-not-call list."""
    entries = service.dnc_entries(app.engine())
    if as_json:
        print_json(
            [
                {
                    "phone": e.phone_e164,
                    "reason": e.reason,
                    "source": e.source,
                    "added_at": e.added_at.isoformat(),
                }
                for e in entries
            ]
        )
        return
    if not entries:
        click.echo("The do-not-call list is empty.")
        return
    from rich.table import Table

    table = Table("number", "added (UTC)", "source", "reason")
    for e in entries:
        table.add_row(
            e.phone_e164, e.added_at.strftime("%Y-%m-%d %H:%M"), e.source or "", e.reason or ""
        )
    output_console().print(table)


@dnc.command("remove")
@click.argument("numbers", nargs=-1, required=True)
@_region_option
@pass_app
def remove_cmd(app: AppContext, numbers: tuple[str, ...], region: str | None) -> None:
    """Remove NUMBERS from the list. Contacts already suppressed stay suppressed."""
    service.parse_numbers(numbers, region)  # an unreadable number opens no database
    done = service.remove_numbers(app.engine(), numbers, region=region)
    click.echo(
        f"Removed {plural(done.removed, 'number')} from the do-not-call list"
        + (f"; {plural(done.missing, 'was not', 'were not')} on it." if done.missing else ".")
    )
