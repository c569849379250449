"""``vaani-campaigns campaign test-call ID --to NUMBER``: hear the agent before the batch."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC
from typing import TYPE_CHECKING, Any

import click

from campaigns.cli.common import AppContext, pass_app, print_json
from campaigns.cli.run_cmd import (
    ProviderKeys,
    _duration,
    _positive,
    _rate,
    api_options,
    rate_limit_option,
)

if TYPE_CHECKING:
    from campaigns.services.test_call import CallPlan, CallReport
    from scheduler.runner import Drive
    from storage.engine import Engine


def _value(value: Any) -> str:
    """An entity value as one line: text as it is, anything else as JSON (true, 3, [..])."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render(report: CallReport) -> list[str]:
    """The human form of a test call's outcome, one fact a line."""
    from campaigns.wording import duration

    lines = [
        f"call id: {report.call_id}",
        f"to: {report.to} (with the metadata of row {report.row_number}"
        + (f", {report.name}" if report.name else "")
        + ")",
        f"status: {report.status or '-'} ({report.outcome})",
        f"duration: {'-' if report.duration_s is None else duration(report.duration_s)}",
        f"summary: {report.summary or '-'}",
    ]
    if report.entities:
        lines.append("entities:")
        lines += [f"  {k}: {_value(v)}" for k, v in report.entities.items()]
    else:
        lines.append("entities: -")
    if report.callback_at is not None:
        at = report.callback_at
        utc = at.astimezone(UTC)
        lines.append(f"callback asked for: {at.isoformat(timespec='minutes')} ({utc:%H:%M}Z)")
    elif report.callback_note:
        lines.append(f"callback asked for, not understood: {report.callback_note}")
    return lines


async def _call(
    engine: Engine, drive: Drive, plan: CallPlan, *, rate: float, poll: float, wait: float
) -> CallReport:
    from campaigns.services.test_call import place_test_call
    from scheduler.providers import provider_spec
    from scheduler.runner import plan_client

    def placed(call_id: str) -> None:
        click.echo(
            f"call {call_id} placed to {plan.request.phone_e164}; waiting for its outcome "
            f"(up to {_wait_text(wait)}) ...",
            err=True,
        )

    async with plan_client(engine, drive, rate=rate) as client:
        return await place_test_call(
            client,
            plan,
            key_env=provider_spec(drive.provider).key_env,
            poll_interval=poll,
            timeout=wait,
            on_placed=placed,
        )


def _wait_text(seconds: float) -> str:
    from datetime import timedelta

    from campaigns.parsing import format_duration

    return format_duration(timedelta(seconds=seconds))


@click.command("test-call")
@click.argument("campaign_id", type=int)
@click.option(
    "--to",
    "to",
    required=True,
    metavar="NUMBER",
    help="Your own number, read with the campaign's --region. Numbers on the do-not-call "
    "list are refused.",
)
@click.option(
    "--contact",
    "row",
    type=click.IntRange(min=1),
    metavar="ROW",
    help="Use the name and metadata of this row of the CSV [default: the first row with a "
    "valid number].",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between reads of the call's outcome.",
)
@click.option(
    "--timeout",
    default="10m",
    show_default=True,
    help="Exit 3 when the call has reported no end after this long (e.g. 90s, 10m).",
)
@rate_limit_option
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
@api_options
@pass_app
def test_call(
    app: AppContext,
    campaign_id: int,
    to: str,
    row: int | None,
    poll_interval: float,
    timeout: str,
    rate_limit: str,
    as_json: bool,
    api_key: str | None,
    base_url: str,
) -> None:
    """Place one call to your own number as the campaign would, and print its outcome.

    The call goes through the campaign's agent, caller id, voice and options, with the name
    and metadata of the campaign's first contact (or --contact ROW). The command waits until
    the call has ended and prints its id, status, outcome, duration, summary, the entities
    extracted and a callback time when one was asked for.

    Nothing is counted against the campaign: no attempt is recorded, no contact changes, the
    daily cap per number does not see the call. A number with a call in flight in any
    campaign is refused (the test call could be taken for that call's). Exit 3 when the API
    refuses the key, the balance or the call, cannot be reached, or reports no end before
    --timeout.
    """
    from campaigns.services.test_call import plan_test_call
    from scheduler import dbexec
    from storage.models import utcnow

    keys = ProviderKeys(api_key, base_url)  # a missing key is one line before anything else
    wait = _positive(_duration(timeout, "--timeout"), "--timeout")
    rate = _rate(rate_limit, "--rate-limit")
    engine = app.engine()
    plan = plan_test_call(engine, campaign_id, to=to, row=row, now=utcnow())
    for note in plan.notes:
        click.echo(note, err=True)
    drive = keys.drive(plan.campaign.provider)
    try:
        report = asyncio.run(_call(engine, drive, plan, rate=rate, poll=poll_interval, wait=wait))
    finally:
        dbexec.shutdown()
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo("\n".join(render(report)))
