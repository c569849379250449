"""``vaani-campaigns report ID --out FILE.csv``: the outcome report (see ``campaigns.report``).

The report is written by :func:`campaigns.report.write_report` to a binary stream; where the
bytes go is decided here, in one small function (:func:`_open_destination`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import click

from campaigns.cli.common import AppContext, pass_app, print_json
from campaigns.errors import UserError
from campaigns.outputs import OutputFile, Protected, open_output_file, protected_for
from campaigns.report import report_options, write_report
from campaigns.wording import plural


@contextmanager
def _open_destination(out: str, protected: Iterable[Protected]) -> Iterator[OutputFile]:
    """The stream the report goes to, through :func:`campaigns.outputs.open_output`: stdout
    for ``-``, a FIFO or device written into, else the file at ``out``, written whole or not
    at all; never the database (``protected``). A reader of stdout that goes away
    (``| head``) ends the command quietly, like a SIGPIPE."""
    try:
        with open_output_file(out, protected=protected) as destination:
            yield destination
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise click.exceptions.Exit(141) from None
    except OSError as exc:
        raise UserError(f"cannot write the report to {out}: {exc.strerror or exc}") from None


@click.command()
@click.argument("campaign_id", type=int)
@click.option(
    "--out",
    "-o",
    required=True,
    metavar="FILE.csv",
    help="Where to write the CSV; '-' writes to standard output. A file is written whole or "
    "not at all.",
)
@click.option(
    "--attempts",
    is_flag=True,
    help="One row per call attempt instead of one row per contact.",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    metavar="STATE",
    help="Only rows in this state (repeatable or comma-separated): contact states "
    "(done, exhausted, invalid, ...), or attempt states with --attempts.",
)
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    metavar="OUTCOME",
    help="Only rows with this outcome (repeatable or comma-separated): answered, no_answer, "
    "busy, failed, voicemail, no_outcome.",
)
@click.option(
    "--columns",
    metavar="A,B,C",
    help="Write only these columns, in this order (names as in the full report's header).",
)
@click.option(
    "--since",
    metavar="ISO",
    help="Only contacts updated or attempted at or after this time (attempts made, accepted "
    "or finished since, with --attempts). Times without an offset are UTC.",
)
@click.option(
    "--transcripts",
    is_flag=True,
    help="Add a last 'transcript' column: what was said on the row's call, one line per turn "
    "('agent: ...', 'user: ...'), empty when the provider sent none.",
)
@click.option(
    "--no-bom",
    is_flag=True,
    help="Plain UTF-8. By default a file starts with a UTF-8 byte order mark so that Excel "
    "reads accents and scripts correctly; a pipe or a terminal (--out - | ...) never gets one.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"path", "rows"} when done (to stderr when the CSV goes to stdout).',
)
@pass_app
def report(
    app: AppContext,
    campaign_id: int,
    out: str,
    attempts: bool,
    states: tuple[str, ...],
    outcomes: tuple[str, ...],
    columns: str | None,
    since: str | None,
    transcripts: bool,
    no_bom: bool,
    as_json: bool,
) -> None:
    """Export a campaign's outcome report as a spreadsheet-safe CSV.

    One row per contact in import order: the original columns under their original headers,
    then phone_e164, state, outcome, reason, attempts, last_call_id, last_call_at (UTC),
    duration_s, summary, and an entity.<key> column per value the agent extracted (nested
    values as JSON). Contacts never called (invalid, suppressed, expired, cancelled) are
    included with their reason. Cells that a spreadsheet would run as a formula are prefixed
    with a single quote; phone numbers and plain numbers are left intact.
    """
    options = report_options(
        attempts=attempts,
        states=states,
        outcomes=outcomes,
        columns=columns,
        since=since,
        bom=not no_bom,
        transcripts=transcripts,
    )
    engine = app.engine()
    with _open_destination(out, protected_for(engine)) as destination:
        if not destination.regular:  # the mark is for spreadsheets, not for the next program
            options = replace(options, bom=False)
        result = write_report(engine, campaign_id, destination.stream, options)
    where = out if out == "-" else str(Path(out))
    if as_json:
        data = {"path": where, "rows": result.rows}
        if where == "-":
            click.echo(json.dumps(data), err=True)
        else:
            print_json(data)
    elif where != "-":
        click.echo(f"Wrote {plural(result.rows, 'row')} to {where}", err=True)
