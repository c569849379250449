"""``vaani-campaigns demo``: placeholder, being built."""

from __future__ import annotations

import click


@click.command()
def demo() -> None:
    """Run the whole product end to end on a local sandbox."""
    raise click.ClickException("not built yet")
