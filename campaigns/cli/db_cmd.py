"""``vaani-campaigns db upgrade``: bring the database schema up to date."""

from __future__ import annotations

import click

from campaigns.cli.common import AppContext, pass_app


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@pass_app
def upgrade(app: AppContext) -> None:
    """Create the schema or migrate it to the current version."""
    app.engine()
    click.echo("database is up to date")
