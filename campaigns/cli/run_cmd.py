"""``vaani-campaigns run``: the scheduler daemon."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from campaigns.cli.common import AppContext, pass_app
from campaigns.errors import UserError

if TYPE_CHECKING:
    from campaigns.provider_settings import ProviderRun
    from scheduler.runner import Drive

if TYPE_CHECKING:
    from scheduler.daemon import DaemonSettings
    from scheduler.runner import Drive
    from storage.engine import Engine

DEFAULT_BASE_URL = "https://api.vaanivoice.ai"
F = TypeVar("F", bound=Callable[..., Any])


def api_options(f: F) -> F:
    """``--api-key`` and ``--base-url``, shared by every command that talks to Vaani."""
    f = click.option(
        "--base-url",
        envvar="VAANI_BASE_URL",
        default=DEFAULT_BASE_URL,
        show_default=True,
        help="Vaani API base URL [env: VAANI_BASE_URL].",
    )(f)
    return click.option(
        "--api-key",
        envvar="VAANI_API_KEY",
        metavar="KEY",
        help="Vaani API key [env: VAANI_API_KEY]. Never printed or stored.",
    )(f)


def _duration(value: str, flag: str) -> timedelta:
    from campaigns.policy import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None


def _rate(value: str, where: str) -> float:
    from scheduler.ratelimit import parse_rate

    try:
        return parse_rate(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=where) from None


def _limits(value: str | None, where: str) -> dict[str, Any]:
    """A provider's ``rate-limit`` as Drive fields: one rate is its ceiling, a comma list its
    windows (``scheduler.ratelimit_windows``); none: the ceiling of --rate-limit and the
    provider's plan windows."""
    from scheduler.ratelimit_windows import parse_limits

    if not value:
        return {}
    try:
        rate, windows = parse_limits(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=where) from None
    return {"rate": rate, "windows": windows}


def _positive(value: timedelta, flag: str = "--give-up-after") -> float:
    if value.total_seconds() <= 0:
        raise click.BadParameter("must be longer than 0s", param_hint=flag)
    return value.total_seconds()


#: The daemon's tuning options, shared by ``run`` and ``serve --with-daemon``.
_DAEMON_OPTIONS = [
    click.option(
        "--rate-limit",
        envvar="VAANI_RATE_LIMIT",
        default="5/s",
        show_default=True,
        help="Requests this API key may send, all endpoints together: N/s or N/min "
        "[env: VAANI_RATE_LIMIT]. The limiter slows down further when the server answers 429.",
    ),
    click.option(
        "--max-concurrent",
        envvar="VAANI_MAX_CONCURRENT",
        type=click.IntRange(min=1),
        default=20,
        show_default=True,
        help="Cap on live calls (placed, outcome not yet known), all daemons together "
        "[env: VAANI_MAX_CONCURRENT].",
    ),
    click.option(
        "--poll-interval",
        envvar="VAANI_POLL_INTERVAL",
        type=click.FloatRange(min=0.1),
        default=5.0,
        show_default=True,
        help="Seconds between reads of the call history for outcomes [env: VAANI_POLL_INTERVAL].",
    ),
    click.option(
        "--outcome-deadline",
        default="15m",
        show_default=True,
        help="A placed call with no outcome after this long is looked up directly, then flagged.",
    ),
    click.option(
        "--daily-cap",
        envvar="VAANI_DAILY_CAP",
        type=click.IntRange(min=0),
        default=3,
        show_default=True,
        help="Most calls to one number in any rolling 24 hours, across campaigns (0: no cap) "
        "[env: VAANI_DAILY_CAP].",
    ),
    click.option(
        "--reconcile-grace",
        default="60s",
        show_default=True,
        help="How long after a lost trigger-call answer the call history must show the call "
        "before the attempt counts as not placed (and the contact may be dialled again).",
    ),
    click.option(
        "--request-timeout",
        envvar="VAANI_REQUEST_TIMEOUT",
        type=click.FloatRange(min=0.1),
        default=30.0,
        show_default=True,
        help="Seconds to wait for one API answer [env: VAANI_REQUEST_TIMEOUT].",
    ),
    click.option(
        "--give-up-after",
        default="30s",
        show_default=True,
        help="With --until-done: exit 3 once no request could reach the API for this long "
        "(connection refused, DNS, connect timeout).",
    ),
    click.option(
        "--webhook-secret",
        envvar="VAANI_WEBHOOK_SECRET",
        metavar="SECRET",
        help="Signs the events sent to campaigns' webhooks [env: VAANI_WEBHOOK_SECRET; config: "
        "[run] webhook-secret]. A campaign's events go out only with the secret it was created "
        "with (its fingerprint is checked); never printed or stored.",
    ),
    click.option(
        "--webhook-timeout",
        type=click.FloatRange(min=0.1),
        default=10.0,
        show_default=True,
        help="Seconds to wait for a webhook receiver's answer.",
    ),
    click.option(
        "--webhook-give-up-after",
        default="24h",
        show_default=True,
        help="Retry a webhook event (backoff with jitter) for this long, then mark it dead.",
    ),
]


