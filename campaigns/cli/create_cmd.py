"""``vaani-campaigns campaign create``: placeholder, being built (issue 3)."""

from __future__ import annotations

import click


@click.command()
def create() -> None:
    """Create a campaign from a contact CSV."""
    raise click.ClickException("not built yet")
