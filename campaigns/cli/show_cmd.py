"""``vaani-campaigns campaign show ID``: the campaign summary people ask for."""

from __future__ import annotations

import click


@click.command()
@click.argument("campaign_id", type=int)
def show(campaign_id: int) -> None:
    """Show a campaign: counts per state and outcome, pickup rate, progress."""
    raise click.ClickException("not built yet")