def daemon_options(f: F) -> F:
    """The options of :func:`daemon_settings` (``--rate-limit``, ``--max-concurrent``, ...)."""
    for option in reversed(_DAEMON_OPTIONS):
        f = option(f)
    return f


def daemon_settings(
    *,
    rate_limit: str,
    max_concurrent: int,
    poll_interval: float,
    outcome_deadline: str,
    daily_cap: int,
    reconcile_grace: str,
    request_timeout: float,
    give_up_after: str,
    webhook_secret: str | None,
    webhook_timeout: float,
    webhook_give_up_after: str,
    until_done: bool = False,
) -> DaemonSettings:
    """The daemon's settings from the values of :func:`daemon_options`, each checked."""
    from scheduler.daemon import DaemonSettings
    from scheduler.webhooks_out import WebhookSettings

    events_for = _duration(webhook_give_up_after, "--webhook-give-up-after")
    return DaemonSettings(
        rate=_rate(rate_limit, "--rate-limit"),
        max_concurrent=max_concurrent,
        poll_interval=poll_interval,
        until_done=until_done,
        outcome_deadline=_duration(outcome_deadline, "--outcome-deadline"),
        daily_cap_per_number=daily_cap or None,
        reconcile_grace=_duration(reconcile_grace, "--reconcile-grace"),
        request_timeout=request_timeout,
        unreachable_exit_after=_positive(_duration(give_up_after, "--give-up-after")),
        webhooks=WebhookSettings(
            secret=webhook_secret or None,
            timeout=webhook_timeout,
            give_up_after=timedelta(seconds=_positive(events_for, "--webhook-give-up-after")),
        ),
    )


class ProviderKeys:
    """The providers a daemon drives, from the flags, the environment and the config file
    (:mod:`campaigns.provider_settings`): built before the database is opened, so that a
    missing or unusable key is one line and touches nothing."""

    def __init__(self, api_key: str | None, base_url: str) -> None:
        from campaigns.provider_settings import require, resolve

        ctx = click.get_current_context()
        url_given = ctx.get_parameter_source("base_url") is not click.core.ParameterSource.DEFAULT
        # a key no request could carry (whitespace, non-ASCII, ...) is refused here, in one
        # line, rather than failing every request; ProviderConfigError never echoes the key
        self.runs = resolve(
            (ctx.find_root().default_map or {}).get("providers") or {},
            os.environ,
            vaani_key=api_key,
            vaani_base_url=base_url if url_given else None,
        )
        if not self.runs:
            require(self.runs, ())  # no key at all

    @property
    def secrets(self) -> list[str]:
        return [s for r in self.runs.values() for s in r.secrets]

    def drives(self, engine: Engine) -> list[Drive]:
        """One drive per provider with a key; UserError when a running campaign's provider
        has none."""
        from campaigns.provider_settings import require
        from storage.campaigns_repo import list_campaigns

        running = {c.provider for c in list_campaigns(engine, statuses=["running"])}
        return [_drive(r) for r in require(self.runs, running)]

    def drive(self, provider: str) -> Drive:
        """The drive of ``provider`` alone (a command about one campaign: ``campaign
        recordings``, ``campaign test-call``); UserError naming the variable when it has no
        key."""
        from campaigns.provider_settings import missing_key

        run = self.runs.get(provider)
        if run is None:
            raise missing_key(provider, "this campaign uses")
        return _drive(run)


