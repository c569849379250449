"""``vaani-campaigns campaign ...``: create (import a CSV), list, show, pause, resume, stop, cancel.

Each command lives in its own module; this one only assembles the group.
"""

from __future__ import annotations

import click

from campaigns.cli.create_cmd import create
from campaigns.cli.lifecycle_cmd import LIFECYCLE_COMMANDS
from campaigns.cli.show_cmd import show


@click.group()
def campaign() -> None:
    """Create and manage campaigns."""


for _cmd in (create, show, *LIFECYCLE_COMMANDS):
    campaign.add_command(_cmd)
