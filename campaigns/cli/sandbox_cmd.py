"""``vaani-campaigns sandbox``: run the local stand-in of the Vaani API (scheduler.sandbox)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from campaigns.errors import UserError

T = TypeVar("T")


def _parsed(
    parser: Callable[[str], T],
) -> Callable[[click.Context, click.Parameter, Any], T | None]:
    """A click callback that runs one of the config parsers and reports its message."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> T | None:
        if value is None:
            return None
        try:
            return parser(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def _make_command() -> click.Command:
    from scheduler.sandbox import config as cfg
    from scheduler.sandbox.fronts import FRONTS

    @click.command()
    @click.option(
        "--provider",
        type=click.Choice(sorted(FRONTS)),
        default="vaani",
        show_default=True,
        help="Which provider's wire to serve (all share one simulated call engine).",
    )
    @click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
    @click.option(
        "--port", type=int, default=8000, show_default=True, help="Port; 0 picks a free one."
    )
    @click.option(
        "--api-key",
        "api_keys",
        multiple=True,
        envvar="VAANI_SANDBOX_API_KEY",
        help=f"Accepted X-API-Key (repeatable) [env: VAANI_SANDBOX_API_KEY; default: {cfg.DEFAULT_API_KEY}].",
    )
    @click.option(
        "--rate-limit",
        metavar="N/s|N/min",
        callback=_parsed(cfg.parse_rate_limit),
        help="Requests allowed per API key, all endpoints together [default: unlimited].",
    )
    @click.option(
        "--no-rate-headers",
        is_flag=True,
        help="Send only the 429 status: no Retry-After or X-RateLimit-* headers.",
    )
    @click.option(
        "--speed", type=float, default=1.0, show_default=True, help="Simulated-time multiplier."
    )
    @click.option("--seed", type=int, help="Seed for deterministic outcomes, durations, faults.")
    @click.option(
        "--answer-rate", type=float, default=0.7, show_default=True, help="Share of calls answered."
    )
    @click.option(
        "--call-seconds",
        metavar="MIN-MAX",
        default="1-4",
        show_default=True,
        callback=_parsed(cfg.parse_seconds_range),
        help="Simulated length of a call, from trigger to final status.",
    )
    @click.option(
        "--faults",
        metavar="SPEC",
        default="",
        callback=_parsed(cfg.parse_faults),
        help='Fault probabilities per request, e.g. "429=0.05,5xx=0.02,lost=0.02,slow=0.01", '
        "per webhook event: webhook_drop, webhook_dup, webhook_delay, webhook_reorder, and "
        "per placed call: call_failed (the call ends failed).",
    )
    @click.option(
        "--webhook-url",
        metavar="URL",
        help="Where to POST call.completed/call.failed webhooks as calls end (front-ends that "
        "send them: vaniagent). Webhook faults: webhook_drop, webhook_dup, webhook_delay, "
        "webhook_reorder in --faults.",
    )
    @click.option(
        "--webhook-secret",
        metavar="SECRET",
        envvar="VAANI_SANDBOX_WEBHOOK_SECRET",
        help="Secret the webhooks are signed with (X-Vaniagent-Signature) "
        "[env: VAANI_SANDBOX_WEBHOOK_SECRET].",
    )
    @click.option(
        "--slow-seconds", type=float, default=5.0, show_default=True, help="Delay of a slow fault."
    )
    @click.option(
        "--background-calls",
        type=float,
        default=0.0,
        metavar="R",
        help="Other calls per second added to the history (other agents, inbound).",
    )
    @click.option(
        "--agents",
        metavar="A,B",
        callback=_parsed(cfg.parse_agents),
        help="Agent ids the key owns (403 for others) [default: any].",
    )
    @click.option(
        "--balance-calls", type=int, metavar="N", help="After N placed calls, answer 402."
    )
    @click.option(
        "--ready-file",
        type=click.Path(dir_okay=False),
        help="Write the base URL to this file once listening.",
    )
    def sandbox(api_keys: tuple[str, ...], **options: Any) -> None:
        """Run a local stand-in of a provider's API (same wire, simulated calls).

        Prints "sandbox listening on http://HOST:PORT" when ready. GET /sandbox/calls and
        /sandbox/stats report what it saw. Test hooks in a call's metadata: sandbox_outcome,
        sandbox_opt_out, sandbox_call_seconds, sandbox_entity_<key>, sandbox_callback_in (see
        scheduler.sandbox.sim).
        """
        from scheduler.sandbox.server import serve

        keys = tuple(k for key in api_keys for k in key.split()) or (cfg.DEFAULT_API_KEY,)
        faults = options.pop("faults")
        rate_limit = options.pop("rate_limit")
        try:
            config = cfg.SandboxConfig(
                api_keys=keys,
                rate_limit=rate_limit,
                rate_headers=not options.pop("no_rate_headers"),
                faults=faults,
                **options,
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        from scheduler.sandbox.fronts import front_end

        if config.webhook_url and front_end(config.provider).background is None:
            raise click.UsageError(
                f"--webhook-url: the {config.provider} front-end sends no webhooks"
            )
        try:
            serve(config)
        except OSError as exc:
            raise UserError(f"sandbox: {exc}") from None

    return sandbox


sandbox = _make_command()
