"""``vaani-campaigns run``: placeholder, being built."""

from __future__ import annotations

import click


@click.command()
def run() -> None:
    """Run the scheduler daemon."""
    raise click.ClickException("not built yet")
