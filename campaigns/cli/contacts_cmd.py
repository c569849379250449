"""``vaani-campaigns campaign contacts ID [--state] [--outcome] [--json]``: who is where, without
exporting a report.

Rows are read page by page (keyset paging, as in the console) and printed as they come, so a
million contacts stream in flat memory; ``--json`` prints one JSON array, also streamed.
"""

from __future__ import annotations

import json
from typing import Any

import click

from campaigns.cli.common import AppContext, pass_app
from campaigns.services.manage import iter_contacts
from storage.contacts import ContactRow

_HEADER = f"{'ROW':>6}  {'PHONE':<16}  {'STATE':<16}  {'OUTCOME':<10}  {'CALLS':>5}  NAME"


def _json(c: ContactRow) -> dict[str, Any]:
    return {
        "row": c.row_number,
        "phone_e164": c.phone_e164,
        "raw_phone": c.raw_phone,
        "name": c.name,
        "state": c.state,
        "outcome": c.outcome,
        "reason": c.reason,
        "attempts": c.attempts,
        "next_attempt_at": c.next_attempt_at.isoformat() if c.next_attempt_at else None,
        "last_attempt_at": c.last_attempt_at.isoformat() if c.last_attempt_at else None,
    }


def _line(c: ContactRow) -> str:
    phone = c.phone_e164 or c.raw_phone or ""
    line = (
        f"{c.row_number:>6}  {phone:<16}  {c.state:<16}  {c.outcome or '-':<10}  "
        f"{c.attempts:>5}  {c.name or ''}"
    )
    return line + (f"  ({c.reason})" if c.reason else "")


@click.command()
@click.argument("campaign_id", type=int)
@click.option("--state", "states", help="Only these states, comma-separated (e.g. exhausted).")
@click.option("--outcome", "outcomes", help="Only these last outcomes (e.g. no_answer,busy).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array for scripts.")
@pass_app
def contacts(
    app: AppContext, campaign_id: int, states: str | None, outcomes: str | None, as_json: bool
) -> None:
    """List a campaign's contacts with their state, last outcome and calls made."""
    rows = iter_contacts(app.engine(), campaign_id, states=states, outcomes=outcomes)
    first = next(rows, None)  # a bad filter or id fails here, before anything is printed
    if as_json:
        click.echo("[", nl=first is None)
        if first is not None:
            click.echo("  " + json.dumps(_json(first), ensure_ascii=False), nl=False)
            for c in rows:
                click.echo(",\n  " + json.dumps(_json(c), ensure_ascii=False), nl=False)
            click.echo()
        click.echo("]")
        return
    if first is None:
        click.echo("No contacts match." if states or outcomes else "No contacts.")
        return
    click.echo(_HEADER)
    click.echo(_line(first))
    for c in rows:
        click.echo(_line(c))
