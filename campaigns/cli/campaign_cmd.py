"""``vaani-campaigns campaign ...``: create (import a CSV), list, show, pause, resume, stop, cancel."""

from __future__ import annotations

import click

from campaigns.cli.show_cmd import show


@click.group()
def campaign() -> None:
    """Create and manage campaigns."""


campaign.add_command(show)
