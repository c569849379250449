"""``vaani-campaigns sandbox``: placeholder until the sandbox lands (issue 2)."""

import click


@click.command()
def sandbox() -> None:
    """Run a local stand-in of the Vaani API."""
    raise click.ClickException("the sandbox is not built yet")
