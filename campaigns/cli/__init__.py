"""The ``vaani-campaigns`` command line.

Each subcommand lives in its own module and is registered here. ``main`` is the console
script: it turns every expected problem (``CampaignsError``, our Vaani and storage errors)
into one clear line and an exit code (0 ok, 1 user error, 2 usage, 3 service/auth problem);
``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import sys

import click

from campaigns.cli.common import handle_errors, init_app, root_options
from campaigns.cli.lazy import LazyGroup

#: subcommand -> "module:attribute", imported only when that subcommand runs
COMMANDS = {
    "campaign": "campaigns.cli.campaign_cmd:campaign",
    "dnc": "campaigns.cli.dnc_cmd:dnc",
    "run": "campaigns.cli.run_cmd:run",
    "report": "campaigns.cli.report_cmd:report",
    "sandbox": "campaigns.cli.sandbox_cmd:sandbox",
    "demo": "campaigns.cli.demo_cmd:demo",
    "serve": "campaigns.cli.serve_cmd:serve",
    "db": "campaigns.cli.db_cmd:db",
}


def build_cli() -> click.Group:
    """Build the command tree (a function, so that tests can call it)."""

    @click.group(
        cls=LazyGroup,
        lazy=COMMANDS,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    @root_options
    @click.pass_context
    def cli(ctx: click.Context, db_url: str | None, debug: bool) -> None:
        """Outbound calling campaigns on the Vaani voice-AI API.

        Import contacts from a CSV, place calls inside each contact's legal calling hours at
        the pace the API plan allows, collect outcomes and export reports.

        The global options --db, --config and --debug may be given anywhere on the command
        line (`campaign list --db x.db`).
        """
        init_app(ctx, db_url, debug)

    return cli


def main(argv: list[str] | None = None) -> None:
    cli = build_cli()
    sys.exit(handle_errors(cli, argv))
