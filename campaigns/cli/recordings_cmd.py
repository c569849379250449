"""``vaani-campaigns campaign recordings ID --out DIR``: the audio of every answered call.

The use case is :mod:`campaigns.services.recordings` (which calls, the file names, resuming,
never replacing a file); this module reads the flags, opens the provider's client through
the plan's rate limiter (:func:`scheduler.runner.plan_client`, the same limiter a running
daemon uses, shared across daemons on PostgreSQL) and prints what happened: one line per file
fetched or skipped on stderr, a summary on stdout (``--json`` for scripts).

The key comes from where ``run`` takes it (``--api-key``, ``VAANI_API_KEY``, the config
file's ``[providers.NAME]`` tables). Exit codes: 0 done (calls without a recording are
counted, not fatal), 1 for an unknown campaign, a provider without recordings or an output
directory that cannot be used, 3 when the API refused the key or the balance or could not
be reached (the file in progress is kept as ``.part`` and resumes on the next run).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from campaigns.cli.common import AppContext, pass_app, print_json
from campaigns.cli.run_cmd import ProviderKeys, _rate, api_options, rate_limit_option
from campaigns.errors import UserError
from campaigns.wording import plural

if TYPE_CHECKING:
    from campaigns.services.recordings import FileDone, RecordingsSummary, Target
    from scheduler.runner import Drive
    from storage.engine import Engine


@click.command()
@click.argument("campaign_id", type=int)
@click.option(
    "--out",
    "-o",
    "out_dir",
    required=True,
    metavar="DIR",
    help="The directory the recordings go to (created if missing), one "
    "<attempt_id>-<call_id>.ogg per answered call. Files already there are kept; an "
    "interrupted download resumes.",
)
@api_options
@rate_limit_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary (and each file) as JSON.")
@pass_app
def recordings(
    app: AppContext,
    campaign_id: int,
    out_dir: str,
    api_key: str | None,
    base_url: str,
    rate_limit: str,
    as_json: bool,
) -> None:
    """Download the audio of every answered call of a campaign, to review calls by ear.

    Resumable: run it again to fetch only what is missing. Calls the provider kept no
    recording of are counted and skipped.

    Exit codes: 0 done, 1 for an unknown campaign, a provider without recordings or an
    unusable directory, 3 when the API refused the key or the balance or could not be
    reached (the file in progress resumes on the next run).
    """
    from campaigns.outputs import protected_for
    from campaigns.services.manage import LIST_HINT
    from campaigns.services.recordings import prepare
    from scheduler.logs import setup_logging
    from scheduler.providers import provider_spec
    from storage.campaigns_repo import get_campaign
    from storage.errors import NotFound
    from storage.recordings import answered_calls

    rate = _rate(rate_limit, "--rate-limit")
    engine = app.engine()
    try:
        campaign = get_campaign(engine, campaign_id)
    except NotFound as exc:
        raise NotFound(f"{exc} ({LIST_HINT})") from None
    spec = provider_spec(campaign.provider)
    if not callable(getattr(spec.build, "stream_recording", None)):
        raise UserError(
            f"provider {spec.label} does not offer recording downloads "
            f"(campaign {campaign_id} calls through it)"
        )
    keys = ProviderKeys(api_key, base_url)
    drive = keys.drive(campaign.provider)
    setup_logging(
        json_lines=False,
        level=logging.DEBUG if app.debug else logging.WARNING,
        secrets=keys.secrets,
    )
    calls = [c for c in answered_calls(engine, campaign_id) if c.provider == campaign.provider]
    targets = prepare(calls, out_dir, protected_for(engine))
    summary = asyncio.run(
        _download(engine, drive, rate, targets, out_dir, lambda f: _show(f, quiet=as_json))
    )
    if as_json:
        print_json(summary.as_dict())
    else:
        click.echo(_summary_line(summary))


async def _download(
    engine: Engine,
    drive: Drive,
    rate: float,
    targets: list[Target],
    out_dir: str,
    on_file: Callable[[FileDone], None],
) -> RecordingsSummary:
    from campaigns.services.recordings import download_all
    from scheduler import dbexec
    from scheduler.providers.base import RecordingSource
    from scheduler.runner import plan_client

    try:
        async with plan_client(engine, drive, rate=rate) as client:
            if not isinstance(client, RecordingSource):
                raise UserError(f"provider {drive.provider} does not offer recording downloads")
            return await download_all(client, targets, out_dir, on_file=on_file)
    finally:
        dbexec.shutdown()


def _show(done: FileDone, *, quiet: bool) -> None:
    """One line on stderr per file fetched or left alone (a file already there is silent)."""
    from campaigns.services.recordings import size_text

    if done.status == "skipped":
        click.echo(f"Warning: skipped {done.name}: {done.note}", err=True)
    elif quiet or done.status == "present":
        return
    elif done.status == "unavailable":
        click.echo(f"  {done.name}: not available ({done.note})", err=True)
    else:
        how = "resumed" if done.status == "resumed" else "downloaded"
        click.echo(f"  {done.name}: {how}, {size_text(done.bytes)}", err=True)


def _summary_line(summary: RecordingsSummary) -> str:
    """``Downloaded 12 recordings (3.4 MB) to DIR, 5 already there, 2 not available (404)``."""
    from campaigns.services.recordings import size_text

    n = summary.count("downloaded", "resumed")
    parts = [
        f"Downloaded {plural(n, 'recording')} ({size_text(summary.downloaded_bytes)}) "
        f"to {summary.directory}"
    ]
    if summary.count("resumed"):
        parts[0] += f" ({summary.count('resumed')} resumed)"
    parts.append(f"{summary.count('present')} already there")
    parts.append(f"{summary.count('unavailable')} not available (404)")
    if summary.count("skipped"):
        parts.append(f"{summary.count('skipped')} skipped (the name is taken by another file)")
    return ", ".join(parts)
