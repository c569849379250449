"""``vaani-campaigns campaign show ID``: the campaign summary people ask for."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from campaigns.cli.common import AppContext, output_console, pass_app, print_json
from campaigns.parsing import format_duration
from campaigns.services.lifecycle import Progress
from campaigns.stats import CampaignStats, campaign_stats
from campaigns.wording import duration, plural
from storage.breaker import describe_error

#: What the ``none`` outcome row counts (contacts without a last outcome), in words.
NO_OUTCOME_YET = "not called, or call still live"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else duration(seconds)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _callbacks_line(stats: CampaignStats) -> str:
    """The line of `show` that counts callbacks, e.g. "2 callbacks asked for by contacts ·
    next 2026-12-01 11:30Z (in 1h05m)"."""
    line = plural(stats.callbacks_scheduled, "callback") + " asked for by contacts"
    at = stats.next_callback_at
    if at is not None:
        wait = max(0.0, (at - stats.as_of).total_seconds())
        line += f" · next {at:%Y-%m-%d %H:%M}Z (in {_duration(wait)})"
    return line


def render(stats: CampaignStats, console: Console) -> None:
    """The human form of :class:`CampaignStats`."""
    status = stats.status + (f" ({stats.status_reason})" if stats.status_reason else "")
    console.print(f"[bold]Campaign {stats.id}: {stats.name}[/bold]  status: ", end="")
    console.print(status, markup=False, highlight=False)
    if stats.breaker_errors:
        console.print("last errors seen by the circuit breaker (newest first):")
        for error in stats.breaker_errors:
            console.print(f"  {describe_error(error)}", markup=False, highlight=False)
        console.print(
            f"fix the cause, then: vaani-campaigns campaign resume {stats.id} "
            "(a fresh window of calls starts)"
        )
    p = Progress(counts=stats.counts)  # the sums of `campaign list`, by the same definition
    console.print(
        f"agent {stats.agent_id} · {plural(p.total, 'contact')}: {p.waiting} waiting, "
        f"{p.in_flight} in flight, {p.done} done · {p.not_called} not to be called "
        f"(invalid, suppressed) · {p.closed} closed without an outcome "
        "(exhausted, expired, cancelled)"
    )
    states = Table("state", "contacts", title="Contacts by state", title_justify="left")
    for s, n in stats.counts.items():
        states.add_row(s, str(n), style=None if n else "dim")
    outcomes = Table("outcome", "contacts", "calls", title="Outcomes", title_justify="left")
    for o, n in stats.outcomes.items():
        calls = stats.call_outcomes.get(o)
        outcomes.add_row(
            NO_OUTCOME_YET if o == "none" else o,
            str(n),
            "" if calls is None else str(calls),
            style=None if n or calls else "dim",
        )
    console.print(states)
    console.print(outcomes)
    hist = " ".join(f"{k}:{v}" for k, v in stats.attempts_histogram.items())
    mean = "-" if stats.attempts_mean is None else f"{stats.attempts_mean:.2f}"
    console.print(
        f"pickup rate {_pct(stats.pickup_rate)} ({stats.answered_calls}/{stats.placed_calls} "
        f"placed calls, voicemail excluded) · avg answered call "
        f"{_duration(stats.avg_answered_duration_s)}"
    )
    console.print(f"attempts per called contact: mean {mean} · histogram {hist or '-'}")
    line = f"placed in the last 10 min: {stats.placed_last_10min} · "
    if not stats.waiting:  # nothing left to dial: a "time to finish: 0s" would be noise
        console.print(line + "nothing left to dial")
    else:
        eta = "unknown" if stats.eta_s is None else _duration(stats.eta_s)
        rate = "the last 10 min of dialling" if stats.eta_from_last_dialling else "this rate"
        console.print(
            line + f"still to dial: {stats.waiting} · time to finish at {rate}, counting "
            f"the calling windows: {eta}"
        )
    if stats.next_window:
        console.print("every waiting contact is outside its calling window: " + stats.next_window)
    if stats.callbacks_scheduled:
        console.print(_callbacks_line(stats), markup=False)
    if stats.outbox is not None:
        box = stats.outbox
        line = (
            f"events to {stats.webhook_url}: {box.pending} waiting, {box.delivered} delivered, "
            f"{box.dead} dead"
        )
        if box.last_dead_event_id:
            line += f" (newest dead: {box.last_dead_event_id}: {box.last_dead_error or '?'})"
        console.print(line, markup=False)
    st = stats.settings
    console.print(
        f"window {st['window']} on {st['days']} (contact's local time"
        + (f", zone override {st['timezone']}" if st["timezone"] else "")
        + f") · max {plural(st['max_attempts'], 'attempt')} · retry after "
        + _duration(st["retry_delay_s"])
        + f" · up to {plural(st['max_callbacks'], 'callback')} asked for"
        + (f" · from {st['start_at']:%Y-%m-%d %H:%M}Z" if st["start_at"] else "")
        + (f" · until {st['end_at']:%Y-%m-%d %H:%M}Z" if st["end_at"] else "")
    )
    extra = _redial_and_blackout(st)
    if extra:
        console.print(extra, markup=False)
    console.print(_breaker_setting(st["breaker"]), markup=False)


