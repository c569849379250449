"""``vaani-campaigns dnc``: placeholder, being built."""

from __future__ import annotations

import click


@click.command()
def dnc() -> None:
    """The do-not-call (suppression) list."""
    raise click.ClickException("not built yet")
