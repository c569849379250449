"""``vaani-campaigns dnc add|import|list|remove``: the global do-not-call list.

Numbers on the list are never dialled from any campaign: contacts still waiting in running
campaigns are marked ``suppressed`` at once, and the dispatcher checks the list again right
before each call. Numbers are given in any usual format and stored in E.164 (``--region``
for those written without a country code).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy import Engine, select

from campaigns.cli.common import AppContext, pass_app, print_json
from campaigns.errors import UserError
from storage import suppressions
from storage.models import Campaign
from storage.states import CAMPAIGN_FINAL

if TYPE_CHECKING:
    from campaigns.importer.phones import PhoneParser

_region_option = click.option(
    "--region",
    envvar="VAANI_REGION",
    show_envvar=True,
    metavar="CC",
    help="Country for numbers written without +country code, e.g. IN.",
)


def _parser(region: str | None) -> PhoneParser:
    from campaigns.importer.phones import PhoneParser  # phonenumbers loads in ~0.3 s

    try:
        return PhoneParser(region)
    except ValueError as exc:
        raise UserError(f"--region: {exc}") from None


def _parse_numbers(numbers: tuple[str, ...], region: str | None) -> list[str]:
    parser = _parser(region)
    out: list[str] = []
    for raw in numbers:
        result = parser.parse(raw)
        if result.e164 is None:
            raise UserError(f"{raw!r}: {result.error}. Nothing was changed.")
        out.append(result.e164)
    return out


def _apply_to_campaigns(engine: Engine) -> int:
    """Suppress waiting contacts of every campaign that may still dial (one transaction)."""
    with engine.begin() as conn:
        ids = conn.execute(
            select(Campaign.id).where(Campaign.status.notin_([str(s) for s in CAMPAIGN_FINAL]))
        ).scalars()
        return sum(suppressions.mark_suppressed(conn, cid) for cid in list(ids))


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
    phones = _parse_numbers(numbers, region)
    engine = app.engine()
    with engine.begin() as conn:
        added = suppressions.add(conn, phones, reason=reason, source="cli")
    marked = _apply_to_campaigns(engine)
    click.echo(
        f"Added {added} number(s) to the do-not-call list ({len(phones) - added} already on it); "
        f"{marked} waiting contact(s) suppressed."
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
    from campaigns.importer.dncfile import read_dnc_file

    phones, rejected = read_dnc_file(file, _parser(region))
    engine = app.engine()
    with engine.begin() as conn:
        added = suppressions.add(conn, phones, reason=reason, source=file.name)
    marked = _apply_to_campaigns(engine)
    if as_json:
        print_json(
            {
                "numbers": len(phones),
                "added": added,
                "suppressed_contacts": marked,
                "rejected": [
                    {"line": r.line, "value": r.raw, "reason": r.reason} for r in rejected
                ],
            }
        )
        return
    click.echo(
        f"{file}: {len(phones)} number(s), {added} new on the do-not-call list; "
        f"{marked} waiting contact(s) suppressed."
    )
    for r in rejected:
        click.echo(f"  line {r.line}: {r.raw!r}: {r.reason}", err=True)


@dnc.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@pass_app
def list_cmd(app: AppContext, as_json: bool) -> None:
    """Show the global do-not-call list."""
    with app.engine().connect() as conn:
        entries = list(suppressions.entries(conn))
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
    from rich.console import Console
    from rich.table import Table

    table = Table("number", "added (UTC)", "source", "reason")
    for e in entries:
        table.add_row(
            e.phone_e164, e.added_at.strftime("%Y-%m-%d %H:%M"), e.source or "", e.reason or ""
        )
    Console().print(table)


@dnc.command("remove")
@click.argument("numbers", nargs=-1, required=True)
@_region_option
@pass_app
def remove_cmd(app: AppContext, numbers: tuple[str, ...], region: str | None) -> None:
    """Remove NUMBERS from the list. Contacts already suppressed stay suppressed."""
    phones = _parse_numbers(numbers, region)
    with app.engine().begin() as conn:
        removed = suppressions.remove(conn, phones)
    missing = len(set(phones)) - removed
    click.echo(
        f"Removed {removed} number(s) from the do-not-call list"
        + (f"; {missing} were not on it." if missing else ".")
    )