def _breaker_setting(b: dict[str, Any]) -> str:
    """``"circuit breaker: pause when more than 50% of the last 20 calls fail"`` or off."""
    if not b["enabled"]:
        return "circuit breaker off"
    return (
        f"circuit breaker: pause when more than {b['threshold_pct']}% of the last "
        f"{plural(b['window_calls'], 'call')} fail"
    )


def _redial_and_blackout(st: dict[str, Any]) -> str:
    """The re-dial policy and the days without calls, when the campaign has any."""
    parts = []
    if st.get("retry_delays_s"):
        pairs = ",".join(
            f"{k}={format_duration(timedelta(seconds=v))}"
            for k, v in sorted(st["retry_delays_s"].items())
        )
        parts.append(f"retry {pairs}")
    if st.get("retry_schedule_s"):
        parts.append(
            "retry schedule "
            + ",".join(format_duration(timedelta(seconds=v)) for v in st["retry_schedule_s"])
        )
    if not st.get("redial_voicemail", True):
        parts.append("voicemail not re-dialled")
    if st.get("skip_dates"):
        dates = st["skip_dates"]
        parts.append(f"no calls on {', '.join(dates[:5])}" + (" ..." if len(dates) > 5 else ""))
    if st.get("holidays"):
        parts.append(f"no calls on public holidays ({st['holidays']}, contact's country)")
    return " · ".join(parts)


@click.command()
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_app
def show(app: AppContext, campaign_id: int, as_json: bool) -> None:
    """Show a campaign: counts per state and outcome, pickup rate, progress, settings.

    The first line sums the states as `campaign list` does: waiting (pending, retry_wait), in
    flight (dialing, awaiting_outcome), done; then the rows never to be called (invalid,
    suppressed) and the contacts closed without an outcome (exhausted, expired, cancelled).

    Pickup rate = answered calls / placed calls that have an outcome, voicemail excluded from
    both. Attempts per contact count contacts called at least once. The time to finish is the
    time to dial the contacts still to dial (pending, retry_wait, dialing) at the rate of calls
    placed in the last 10 minutes (while every window is closed: in the last 10 minutes of
    dialling), dialling only inside the calling windows, the wait for one to open included;
    unknown when nothing was placed. When every waiting contact is outside its window, a line
    says when the next one opens, in that contact's zone. The outcome row "not called, or call
    still live" counts contacts without an outcome: not called (yet, or ever: invalid,
    suppressed), or with a call still live. Callbacks
    the contacts asked for on a call are counted, with the next one, when any is waiting.
    A campaign its circuit breaker paused shows why and the last errors it saw.
    """
    stats = campaign_stats(app.engine(), campaign_id)  # NotFound names the way to the ids
    if as_json:
        print_json(stats.to_dict())
    else:
        render(stats, output_console())
