"""``vaani-campaigns serve``: the web console and its HTTP API (see ``campaigns.web``).

Auth is a bearer token (``--token`` or ``VAANI_CONSOLE_TOKEN``). Without one the console binds
to loopback only (a non-loopback ``--host`` is refused) and makes up a token for this run,
printed once in the console's URL: every state-changing request still needs it, so a web page
the operator visits cannot drive the console (no CSRF). ``--with-daemon`` runs the scheduler
daemon in the same event loop, with the options of ``run``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
from typing import Any

import click

from campaigns.cli.common import AppContext, pass_app
from campaigns.cli.create_cmd import MIN_RETRY_DELAY_ENV
from campaigns.cli.run_cmd import ProviderKeys, api_options, daemon_options, daemon_settings
from campaigns.errors import UserError
from campaigns.services.create import parse_min_retry_delay

TOKEN_ENV = "VAANI_CONSOLE_TOKEN"


def console_banner(url: str, token: str, *, generated: bool) -> str:
    """What ``serve`` prints: the URL, with the token in its fragment (never sent to a
    server, not in any log) when the token was made up for this run."""
    if generated:
        return f"Console: {url}/#token={token}  (loopback only; token made up for this run)"
    return f"Console: {url}/  (token: as given by --token / {TOKEN_ENV})"


def start_console(
    engine: Any,
    *,
    host: str,
    port: int,
    token: str | None,
    max_upload_mb: int,
    daemon: Any = None,
    secrets_to_redact: list[str] | None = None,
) -> int:
    """Serve until Ctrl-C (``serve`` and ``demo --serve``); the daemon's exit code, else 0."""
    from campaigns.web.app import MB, ConsoleSettings
    from campaigns.web.server import bind, console_url, is_loopback, run_console
    from scheduler.logs import setup_logging

    generated = not token
    if generated and not is_loopback(host):
        raise UserError(
            f"--host {host} is not loopback: pass --token or set {TOKEN_ENV} to serve beyond "
            "this machine"
        )
    token = token or secrets.token_urlsafe(24)
    setup_logging(
        json_lines=False, level=logging.WARNING, secrets=[token, *(secrets_to_redact or [])]
    )
    sock = bind(host, port)
    settings = ConsoleSettings(
        token=token,
        max_upload_bytes=max_upload_mb * MB,
        min_retry_delay=parse_min_retry_delay(
            os.environ.get(MIN_RETRY_DELAY_ENV), source=MIN_RETRY_DELAY_ENV
        ),
    )
    banner = console_banner(console_url(sock), token, generated=generated)
    return asyncio.run(
        run_console(
            engine,
            settings,
            sock,
            daemon=daemon,
            on_ready=lambda: click.echo(banner + "\nCtrl-C stops it.", err=True),
        )
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    metavar="TOKEN",
    help=f"Bearer token every API request must carry [env: {TOKEN_ENV}]. Without one: "
    "loopback only, and a token is made up for this run (printed in the URL).",
)
@click.option(
    "--max-upload-mb",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Largest CSV upload; larger ones get 413.",
)
@click.option("--with-daemon", is_flag=True, help="Also run the scheduler daemon (as `run`).")
@api_options
@daemon_options
@pass_app
def serve(
    app: AppContext,
    host: str,
    port: int,
    token: str | None,
    max_upload_mb: int,
    with_daemon: bool,
    api_key: str | None,
    base_url: str,
    **tuning: Any,
) -> int:
    """Serve the web console and its HTTP API (OpenAPI document at /api/openapi.json).

    Every route but GET /api/health needs the token: Authorization: Bearer TOKEN. With
    --with-daemon the scheduler daemon runs in the same process (the options of `run` apply;
    it needs --api-key); otherwise run `vaani-campaigns run` beside it.
    """
    daemon = None
    secrets_to_redact: list[str] = []
    if with_daemon:
        from scheduler.runner import run_daemons

        keys = ProviderKeys(api_key, base_url)
        settings = daemon_settings(**tuning)
        engine = app.engine(create=True)
        drives = keys.drives(engine)
        secrets_to_redact = [*keys.secrets, *filter(None, [tuning.get("webhook_secret")])]

        def daemon(stop: threading.Event) -> Any:
            return run_daemons(engine, settings, drives, stop_requested=stop)

    return start_console(
        app.engine(create=True),  # the console creates campaigns, as `campaign create` does
        host=host,
        port=port,
        token=token,
        max_upload_mb=max_upload_mb,
        daemon=daemon,
        secrets_to_redact=secrets_to_redact or ([api_key] if api_key else None),
    )