def _drive(r: ProviderRun) -> Drive:
    """The daemon's view of one provider's settings (its plan's rate limit checked)."""
    from scheduler.runner import Drive

    return Drive(
        provider=r.name,
        api_key=r.api_key,
        base_url=r.base_url,
        **_limits(r.rate_limit, f"[providers.{r.name}] rate-limit"),
        webhook_secret=r.webhook_secret,
    )


@click.command()
@api_options
@daemon_options
@click.option("--until-done", is_flag=True, help="Exit once no campaign has work left.")
@click.option(
    "--listen",
    metavar="HOST:PORT",
    envvar="VAANI_LISTEN",
    help="Receive webhooks (POST /webhooks/PROVIDER; GET /health) on this address, for the "
    "providers that push outcomes (VaniAgent, with VANIAGENT_WEBHOOK_SECRET); their polling "
    "becomes a slow sweep [env: VAANI_LISTEN].",
)
@click.option("--log-json", is_flag=True, help="Log one JSON object per line.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a live one-line progress display (default: on a terminal).",
)
@pass_app
def run(
    app: AppContext,
    api_key: str | None,
    base_url: str,
    rate_limit: str,
    max_concurrent: int,
    poll_interval: float,
    outcome_deadline: str,
    daily_cap: int,
    reconcile_grace: str,
    request_timeout: float,
    until_done: bool,
    give_up_after: str,
    webhook_secret: str | None,
    webhook_timeout: float,
    webhook_give_up_after: str,
    listen: str | None,
    log_json: bool,
    progress: bool | None,
) -> int:
    """Run the scheduler daemon: dial due contacts, collect outcomes, re-dial no-answers.

    Exit codes: 0 done (or stopped by SIGTERM/SIGINT after draining), 3 when the API refused
    the key, the balance or the agent (nothing is consumed; fix it and run again), or, with
    --until-done, when the API could not be reached for --give-up-after. After a 402 the
    calls already placed get their outcomes before the exit.
    """
    # a SIGTERM that arrives while the daemon is still starting must stop it cleanly too
    early_stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: early_stop.set())

    from scheduler.logs import setup_logging
    from scheduler.progress import ProgressLine
    from scheduler.runner import run_daemons

    keys = ProviderKeys(api_key, base_url)
    address = _listen_address(listen)
    settings = daemon_settings(
        rate_limit=rate_limit,
        max_concurrent=max_concurrent,
        poll_interval=poll_interval,
        outcome_deadline=outcome_deadline,
        daily_cap=daily_cap,
        reconcile_grace=reconcile_grace,
        request_timeout=request_timeout,
        give_up_after=give_up_after,
        webhook_secret=webhook_secret,
        webhook_timeout=webhook_timeout,
        webhook_give_up_after=webhook_give_up_after,
        until_done=until_done,
    )
    setup_logging(
        json_lines=log_json,
        level=logging.DEBUG if app.debug else logging.INFO,
        secrets=[*keys.secrets, *([webhook_secret] if webhook_secret else [])],
    )
    show = sys.stderr.isatty() if progress is None else progress
    engine = app.engine(create=True)
    drives = keys.drives(engine)
    sock = _listen_socket(address, drives) if address else None
    display = ProgressLine() if show else None
    try:
        return asyncio.run(
            run_daemons(
                engine,
                settings,
                drives,
                on_progress=display.update if display else None,
                stop_requested=early_stop,
                listen=sock,
            )
        )
    finally:
        if display is not None:
            display.close()
        if sock is not None:
            sock.close()


def _listen_address(text: str | None) -> tuple[str, int] | None:
    from scheduler.webhooks_in import parse_listen

    if text is None:
        return None
    try:
        return parse_listen(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None


def _listen_socket(address: tuple[str, int], drives: Sequence[Drive]) -> socket.socket:
    """The receiver's socket, once every driven provider that signs its webhooks has a secret
    (UserError naming the variable otherwise, or when the address cannot be bound)."""
    from scheduler.providers import PROVIDERS
    from scheduler.webhooks_in import bind

    for drive in drives:
        spec = PROVIDERS[drive.provider]
        if spec.webhook_secret_env and not drive.webhook_secret:
            raise UserError(
                f"run --listen: {spec.label} signs its webhooks: set {spec.webhook_secret_env} "
                f"(or webhook-secret in the config file's [providers.{drive.provider}] table)"
            )
    try:
        return bind(*address)
    except OSError as exc:
        raise UserError(f"run --listen: {exc}") from None
