"""``vaani-campaigns campaign list|pause|resume|stop|cancel``: placeholder, being built."""

from __future__ import annotations

import click


@click.command("list")
def list_() -> None:
    """List campaigns."""
    raise click.ClickException("not built yet")


LIFECYCLE_COMMANDS: tuple[click.Command, ...] = (list_,)
