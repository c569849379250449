"""``vaani-campaigns demo``: the whole product, end to end, on a fresh machine.

Starts the sandbox on a free loopback port (no real phone is ever called), imports
``sample_data/contacts.csv`` (with ``sample_data/dnc.txt`` as the do-not-call list) into a fresh
SQLite file, runs the daemon until every contact is finished with a live progress line, prints
the campaign summary and writes the report CSV. Nothing needs configuring, and nothing needs the
source tree: the sample files are package data (the ``sample_data`` package), found with
``importlib.resources``, so the demo works from a plain ``pip install .`` in any directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import click

from campaigns.cli.common import AppContext, output_console, pass_app
from campaigns.errors import UserError
from campaigns.wording import plural

SAMPLE_PACKAGE = "sample_data"
DEMO_KEY = "demo-sandbox-key"


def sample_file(stack: contextlib.ExitStack, name: str) -> Path:
    """A real path to the shipped sample file ``name``, valid until ``stack`` closes (a
    zipped install would extract it to a temporary file)."""
    return stack.enter_context(as_file(files(SAMPLE_PACKAGE) / name))


def _start_sandbox(seed: int, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    ready = workdir / "sandbox.url"
    log = (workdir / "sandbox.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "campaigns",
            "sandbox",
            "--port",
            "0",
            "--ready-file",
            str(ready),
            "--api-key",
            DEMO_KEY,
            "--seed",
            str(seed),
            "--answer-rate",
            "0.7",
            "--call-seconds",
            "1-3",
            "--background-calls",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(f"the sandbox did not start; see {workdir / 'sandbox.log'}")
        if ready.exists() and ready.read_text().strip():
            return proc, ready.read_text().strip()
        time.sleep(0.05)
    proc.kill()
    raise UserError("the sandbox did not start within 30 s")


def _fresh_db(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def _serve(engine: Any, settings: Any, base_url: str, port: int, console: Any) -> int:
    """The daemon and the web console in one event loop until Ctrl-C (``demo --serve``)."""
    from campaigns.cli.serve_cmd import start_console
    from scheduler.runner import run_daemon

    console.print("[bold]3.[/] the scheduler and the web console run until Ctrl-C")

    def daemon(stop: threading.Event) -> Any:
        return run_daemon(
            engine, settings, api_key=DEMO_KEY, base_url=base_url, stop_requested=stop
        )

    return start_console(
        engine,
        host="127.0.0.1",
        port=port,
        token=None,
        max_upload_mb=200,
        daemon=daemon,
        secrets_to_redact=[DEMO_KEY],
    )


@click.command()
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("vaani-demo"),
    show_default=True,
    help="Where the demo's database, report and rejects go.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Contacts to call [default: sample_data/contacts.csv].",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Sandbox seed.")
@click.option("--rate-limit", default="20/s", show_default=True, help="Daemon's request rate.")
@click.option(
    "--serve",
    "with_console",
    is_flag=True,
    help="Also serve the web console, and keep the sandbox, the daemon and the console up "
    "until Ctrl-C.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="The console's port, with --serve.",
)
@pass_app
def demo(
    app: AppContext,
    out_dir: Path,
    csv_path: Path | None,
    seed: int,
    rate_limit: str,
    with_console: bool,
    port: int,
) -> None:
    """Run the whole product end to end on a local sandbox (no real calls, nothing to set up).

    Imports the sample contacts, calls them through the sandbox inside a demo calling window
    that is open around the clock (real campaigns default to 09:00-20:00 recipient-local),
    re-dials no-answers once after 3 seconds, prints the summary and writes the report.
    With --serve, the web console (loopback only, its URL printed) shows it all, and
    everything stays up until Ctrl-C.
    """

    from campaigns.cli.show_cmd import render
    from campaigns.importer.importer import ImportOptions
    from campaigns.report import export_report
    from campaigns.services.create import CampaignSpec, create_from_csv
    from campaigns.stats import campaign_stats
    from scheduler.daemon import DaemonSettings
    from scheduler.logs import setup_logging
    from scheduler.progress import ProgressLine
    from scheduler.ratelimit import parse_rate
    from scheduler.runner import run_daemon
    from storage.engine import make_engine
    from storage.migrate import upgrade

    console = output_console(stderr=True)
    samples = contextlib.ExitStack()
    csv_path = csv_path or sample_file(samples, "contacts.csv")
    dnc_path = sample_file(samples, "dnc.txt")
    if not csv_path.exists():
        raise UserError(f"no contacts file at {csv_path}: pass --csv FILE")
    out_dir.mkdir(parents=True, exist_ok=True)
    db_url = _fresh_db(out_dir.resolve() / "demo.db")
    engine = make_engine(db_url)
    upgrade(engine)
    started = time.monotonic()
    with samples, tempfile.TemporaryDirectory() as tmp:
        proc, base_url = _start_sandbox(seed, Path(tmp))
        try:
            console.print(f"[bold]1.[/] sandbox of the Vaani API at {base_url} (no real calls)")
            # a demo window open around the clock, and a re-dial after 3 s: the sandbox's calls
            # are not people, so the 120 s floor on the retry delay is lowered for it alone
            created = create_from_csv(
                engine,
                csv_path,
                CampaignSpec(
                    name="Demo campaign",
                    agent_id="demo-agent",
                    window="00:00-24:00",
                    days="all",
                    max_attempts=2,
                    retry_delay="3s",
                ),
                ImportOptions(
                    region="IN",
                    dnc_file=dnc_path if dnc_path.exists() else None,
                    rejects_path=out_dir / "rejects.csv",
                ),
                min_retry_delay=timedelta(seconds=1),
            )
            campaign_id, stats = created.campaign_id, created.stats
            s = stats.summary(campaign_id)
            console.print(
                f"[bold]2.[/] imported {csv_path.name}: {plural(s['imported'], 'contact')}, "
                f"{s['invalid']} invalid, {plural(s['duplicates'], 'duplicate')}, "
                f"{s['suppressed']} on the do-not-call list (rejects: {out_dir / 'rejects.csv'})"
            )
            setup_logging(json_lines=False, level=logging.WARNING, secrets=[DEMO_KEY])
            settings = DaemonSettings(
                rate=parse_rate(rate_limit),
                poll_interval=1.0,
                until_done=not with_console,
                max_concurrent=50,
            )
            if with_console:
                code = _serve(engine, settings, base_url, port, console)
            else:
                console.print("[bold]3.[/] running the scheduler until every contact is finished")
                display = ProgressLine(console=console) if console.is_terminal else None
                try:
                    code = asyncio.run(
                        run_daemon(
                            engine,
                            settings,
                            api_key=DEMO_KEY,
                            base_url=base_url,
                            on_progress=display.update if display else None,
                        )
                    )
                finally:
                    if display is not None:
                        display.close()
            if code != 0:
                raise UserError(f"the daemon stopped with exit code {code}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    console.print(f"[bold]4.[/] done in {time.monotonic() - started:.1f} s\n")
    render(campaign_stats(engine, campaign_id), output_console())
    result = export_report(engine, campaign_id, out_dir / "report.csv")
    click.echo(f"\nreport: {result.path} ({plural(result.rows, 'row')}); database: {db_url}")
    engine.dispose()
