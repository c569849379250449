"""``vaani-campaigns report``: placeholder, being built."""

from __future__ import annotations

import click


@click.command()
def report() -> None:
    """Export a campaign's outcome report as CSV."""
    raise click.ClickException("not built yet")
